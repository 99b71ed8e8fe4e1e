import assert from "node:assert/strict";
import diagnostics_channel from "node:diagnostics_channel";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import tls from "node:tls";
import { Guard, type GuardBreakEvent } from "../../src/guard/guard.js";
import { ReconnectingLink } from "../../src/guard/link.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { freshCert } from "./fixtures.js";

// TLS through the guard against a real node:tls server on loopback, with
// certificates made by openssl for the test.

let budgetSeq = 0;

/** A TLS server on 127.0.0.1 with this certificate; counts the TCP connections it accepts. */
async function tlsServer(
  t: { after(fn: () => Promise<void> | void): void },
  cert: { key: Buffer; cert: Buffer },
) {
  const server = tls.createServer(cert, (s) => s.end("ok"));
  let tcpConnections = 0;
  server.on("connection", () => tcpConnections++);
  server.on("tlsClientError", () => {}); // a client that refuses our certificate
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as AddressInfo).port, connections: () => tcpConnections };
}

test("a peer addressed by IP is checked against its IP: a certificate for IP:127.0.0.1 alone is accepted", async (t) => {
  // No name "localhost" anywhere: Node falls back to the subject's CN when a
  // certificate has no DNS names, and a CN of localhost would hide the bug.
  const cert = freshCert("IP:127.0.0.1", "127.0.0.1");
  const { port } = await tlsServer(t, cert);
  const guard = new Guard({ budget: `tls-${budgetSeq++}` });
  // Before, Node checked the name "localhost" over the guard's socket and refused it.
  const socket = await guard.connect({ host: "127.0.0.1", port, tls: { ca: cert.cert } });
  assert.equal((socket as tls.TLSSocket).authorized, true);
  socket.destroy();

  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port,
    tls: { ca: cert.cert },
    guard: { budget: `tls-${budgetSeq++}` },
  });
  t.after(() => link.close());
  await once(link, "connected");
});

test("the certificate is still checked: one for another name is refused", async (t) => {
  const cert = freshCert("DNS:not-this-host.invalid");
  const { port } = await tlsServer(t, cert);
  const guard = new Guard({ budget: `tls-${budgetSeq++}` });
  await assert.rejects(guard.connect({ host: "127.0.0.1", port, tls: { ca: cert.cert } }), {
    code: "ERR_TLS_CERT_ALTNAME_INVALID",
  });
});

test("a failed TLS handshake opens the breaker: the next connect is refused at once, without a TCP attempt", async (t) => {
  const cert = freshCert("DNS:not-this-host.invalid");
  const server = await tlsServer(t, cert);
  const clock = new FakeClock();
  const guard = new Guard({ budget: `tls-${budgetSeq++}`, clock });
  const breaks: GuardBreakEvent[] = [];
  guard.onBreak((e) => breaks.push(e));
  const published: Array<{ to: string; reason?: string }> = [];
  const onPublished = (m: unknown) => published.push(m as { to: string; reason?: string });
  diagnostics_channel.subscribe("synlimit:guard:breaker", onPublished);
  t.after(() => diagnostics_channel.unsubscribe("synlimit:guard:breaker", onPublished));
  const options = { host: "127.0.0.1", port: server.port, tls: { ca: cert.cert } };

  await assert.rejects(guard.connect(options), { code: "ERR_TLS_CERT_ALTNAME_INVALID" });
  assert.equal(server.connections(), 1);
  // Before, the TCP connect had closed the breaker and the handshake's failure
  // left it closed: ReconnectingLink retried after 1 ms, ~190 connects a second.
  assert.equal(guard.state("127.0.0.1", server.port), "open");
  assert.ok(guard.nextTryInMs("127.0.0.1", server.port) > 0);
  assert.deepEqual(
    breaks.map((b) => b.reason),
    ["tls"],
  );
  assert.deepEqual(
    published.filter((m) => m.to === "open").map((m) => m.reason),
    ["tls"],
    "the process-wide channel says why too",
  );
  await assert.rejects(guard.connect(options), { code: "SYNLIMIT_BREAKER_OPEN" });
  assert.equal(server.connections(), 1, "no TCP attempt while the breaker is open");
});

import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { test } from "node:test";
import { systemClock } from "../../src/clock.js";
import { SynlimitError } from "../../src/errors.js";
import { parseHostPort, parseProxyUrl } from "../../src/probe/address.js";
import { probe } from "../../src/probe/probe.js";
import { dialerFor } from "../../src/probe/via.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { GlobalSocksGate } from "../helpers/global-socks-gate.js";

/** A minimal HTTP CONNECT proxy on 127.0.0.1: 200 once the upstream connect completes, 502 if it fails. */
async function httpConnectProxy() {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on("connect", (req: http.IncomingMessage, client: net.Socket) => {
    sockets.add(client);
    client.on("error", () => {});
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(req.url ?? "");
    const upstream = net.connect(Number(m?.[2]), m?.[1] ?? "");
    sockets.add(upstream);
    upstream.once("connect", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      client.pipe(upstream).pipe(client);
    });
    upstream.once("error", () => client.end("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
    client.once("close", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("HOST:PORT and proxy URLs: parsed, or one clear usage error", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:80", "--live"), { host: "127.0.0.1", port: 80 });
  assert.deepEqual(parseHostPort("[::1]:9", "--live"), { host: "::1", port: 9 });
  assert.deepEqual(parseHostPort("db.internal:5432", "--live"), {
    host: "db.internal",
    port: 5432,
  });
  for (const bad of ["127.0.0.1", "::1:80", "[::1]", "host:0", "host:70000", ":80"]) {
    assert.throws(
      () => parseHostPort(bad, "--live"),
      (e: unknown) =>
        e instanceof SynlimitError && e.code === "SYNLIMIT_USAGE" && /--live/.test(e.message),
      bad,
    );
  }
  assert.deepEqual(parseProxyUrl("socks5://127.0.0.1:1080"), {
    protocol: "socks5",
    host: "127.0.0.1",
    port: 1080,
  });
  assert.deepEqual(parseProxyUrl("http://u:p%40ss@[::1]:3128/"), {
    protocol: "http",
    host: "::1",
    port: 3128,
    username: "u",
    password: "p@ss",
  });
  for (const bad of ["ftp://h:1", "socks5://h", "http://h:1/path", "nonsense"]) {
    assert.throws(() => parseProxyUrl(bad), /--via/, bad);
  }
});

for (const kind of ["http", "socks5"] as const) {
  test(`through a ${kind} proxy: connected, refused by the target, pending, cancelled; a dead proxy is the proxy's fault`, async (t) => {
    const live = await LiveListener.listen();
    t.after(() => live.close());
    const tarpit = await Tarpit.listen();
    t.after(() => tarpit.close());
    const proxy =
      kind === "http"
        ? await httpConnectProxy()
        : await new GlobalSocksGate({ maxInFlight: Number.POSITIVE_INFINITY }).listen();
    t.after(() => proxy.close());
    const dial = dialerFor({ protocol: kind, host: "127.0.0.1", port: proxy.port }, systemClock);

    for (const host of ["127.0.0.1", "::ffff:127.0.0.1"]) {
      const ok = await dial({ host, port: live.port }).done;
      assert.equal(ok.kind, "connected", host);
    }
    const refused = await dial({ host: "127.0.0.1", port: await closedPort() }).done;
    assert.equal(refused.kind, "error");
    assert.equal(refused.kind === "error" && refused.stage, "target");
    assert.equal(
      refused.kind === "error" && refused.code,
      kind === "http" ? "HTTP_502" : "ECONNREFUSED",
    );

    const pending = dial({ host: "127.0.0.1", port: tarpit.port });
    await pending.sent;
    assert.equal(pending.outcome, null);
    pending.cancel();
    assert.equal((await pending.done).kind, "cancelled");

    const dead = await dialerFor(
      { protocol: kind, host: "127.0.0.1", port: await closedPort() },
      systemClock,
    )({
      host: "127.0.0.1",
      port: live.port,
    }).done;
    assert.equal(dead.kind === "error" && dead.stage, "proxy");
  });
}

test("the whole probe through an HTTP CONNECT proxy: no limit, and the proxy path is reported", async (t) => {
  const proxy = await httpConnectProxy();
  t.after(() => proxy.close());
  const r = await probe({ via: `http://127.0.0.1:${proxy.port}`, max: 16 });
  assert.equal(r.verdict.kind, "no-limit", r.timeline.map((e) => e.text).join("\n"));
  assert.deepEqual(r.targets.via, { protocol: "http", host: "127.0.0.1", port: proxy.port });
  assert.equal(r.targets.blackhole?.verified, true);
});

test("a proxy on another host needs explicit targets: could not test, and says why", async () => {
  const r = await probe({ via: "socks5://proxy.invalid:1080" });
  assert.equal(r.verdict.kind, "could-not-test");
  assert.match(r.reason ?? "", /--blackhole HOST:PORT and --live HOST:PORT/);
  assert.deepEqual(r.timeline, [], "nothing was dialed");
});

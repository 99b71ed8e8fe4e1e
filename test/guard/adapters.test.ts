import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import { type TestContext, test } from "node:test";
import tls from "node:tls";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { Agent, Pool, ProxyAgent, errors as undiciErrors, request as undiciRequest } from "undici";
import { GuardedAgent, GuardedHttpsAgent } from "../../src/guard/adapters/http.js";
import { guardedConnect } from "../../src/guard/adapters/undici.js";
import { Guard } from "../../src/guard/guard.js";
import { synSentOf } from "../../src/os/linux/tcp-table.js";
import { GateProxy } from "../../src/proxy/server.js";
import { LiveListener } from "../../src/targets/live.js";
import { SilentUdpPort } from "../../src/targets/silent-udp.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { get } from "../helpers/http.js";
import { HttpFixture, HttpsFixture, testCert } from "../helpers/servers.js";
import { freshCert } from "./fixtures.js";

let seq = 0;
const budget = () => `adapters-${seq++}`;

async function closedPort(): Promise<number> {
  const l = await LiveListener.listen();
  await l.close();
  return l.port;
}

test("node:http GuardedAgent: requests go through the guard; an open breaker fails the next request fast", async (t) => {
  const server = await new HttpFixture().listen();
  t.after(() => server.close());
  const agent = new GuardedAgent({ budget: budget() });
  t.after(() => agent.destroy());
  assert.deepEqual(await get(http, { host: "127.0.0.1", port: server.port, agent }), {
    status: 200,
    body: "ok",
  });

  const dead = await closedPort();
  await assert.rejects(
    get(http, { host: "127.0.0.1", port: dead, agent }),
    (e: Error & { code?: string }) => e.code === "ECONNREFUSED",
  );
  await assert.rejects(
    get(http, { host: "127.0.0.1", port: dead, agent }),
    (e: Error & { code?: string }) => e.code === "SYNLIMIT_BREAKER_OPEN",
  );
  assert.equal(agent.guard.state("127.0.0.1", dead), "open");
});

test("node:https GuardedHttpsAgent: TLS options of the request apply", async (t) => {
  const server = await new HttpsFixture().listen();
  t.after(() => server.close());
  const agent = new GuardedHttpsAgent({ budget: budget() });
  t.after(() => agent.destroy());
  const res = await get(https, {
    host: "127.0.0.1",
    port: server.port,
    agent,
    ca: testCert.cert,
    servername: "localhost",
  });
  assert.deepEqual(res, { status: 200, body: "ok" });
  await assert.rejects(
    get(https, { host: "127.0.0.1", port: server.port, agent, servername: "localhost" }),
    /self[- ]signed/i,
    "without the CA the certificate is rejected: the options really reach TLS",
  );
});

test("undici: guardedConnect as the Agent's connect; an open breaker fails with cb(err)", async (t) => {
  const server = await new HttpFixture().listen();
  t.after(() => server.close());
  const guard = new Guard({ budget: budget() });
  const agent = new Agent({ connect: guardedConnect(guard) });
  t.after(() => agent.destroy());
  const res = await undiciRequest(`http://127.0.0.1:${server.port}/`, { dispatcher: agent });
  assert.equal(await res.body.text(), "ok");

  const dead = await closedPort();
  await assert.rejects(
    undiciRequest(`http://127.0.0.1:${dead}/`, { dispatcher: agent }),
    /ECONNREFUSED/,
  );
  await assert.rejects(
    undiciRequest(`http://127.0.0.1:${dead}/`, { dispatcher: agent }),
    (e: Error & { code?: string }) => e.code === "SYNLIMIT_BREAKER_OPEN",
  );
});

test("undici over https: servername and CA reach the TLS upgrade", async (t) => {
  const server = await new HttpsFixture().listen();
  t.after(() => server.close());
  const agent = new Agent({
    connect: guardedConnect({ budget: budget() }, { ca: testCert.cert, servername: "localhost" }),
  });
  t.after(() => agent.destroy());
  const res = await undiciRequest(`https://127.0.0.1:${server.port}/`, { dispatcher: agent });
  assert.equal(await res.body.text(), "ok");
});

/** One finished span to export. */
function spans(): ReadableSpan[] {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
  provider.getTracer("synlimit-test").startSpan("login").end();
  return memory.getFinishedSpans();
}

function exportOnce(
  exporter: OTLPTraceExporter,
): Promise<{ code: ExportResultCode; error?: Error }> {
  return new Promise((resolve) => exporter.export(spans(), resolve));
}

async function otlpCollector(t: TestContext) {
  const received: string[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      received.push(
        `${req.method} ${req.url} ${body.includes("login") ? "login-span" : body.length}`,
      );
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  t.after(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as { port: number }).port, received };
}

test("OpenTelemetry OTLP/HTTP exporter: pass the guard through httpAgentOptions", async (t) => {
  const collector = await otlpCollector(t);
  const agent = new GuardedAgent({ budget: budget() });
  t.after(() => agent.destroy());
  const exporter = new OTLPTraceExporter({
    url: `http://127.0.0.1:${collector.port}/v1/traces`,
    httpAgentOptions: () => agent,
  });
  t.after(() => exporter.shutdown());
  const result = await exportOnce(exporter);
  assert.equal(result.code, ExportResultCode.SUCCESS, String(result.error));
  assert.deepEqual(collector.received, ["POST /v1/traces login-span"]);
});

test("OpenTelemetry exporter pointed at a dead collector: with a silent echo preflight it creates no SYN_SENT at all", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const silentEcho = await SilentUdpPort.listen();
  t.after(() => silentEcho.close());
  const agent = new GuardedAgent({
    budget: budget(),
    preflight: { udpEchoPort: silentEcho.port, when: "always", timeoutMs: 50 },
  });
  t.after(() => agent.destroy());
  const exporter = new OTLPTraceExporter({
    url: `http://127.0.0.1:${tarpit.port}/v1/traces`,
    httpAgentOptions: () => agent,
  });
  t.after(() => exporter.shutdown());
  for (let i = 0; i < 3; i++) {
    const result = await exportOnce(exporter);
    assert.equal(result.code, ExportResultCode.FAILED);
    assert.match(String(result.error?.message), /preflight silent|it has been failing/);
    assert.deepEqual(
      (await synSentOf()).filter((e) => e.remote.port === tarpit.port),
      [],
    );
  }
  assert.ok(silentEcho.received >= 1, "the preflight asked the collector's echo port");
});

test("undici parity: an IP address gets no SNI (no DEP0123), a name does", async (t) => {
  const seen: Array<string | false | null> = [];
  const server = await new HttpsFixture().listen();
  t.after(() => server.close());
  server.server.on("secureConnection", (s: tls.TLSSocket) => seen.push(s.servername));
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? w.name);
  process.on("warning", onWarning);
  t.after(() => process.off("warning", onWarning));
  const agent = new Agent({
    connect: guardedConnect({ budget: budget() }, { ca: testCert.cert }),
  });
  t.after(() => agent.destroy());
  const res = await undiciRequest(`https://127.0.0.1:${server.port}/`, { dispatcher: agent });
  assert.equal(await res.body.text(), "ok");
  const named = await undiciRequest(`https://localhost:${server.port}/`, { dispatcher: agent });
  assert.equal(await named.body.text(), "ok");
  // Called as a connector without a servername (a custom dispatcher, a tunnel):
  // the IP must still not become the SNI.
  const connect = guardedConnect({ budget: budget() }, { ca: testCert.cert });
  const accepted = once(server.server, "secureConnection");
  const direct = await new Promise<net.Socket>((resolve, reject) =>
    connect({ hostname: "127.0.0.1", protocol: "https:", port: server.port }, (error, s) =>
      error ? reject(error) : resolve(s as net.Socket),
    ),
  );
  await accepted;
  direct.destroy();
  assert.deepEqual(seen, [false, "localhost", false]);
  assert.deepEqual(
    warnings.filter((w) => w === "DEP0123"),
    [],
  );
});

test("undici parity: allowH2 negotiates HTTP/2 by ALPN against a local TLS HTTP/2 server", async (t) => {
  const cert = freshCert();
  const server = http2.createSecureServer({ ...cert, allowHTTP1: true }, (req, res) =>
    res.end(req.httpVersion),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => {
    for (const s of sessions) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as AddressInfo).port;
  const guard = new Guard({ budget: budget() });
  const h2 = new Agent({
    allowH2: true,
    connect: guardedConnect(guard, { allowH2: true, ca: cert.cert }),
  });
  t.after(() => h2.destroy());
  const res = await undiciRequest(`https://localhost:${port}/`, { dispatcher: h2 });
  assert.equal(await res.body.text(), "2.0");
  const h1 = new Agent({ connect: guardedConnect(guard, { ca: cert.cert }) });
  t.after(() => h1.destroy());
  const res1 = await undiciRequest(`https://localhost:${port}/`, { dispatcher: h1 });
  assert.equal(
    await res1.body.text(),
    "1.1",
    "without allowH2 undici's own default: http/1.1 only",
  );

  // The dead peer: a closed port fails through cb(err), then the breaker answers at once.
  const dead = await closedPort();
  await assert.rejects(
    undiciRequest(`https://localhost:${dead}/`, { dispatcher: h2 }),
    /ECONNREFUSED/,
  );
  await assert.rejects(
    undiciRequest(`https://localhost:${dead}/`, { dispatcher: h2 }),
    (e: Error & { code?: string }) => e.code === "SYNLIMIT_BREAKER_OPEN",
  );
});

test("undici parity: the connect `timeout` applies, and a timeout is undici's ConnectTimeoutError", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const guard = new Guard({ budget: budget(), connectTimeoutMs: 60_000 });
  const deadlines: number[] = [];
  guard.onAttempt((e) => deadlines.push(e.deadlineMs));
  const agent = new Agent({ connect: guardedConnect(guard, { timeout: 50 }) });
  t.after(() => agent.destroy());
  await assert.rejects(
    undiciRequest(`http://127.0.0.1:${tarpit.port}/`, { dispatcher: agent }),
    (e: Error & { code?: string; synlimitCode?: string }) =>
      e.code === "UND_ERR_CONNECT_TIMEOUT" &&
      e.synlimitCode === "SYNLIMIT_CONNECT_TIMEOUT" &&
      e instanceof undiciErrors.ConnectTimeoutError,
  );
  assert.equal(deadlines.length, 1);
  assert.ok((deadlines[0] as number) <= 50, `deadline ${deadlines[0]} ms ≤ undici's timeout`);
});

test("undici parity: a proxy tunnel's httpSocket carries the TLS; the guard makes no TCP attempt of its own", async (t) => {
  const server = await new HttpsFixture().listen();
  t.after(() => server.close());
  const guard = new Guard({ budget: budget() });
  const attempts: string[] = [];
  guard.onAttempt((e) => attempts.push(`${e.host}:${e.port}`));
  const connect = guardedConnect(guard, { ca: testCert.cert });
  // The tunnel: an already connected TCP socket, as ProxyAgent hands over after CONNECT.
  const tunnel = net.connect(server.port, "127.0.0.1");
  await once(tunnel, "connect");
  t.after(() => tunnel.destroy());
  const socket = await new Promise<net.Socket>((resolve, reject) =>
    connect(
      {
        hostname: "localhost",
        host: `localhost:${server.port}`,
        protocol: "https:",
        port: server.port,
        httpSocket: tunnel,
      },
      (error, s) => (error ? reject(error) : resolve(s as net.Socket)),
    ),
  );
  t.after(() => socket.destroy());
  assert.ok(socket instanceof tls.TLSSocket && socket.encrypted);
  assert.deepEqual(attempts, [], "no TCP attempt besides the tunnel");
  // Client side first: the server's close() waits for its connections.
  socket.destroy();
  tunnel.destroy();
});

test("undici parity: TLS through a tunnel checks the certificate against the target's IP, not the tunnel's name", async (t) => {
  // No "localhost" in this certificate, not even as CN (Node's fallback).
  const cert = freshCert("IP:127.0.0.1", "127.0.0.1");
  const server = https.createServer(cert, (_req, res) => res.end("ok"));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const connect = guardedConnect(new Guard({ budget: budget() }), { ca: cert.cert });
  // The tunnel was opened to a name ("localhost"), as a proxy's often is;
  // before, Node checked that name, the proxy's, against the target's certificate.
  const tunnel = net.connect(port, "localhost");
  await once(tunnel, "connect");
  t.after(() => tunnel.destroy());
  const socket = await new Promise<net.Socket>((resolve, reject) =>
    connect(
      {
        hostname: "127.0.0.1",
        host: `127.0.0.1:${port}`,
        protocol: "https:",
        port,
        httpSocket: tunnel,
      },
      (error, s) => (error ? reject(error) : resolve(s as net.Socket)),
    ),
  );
  assert.equal((socket as tls.TLSSocket).authorized, true);
  socket.destroy();
  tunnel.destroy();
});

test("undici ProxyAgent through `synlimit gate`: the connection to the gate goes through the guard", async (t) => {
  const server = await new HttpFixture().listen();
  t.after(() => server.close());
  const gate = await GateProxy.listen({ port: 0 });
  t.after(() => gate.close());
  const guard = new Guard({ budget: budget() });
  const attempts: string[] = [];
  guard.onAttempt((e) => attempts.push(`${e.port}:${e.outcome}`));
  const viaGate = (uri: string) =>
    new ProxyAgent({
      uri,
      clientFactory: (origin, options) =>
        new Pool(origin, { ...options, connect: guardedConnect(guard) }),
    });
  const agent = viaGate(`http://127.0.0.1:${gate.port}`);
  t.after(() => agent.close());
  const res = await undiciRequest(`http://127.0.0.1:${server.port}/`, { dispatcher: agent });
  assert.equal(await res.body.text(), "ok");
  assert.deepEqual(attempts, [`${gate.port}:connected`]);

  // A dead gate: refused once, then the breaker fails the request without an attempt.
  const dead = await closedPort();
  const deadAgent = viaGate(`http://127.0.0.1:${dead}`);
  t.after(() => deadAgent.close());
  await assert.rejects(
    undiciRequest(`http://127.0.0.1:${server.port}/`, { dispatcher: deadAgent }),
    /ECONNREFUSED/,
  );
  await assert.rejects(
    undiciRequest(`http://127.0.0.1:${server.port}/`, { dispatcher: deadAgent }),
    /it has been failing/,
  );
  assert.deepEqual(attempts, [`${gate.port}:connected`, `${dead}:failed`]);
});

test("node:https GuardedHttpsAgent against a dead peer: refused once, then failed fast by the breaker", async (t) => {
  const agent = new GuardedHttpsAgent({ budget: budget() });
  t.after(() => agent.destroy());
  const dead = await closedPort();
  await assert.rejects(
    get(https, { host: "127.0.0.1", port: dead, agent, ca: testCert.cert }),
    (e: Error & { code?: string }) => e.code === "ECONNREFUSED",
  );
  await assert.rejects(
    get(https, { host: "127.0.0.1", port: dead, agent, ca: testCert.cert }),
    (e: Error & { code?: string }) => e.code === "SYNLIMIT_BREAKER_OPEN",
  );
});

test("an echo port means no TCP attempt to a dead peer on every adapter alike (defaults only)", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const silentEcho = await SilentUdpPort.listen();
  t.after(() => silentEcho.close());
  const options = () => ({
    budget: budget(),
    preflight: { udpEchoPort: silentEcho.port, timeoutMs: 50 },
  });
  const attempts: string[] = [];
  const undiciGuard = new Guard(options());
  undiciGuard.onAttempt((e) => attempts.push(`undici:${e.port}`));
  const dispatcher = new Agent({ connect: guardedConnect(undiciGuard) });
  t.after(() => dispatcher.destroy());
  await assert.rejects(
    undiciRequest(`http://127.0.0.1:${tarpit.port}/`, { dispatcher }),
    /preflight silent/,
  );
  const httpAgent = new GuardedAgent(options());
  httpAgent.guard.onAttempt((e) => attempts.push(`http:${e.port}`));
  t.after(() => httpAgent.destroy());
  await assert.rejects(
    get(http, { host: "127.0.0.1", port: tarpit.port, agent: httpAgent }),
    /preflight silent/,
  );
  assert.deepEqual(attempts, []);
  assert.equal(silentEcho.received, 2, "each asked the echo port instead");
});

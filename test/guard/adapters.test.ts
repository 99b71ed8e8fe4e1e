import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import { type TestContext, test } from "node:test";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { Agent, request as undiciRequest } from "undici";
import { GuardedAgent, GuardedHttpsAgent } from "../../src/guard/adapters/http.js";
import { guardedConnect } from "../../src/guard/adapters/undici.js";
import { Guard } from "../../src/guard/guard.js";
import { synSentOf } from "../../src/probe/tcp-table.js";
import { LiveListener } from "../../src/targets/live.js";
import { SilentUdpPort } from "../../src/targets/silent-udp.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { get } from "../helpers/http.js";
import { HttpFixture, HttpsFixture, testCert } from "../helpers/servers.js";

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

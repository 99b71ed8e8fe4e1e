import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, stat } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { type Clock, systemClock } from "../../src/clock.js";
import { optionsFromEnv } from "../../src/emulate/env.js";
import { AttemptGate } from "../../src/gate/gate.js";
import { Acl, canonicalHost } from "../../src/proxy/acl.js";
import { parseHttpHead } from "../../src/proxy/http-parser.js";
import { Limiter } from "../../src/proxy/limiter.js";
import { MAX_IDENTITY_LABELS, ProxyMetrics } from "../../src/proxy/metrics.js";
import { GateProxy } from "../../src/proxy/server.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { FakeClock } from "../helpers/fake-clock.js";
import {
  RawClient,
  recordProxyEvents,
  socks5Connect,
  socks5Greeting,
  startProxy,
  until,
  untilIdle,
} from "../helpers/proxy-fixtures.js";

/** Collects process warnings of one kind while the test runs. */
function recordWarnings(t: TestContext, name: string): Error[] {
  const seen: Error[] = [];
  const on = (w: Error) => {
    if (w.name === name) seen.push(w);
  };
  process.on("warning", on);
  t.after(() => process.off("warning", on));
  return seen;
}

/** The system clock, counting the timers armed through it. */
function countingClock(): Clock & { armed: number } {
  const c = {
    armed: 0,
    now: () => systemClock.now(),
    setTimer(fn: () => void, ms: number) {
      c.armed++;
      return systemClock.setTimer(fn, ms);
    },
  };
  return c;
}

/** Lets real time pass for the loop to show itself (not a threshold: nothing is due in it). */
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tarpit(t: TestContext): Promise<Tarpit> {
  const tp = await Tarpit.listen();
  t.after(() => tp.close());
  return tp;
}

// --- 1. a huge timing ----------------------------------------------------

test("a deadline of 2^31 ms or more (or one that overflows when scaled) arms one timer, not one per millisecond", async (t) => {
  const warnings = recordWarnings(t, "TimeoutOverflowWarning");
  for (const options of [
    { timing: { connectTimeoutMs: 2 ** 31 } },
    { timing: { connectTimeoutMs: 1e308 } },
    { timing: "windows" as const, timeScale: 1e308 },
  ]) {
    const clock = countingClock();
    const gate = new AttemptGate({ ...options, clock });
    const attempt = gate.request(
      { host: "127.0.0.1", port: 9 },
      {
        onStart() {},
        onTimeout() {},
      },
    );
    assert.equal(attempt.state, "pending");
    await settle(30);
    assert.ok(clock.armed <= 2, `${JSON.stringify(options)}: ${clock.armed} timers armed in 30 ms`);
    assert.equal(attempt.state, "pending", "the deadline has not passed");
    attempt.cancel();
  }
  assert.deepEqual(warnings, []);
});

test("systemClock holds delays past 2^31 ms, and Infinity never fires", async (t) => {
  const warnings = recordWarnings(t, "TimeoutOverflowWarning");
  let fired = 0;
  const long = systemClock.setTimer(() => fired++, 2 ** 31 + 5);
  const never = systemClock.setTimer(() => fired++, Number.POSITIVE_INFINITY);
  await settle(20);
  long.cancel();
  never.cancel();
  assert.equal(fired, 0);
  assert.deepEqual(warnings, []);
});

test("non-finite timings are refused where they enter: env, flags text, admin API, install()", async (t) => {
  assert.throws(
    () => optionsFromEnv({ SYNLIMIT_TIMING: "9".repeat(400) }),
    (e: Error & { code?: string }) => e.code === "SYNLIMIT_INVALID_ENV",
  );
  const { install } = await import("../../src/emulate/install.js");
  assert.throws(() => install({ timing: { connectTimeoutMs: Number.POSITIVE_INFINITY } }));
  assert.throws(() => install({ timeScale: Number.POSITIVE_INFINITY }));
  const proxy = await startProxy(t, { identity: "global", admin: { port: 0 } });
  const admin = proxy.adminAddress;
  assert.ok(admin);
  const put = (raw: string) => adminCall(admin.port, "PUT", "/limits/global", raw);
  assert.equal((await put('{"timing":1e999}')).status, 400, "1e999 parses to Infinity");
  assert.equal((await put('{"timing":{"connectTimeoutMs":1e999}}')).status, 400);
  assert.equal((await put('{"rate":{"newDestinationsPerSecond":1e999}}')).status, 400);
  // Finite but huge: accepted, and safe (one timer, no warning).
  const warnings = recordWarnings(t, "TimeoutOverflowWarning");
  assert.equal((await put('{"timing":1e308}')).status, 200);
  const tp = await tarpit(t);
  const c = await RawClient.connect(t, proxy.port);
  c.write(Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", tp.port)]));
  await until(() => proxy.stats().inFlight === 1, "the attempt pending");
  await settle(30);
  assert.deepEqual(warnings, []);
  assert.equal(proxy.stats().inFlight, 1);
});

function adminCall(
  port: number,
  method: string,
  path: string,
  raw?: string,
  headers: Record<string, string> = {},
  socketPath?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(socketPath ? { socketPath } : { host: "127.0.0.1", port }),
        method,
        path,
        headers: {
          ...(raw !== undefined ? { "content-type": "application/json" } : {}),
          ...(socketPath ? { host: "localhost" } : {}),
          ...headers,
        },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(raw);
  });
}

// --- 2. a client whose address is unknown ---------------------------------

test('a client that resets before its address is read is refused, never pooled as source:""', async (t) => {
  const target = net.createServer((s) => s.destroy()).listen(0, "127.0.0.1");
  t.after(() => target.close());
  await once(target, "listening");
  const targetPort = (target.address() as net.AddressInfo).port;
  const proxy = await startProxy(t, { identity: "source", limits: { profile: "windows" } });
  const events = recordProxyEvents(t);
  const request = Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", targetPort)]);
  // Another process connects, sends its request and resets, all while this
  // process (the proxy's) is blocked: the proxy accepts a socket already gone.
  const child = spawnSync(
    process.execPath,
    [
      "-e",
      `const s = require("net").connect(${proxy.port}, "127.0.0.1", () => {
         s.write(Buffer.from("${request.toString("hex")}", "hex"), () => s.resetAndDestroy());
       });
       s.on("error", () => {}); s.on("close", () => process.exit(0));`,
    ],
    { timeout: 20_000 },
  );
  assert.equal(child.status, 0);
  await until(
    () => events.of("clientError").length > 0 || events.of("request").length > 0,
    "the proxy to see the client",
  );
  assert.deepEqual(
    events.of("request").map((e) => e.identity),
    [],
    "no request is made for a client without an address",
  );
  assert.equal(events.of("clientError")[0]?.reason, "peer address unknown");
  await untilIdle(proxy);
});

// --- 3. identity names ----------------------------------------------------

test("limits live in Maps under validated names: __proto__ is refused, user:__proto__ is an identity like any other", async (t) => {
  const proxy = await startProxy(t, { identity: "user", admin: { port: 0 } });
  const admin = proxy.adminAddress;
  assert.ok(admin);
  const body = JSON.stringify({ maxInFlight: 3 });
  assert.equal((await adminCall(admin.port, "PUT", "/limits/__proto__", body)).status, 400);
  assert.equal((await adminCall(admin.port, "PUT", "/limits/constructor", body)).status, 400);
  const ok = await adminCall(
    admin.port,
    "PUT",
    `/limits/${encodeURIComponent("user:__proto__")}`,
    body,
  );
  assert.equal(ok.status, 200, ok.body);
  const listed = JSON.parse((await adminCall(admin.port, "GET", "/limits")).body);
  assert.equal(listed.identities["user:__proto__"]?.maxInFlight, 3);
  assert.equal(Object.getPrototypeOf(proxy.limits().identities), Object.prototype);
  await assert.rejects(
    GateProxy.listen({ port: 0, identities: JSON.parse('{"__proto__": {"maxInFlight": 2}}') }),
    /identities key/,
  );
});

// --- 4. framing ------------------------------------------------------------

test("framing headers are never dropped: a Connection header naming one, or a non-chunked transfer coding, is a 400", () => {
  const head = (lines: string[], version = "1.1") =>
    Buffer.from(`POST http://127.0.0.1:8080/ HTTP/${version}\r\n${lines.join("\r\n")}\r\n\r\n`);
  for (const [lines, version] of [
    [["Host: a", "Content-Length: 5", "Connection: close, Content-Length"]],
    [["Host: a", "Transfer-Encoding: chunked", "Connection: transfer-encoding"]],
    [["Host: a", "Connection: host"]],
    [["Host: a", "Transfer-Encoding: chunked, gzip"]],
    [["Host: a", "Transfer-Encoding: chunked, chunked"]],
    [["Host: a", "Transfer-Encoding: chunked"], "1.0"],
    [["Host: a", "Content-Length: +5"]],
  ] as Array<[string[], string?]>) {
    const r = parseHttpHead(head(lines, version));
    assert.equal(r.kind, "error", lines.join(" | "));
    assert.equal(r.kind === "error" && r.error.status, 400);
  }
  assert.equal(
    parseHttpHead(head(["Host: a", "Content-Length: 5", "Connection: keep-alive"])).kind,
    "ok",
  );
});

test("a forwarded request whose framing would change is refused before anything reaches the upstream", async (t) => {
  let upstreamBytes = 0;
  const upstream = net
    .createServer((s) => {
      s.on("data", (d) => {
        upstreamBytes += d.length;
      });
      s.on("error", () => {});
    })
    .listen(0, "127.0.0.1");
  t.after(() => upstream.close());
  await once(upstream, "listening");
  const port = (upstream.address() as net.AddressInfo).port;
  const proxy = await startProxy(t, { identity: "global", limits: { profile: "windows" } });
  const c = await RawClient.connect(t, proxy.port);
  c.write(
    `POST http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 44\r\nConnection: Content-Length\r\n\r\n` +
      "GET /admin HTTP/1.1\r\nHost: internal\r\n\r\n\r\n\r\n",
  );
  const reply = await c.readHttpHead();
  assert.match(reply, /^HTTP\/1\.1 400 /);
  assert.match(reply, /framing header/);
  await untilIdle(proxy);
  assert.equal(upstreamBytes, 0);
});

// --- 5. admin authentication -------------------------------------------------

test("admin API with a token: refused without it or with a wrong one (401), served with it", async (t) => {
  const token = "s3cret-token-0123456789";
  const proxy = await startProxy(t, { identity: "global", admin: { port: 0, token } });
  const admin = proxy.adminAddress;
  assert.ok(admin);
  assert.equal((await adminCall(admin.port, "GET", "/stats")).status, 401);
  assert.equal(
    (await adminCall(admin.port, "POST", "/reset", undefined, { authorization: "Bearer wrong" }))
      .status,
    401,
  );
  assert.equal(
    (
      await adminCall(admin.port, "POST", "/reset", undefined, {
        authorization: `Bearer ${token}x`,
      })
    ).status,
    401,
  );
  const ok = await adminCall(admin.port, "GET", "/stats", undefined, {
    authorization: `Bearer ${token}`,
  });
  assert.equal(ok.status, 200, ok.body);
  await assert.rejects(
    GateProxy.listen({ port: 0, admin: { port: 0, token: "short" } }),
    /admin\.token/,
  );
});

test("admin API on a Unix socket: created with mode 0600, served there, and no TCP port", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "synlimit-admin-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, "admin.sock");
  const proxy = await startProxy(t, { identity: "global", admin: { socketPath } });
  assert.equal(proxy.adminAddress?.path, socketPath);
  assert.equal(proxy.adminAddress?.port, 0);
  assert.equal((await stat(socketPath)).mode & 0o777, 0o600);
  const r = await adminCall(0, "GET", "/stats", undefined, {}, socketPath);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).clients, 0);
});

// --- 6. link-local ------------------------------------------------------------

test("link-local destinations (cloud metadata) are denied by default, as visible rules, and can be allowed", async (t) => {
  // Checked against the proxy's own rules, never dialled.
  const proxy = await startProxy(t);
  assert.ok(proxy.acl.deny.includes("169.254.0.0/16"));
  assert.ok(proxy.acl.deny.includes("fe80::/10"));
  const acl = new Acl(proxy.acl.allow, proxy.acl.deny);
  for (const spelling of ["169.254.169.254", "::ffff:169.254.169.254", "0xa9fea9fe", "fe80::1"]) {
    const host = canonicalHost(spelling);
    assert.ok(host);
    assert.equal(acl.checkRequested(host).allowed, false, spelling);
  }
  const open = await startProxy(t, { denyLinkLocal: false });
  assert.deepEqual(open.acl.deny, []);
});

// --- 7. bounded growth ----------------------------------------------------------

test("idle identities are evicted, rate-policy ones too: 5000 usernames leave a bounded limiter", () => {
  const clock = new FakeClock();
  const limiter = new Limiter({ profile: "williamson" }, new Map(), { timeScale: 1, clock });
  for (let i = 0; i < 5000; i++) {
    const identity = `user:u${i}`;
    const dial = { identity } as never;
    limiter.gateOf(identity);
    limiter.track(dial);
    limiter.untrack(dial);
    clock.advance(10);
  }
  assert.ok(limiter.size <= 2048, `${limiter.size} identities kept`);
  // Once idle for long, every one goes.
  clock.advance(120_000);
  const last = { identity: "user:last" } as never;
  limiter.track(last);
  limiter.untrack(last);
  for (let i = 0; i < 2100; i++) {
    const d = { identity: `user:v${i}` } as never;
    limiter.track(d);
    limiter.untrack(d);
  }
  assert.ok(limiter.size <= 2200, `${limiter.size} identities kept`);
});

test("metric labels are bounded: processes by executable (no pid), at most MAX_IDENTITY_LABELS, then other", async () => {
  const metrics = new ProxyMetrics({ identities: () => [], clients: () => 0, tunnels: () => 0 });
  for (let pid = 1; pid <= 50; pid++) metrics.limitReached(`process:${pid}:/usr/bin/curl`);
  for (let i = 0; i < 1000; i++) metrics.limitReached(`user:u${i}`);
  const text = await metrics.text();
  const lines = text.split("\n").filter((l) => l.startsWith("synlimit_gate_limit_reached_total{"));
  assert.ok(lines.length <= MAX_IDENTITY_LABELS + 1, `${lines.length} label values`);
  assert.ok(lines.includes('synlimit_gate_limit_reached_total{identity="exe:/usr/bin/curl"} 50'));
  assert.ok(lines.some((l) => l.startsWith('synlimit_gate_limit_reached_total{identity="other"}')));
  assert.doesNotMatch(text, /process:\d+/);
});

// --- 8. file descriptors ----------------------------------------------------------

/**
 * A gate whose descriptor budget leaves `budget` fds for clients and their
 * upstreams, with `pending` SOCKS clients each holding an attempt to a tarpit.
 */
async function fdBudgetProxy(t: TestContext, budget: number, pending: number) {
  const tp = await tarpit(t);
  const events = recordProxyEvents(t);
  const { openFds } = await import("../../src/proxy/fds.js");
  const before = openFds();
  assert.ok(before !== null);
  const proxy = await startProxy(t, {
    identity: "global",
    limits: { profile: "windows" },
    admin: { port: 0 },
    maxOpenFds: before + 2 + 8 + budget,
  });
  const admin = proxy.adminAddress;
  assert.ok(admin);
  const clients: RawClient[] = [];
  for (let i = 0; i < pending; i++) {
    const c = await RawClient.connect(t, proxy.port);
    c.write(Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", tp.port)]));
    clients.push(c);
    await until(() => proxy.stats().inFlight === i + 1, `attempt ${i + 1} pending`);
  }
  return { tp, events, proxy, admin, clients };
}

test("near the descriptor limit requests are told to try later (SOCKS REP 01, HTTP 503 + Retry-After), reported once, counted, and the admin API still answers", async (t) => {
  // The budget is what is left of maxOpenFds beside the fds open at listen
  // and the admin reserve: 11 here (5 clients with an upstream each, and one
  // more client at a time, whose upstream does not fit; 10 in use stays
  // above 90 % of 11, so the episode goes on between the two refusals).
  const { tp, events, proxy, admin, clients } = await fdBudgetProxy(t, 11, 5);
  const socks = await RawClient.connect(t, proxy.port);
  socks.write(Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", tp.port)]));
  assert.deepEqual([...(await socks.read(4))], [5, 0, 5, 1], "REP 01: the server's own failure");
  await until(() => proxy.stats().clients === 5, "the refused client closed");
  const web = await RawClient.connect(t, proxy.port);
  web.write(`CONNECT 127.0.0.1:${tp.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const head = await web.readHttpHead();
  assert.match(head, /^HTTP\/1\.1 503 /);
  assert.match(head, /\r\nRetry-After: 1\r\n/);
  assert.match(head, /try again later/);
  const starts = events.of("fdLimit").filter((e) => e.event === "start");
  assert.equal(starts.length, 1, "one report per episode, not per client");
  const metrics = await adminCall(admin.port, "GET", "/metrics");
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^synlimit_gate_fd_limit_refusals_total\{reason="try-later"\} 2$/m);
  for (const c of clients) c.socket.destroy();
  await untilIdle(proxy);
  assert.equal(events.of("fdLimit").filter((e) => e.event === "end").length, 1);
});

test("a client that would take the last descriptor (clients and their upstreams share the budget) is closed at accept and counted as dropped", async (t) => {
  // A budget of 6: three clients with an upstream each fill it, though
  // three clients are far below the listener's own client limit.
  const { events, proxy, admin } = await fdBudgetProxy(t, 6, 3);
  const late = await RawClient.connect(t, proxy.port);
  await late.closed;
  assert.equal(proxy.stats().clients, 3);
  const metrics = await adminCall(admin.port, "GET", "/metrics");
  assert.match(metrics.body, /^synlimit_gate_fd_limit_refusals_total\{reason="dropped"\} 1$/m);
  assert.doesNotMatch(metrics.body, /client_errors_total\{reason="max-clients"\}/);
  assert.equal(events.of("fdLimit").filter((e) => e.event === "start").length, 1);
});

// --- 9. bare LF and slowloris -------------------------------------------------------

test("a request head ending in bare LF is answered 400 at once, not at the handshake deadline", async (t) => {
  // The deadline runs on a clock nobody advances: only an immediate answer ends this.
  const proxy = await startProxy(t, { clock: new FakeClock() });
  const c = await RawClient.connect(t, proxy.port);
  c.write("CONNECT 127.0.0.1:9 HTTP/1.1\nHost: 127.0.0.1\n\n");
  const head = await c.readHttpHead();
  assert.match(head, /^HTTP\/1\.1 400 /);
  assert.match(head, /bare LF/);
});

test("slowloris: a client sending one byte a second is cut by the handshake deadline all the same", async (t) => {
  const clock = new FakeClock();
  const events = recordProxyEvents(t);
  const proxy = await startProxy(t, { clock, handshakeTimeoutMs: 10_000 });
  const c = await RawClient.connect(t, proxy.port);
  const head = "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  let closed = false;
  // Its own listener: RawClient.closed rejects on the reset that may end it.
  const gone = new Promise<void>((resolve) =>
    c.socket.once("close", () => {
      closed = true;
      resolve();
    }),
  );
  await until(() => proxy.stats().clients === 1, "the client accepted");
  for (let i = 0; i < 9; i++) {
    c.write(head.slice(i, i + 1));
    await settle(5);
    clock.advance(1_000);
  }
  assert.equal(closed, false, "still within its 10 s");
  c.write(head.slice(9, 10));
  clock.advance(1_000);
  await gone;
  const error = await events.next("clientError");
  assert.equal(error.reason, "handshake deadline passed");
  await untilIdle(proxy);
});

// --- 10. two proxies in one process ---------------------------------------------------

test("two GateProxy instances in one process: each one's limit events and metrics are its own", async (t) => {
  const tp = await tarpit(t);
  const a = await startProxy(t, { identity: "global" });
  const b = await startProxy(t, { identity: "global" });
  // b has a gate of its own (one attempt, under its limit)…
  const one = await RawClient.connect(t, b.port);
  one.write(Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", tp.port)]));
  await until(() => b.stats().inFlight === 1, "b's attempt pending");
  // …and only a goes over its limit.
  for (let i = 0; i < 2; i++) {
    const c = await RawClient.connect(t, a.port);
    c.write(Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", tp.port)]));
  }
  await until(() => a.stats().queued === 1, "one attempt pending and one queued on a");
  assert.match(await a.metrics(), /^synlimit_gate_limit_reached_total\{identity="global"\} 1$/m);
  assert.doesNotMatch(await b.metrics(), /^synlimit_gate_limit_reached_total\{/m);
});

test("identity process: the limit-reached metric is labelled by executable, never by pid", async (t) => {
  const tp = await tarpit(t);
  const proxy = await startProxy(t, { identity: "process" });
  for (let i = 0; i < 2; i++) {
    const c = await RawClient.connect(t, proxy.port);
    c.write(Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", tp.port)]));
  }
  await until(() => proxy.stats().queued === 1, "one attempt pending and one queued");
  const text = await proxy.metrics();
  assert.match(text, /^synlimit_gate_limit_reached_total\{identity="exe:[^"]+"\} 1$/m);
  assert.match(text, /^synlimit_gate_attempts_queued\{identity="exe:[^"]+"\} 1$/m);
  assert.doesNotMatch(text, /identity="process:/);
});

test("an identity whose every request is refused before dialling leaves no gate behind (the owner check creates none)", async (t) => {
  const proxy = await startProxy(t, { identity: "user", deny: ["127.0.0.2"] });
  for (let i = 0; i < 20; i++) {
    const c = await RawClient.connect(t, proxy.port);
    const user = Buffer.from(`u${i}`);
    c.write(
      Buffer.concat([
        socks5Greeting([2]),
        Buffer.from([1, user.length]),
        user,
        Buffer.from([1, 120]),
      ]),
    );
    c.write(socks5Connect("127.0.0.2", 9));
    // Method, auth status, then REP 02: not allowed by the rules.
    assert.deepEqual([...(await c.read(6))].slice(0, 6), [5, 2, 1, 0, 5, 2]);
    await c.closed;
  }
  assert.equal(proxy.identityCount, 0);
});

import assert from "node:assert/strict";
import http from "node:http";
import { type TestContext, test } from "node:test";
import type { GateProxy } from "../../src/proxy/server.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import {
  RawClient,
  recordProxyEvents,
  socks5Connect,
  socks5Greeting,
  startProxy,
  until,
  untilIdle,
} from "../helpers/proxy-fixtures.js";

interface Reply {
  status: number;
  type: string;
  body: string;
}

function call(
  proxy: GateProxy,
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const admin = proxy.adminAddress;
  assert.ok(admin);
  const body =
    options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: admin.host,
        port: admin.port,
        method,
        path,
        headers: {
          ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
          ...options.headers,
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          text += d;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers["content-type"]),
            body: text,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function withAdmin(t: TestContext): Promise<GateProxy> {
  return startProxy(t, { identity: "global", admin: { port: 0 } });
}

test("admin API: read and change limits per identity and by default", async (t) => {
  const proxy = await withAdmin(t);
  const events = recordProxyEvents(t);
  const limits = JSON.parse((await call(proxy, "GET", "/limits")).body);
  assert.deepEqual(limits.default, {
    profile: "incident",
    maxInFlight: 1,
    policy: "queue",
    timing: "windows-2008",
    scope: "identity",
  });
  const put = await call(proxy, "PUT", `/limits/${encodeURIComponent("exe:/usr/bin/curl")}`, {
    body: { profile: "winxp-sp2", maxInFlight: "unlimited" },
  });
  assert.equal(put.status, 200, put.body);
  assert.equal(JSON.parse(put.body).identities["exe:/usr/bin/curl"].maxInFlight, "unlimited");
  assert.equal(
    (await call(proxy, "PUT", "/limits/default", { body: { profile: "rfc6455" } })).status,
    200,
  );
  assert.equal(proxy.limits().default.scope, "destination");
  const bad = await call(proxy, "PUT", "/limits/default", { body: { maxInFlight: 0 } });
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).error, /maxInFlight/);
  assert.equal(
    (await call(proxy, "DELETE", `/limits/${encodeURIComponent("exe:/usr/bin/curl")}`)).status,
    200,
  );
  assert.equal((await call(proxy, "DELETE", "/limits/user:nobody")).status, 404);
  assert.equal((await call(proxy, "POST", "/reset")).status, 200);
  assert.equal(proxy.limits().default.profile, "incident");
  assert.ok(events.of("admin").some((e) => e.method === "PUT" && e.status === 200));
});

test("admin API: attempts in flight and queued, cancel one, and Prometheus metrics", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const proxy = await withAdmin(t);
  const clients: RawClient[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await RawClient.connect(t, proxy.port);
    c.write(Buffer.concat([socks5Greeting(), socks5Connect("127.0.0.1", tarpit.port)]));
    clients.push(c);
  }
  await until(() => proxy.stats().queued === 2, "one pending, two queued");
  const { attempts } = JSON.parse((await call(proxy, "GET", "/attempts")).body) as {
    attempts: Array<{ id: number; state: string; identity: string; port: number }>;
  };
  assert.deepEqual(
    attempts.map((a) => [a.state, a.identity, a.port]),
    [
      ["pending", "global", tarpit.port],
      ["queued", "global", tarpit.port],
      ["queued", "global", tarpit.port],
    ],
  );
  const metrics = await call(proxy, "GET", "/metrics");
  assert.equal(metrics.status, 200);
  assert.match(metrics.type, /^text\/plain/);
  assert.match(metrics.body, /^synlimit_gate_attempts_in_flight\{identity="global"\} 1$/m);
  assert.match(metrics.body, /^synlimit_gate_attempts_queued\{identity="global"\} 2$/m);
  assert.match(metrics.body, /^synlimit_gate_limit_reached_total\{identity="global"\} 1$/m);
  assert.match(metrics.body, /^synlimit_gate_attempt_wait_seconds_bucket\{le="\+Inf"\} 1$/m);
  assert.match(metrics.body, /^synlimit_gate_clients 3$/m);
  assert.equal((await call(proxy, "DELETE", `/attempts/${attempts[0]?.id}`)).status, 200);
  assert.equal((await clients[0]?.read(12))?.[3], 1, "the cancelled attempt's client gets REP 01");
  await until(() => proxy.stats().queued === 1, "the next one started");
  assert.equal((await call(proxy, "DELETE", "/attempts/999999")).status, 404);
  const stats = JSON.parse((await call(proxy, "GET", "/stats")).body);
  assert.deepEqual([stats.inFlight, stats.queued], [1, 1]);
  assert.equal((await call(proxy, "POST", "/reset")).status, 200);
  await untilIdle(proxy);
  const after = (await call(proxy, "GET", "/metrics")).body;
  assert.match(after, /^synlimit_gate_attempts_total\{outcome="reset"\} 3$/m);
});

test("admin API refuses what a web page could send: browser UA, Origin, foreign Host, non-JSON bodies", async (t) => {
  const proxy = await withAdmin(t);
  const browser = await call(proxy, "GET", "/limits", {
    headers: { "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0" },
  });
  assert.equal(browser.status, 403);
  assert.equal((await call(proxy, "GET", "/limits", { headers: { origin: "null" } })).status, 403);
  assert.equal(
    (await call(proxy, "POST", "/reset", { headers: { origin: "http://127.0.0.1" } })).status,
    403,
  );
  assert.equal(
    (await call(proxy, "GET", "/limits", { headers: { host: "attacker.example:9180" } })).status,
    403,
  );
  assert.equal(
    (await call(proxy, "GET", "/limits", { headers: { host: "localhost:9180" } })).status,
    200,
  );
  const form = await call(proxy, "PUT", "/limits/default", {
    raw: '{"profile":"windows"}',
    headers: { "content-type": "text/plain" },
  });
  assert.equal(form.status, 415);
  assert.equal((await call(proxy, "GET", "/nope")).status, 404);
  assert.equal((await call(proxy, "POST", "/limits")).status, 405);
});

test("the admin API never listens beyond loopback", async () => {
  const { GateProxy } = await import("../../src/proxy/server.js");
  await assert.rejects(
    GateProxy.listen({ port: 0, admin: { host: "0.0.0.0", port: 0 } }),
    /admin\.host/,
  );
  await assert.rejects(GateProxy.listen({ port: 0, host: "0.0.0.0" }), /loopback/);
  await assert.rejects(
    GateProxy.listen({ port: 0, host: "0.0.0.0", allowNonLoopback: true }),
    /users must be configured/,
  );
});

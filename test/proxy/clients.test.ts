import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { ProxyAgent, request } from "undici";
import {
  recordProxyEvents,
  requireBinary,
  run,
  socksConnect,
  startProxy,
  untilIdle,
} from "../helpers/proxy-fixtures.js";
import { HttpFixture, HttpsFixture } from "../helpers/servers.js";

async function http(t: TestContext): Promise<HttpFixture> {
  const f = await new HttpFixture().listen();
  t.after(() => f.close());
  return f;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "synlimit-gate-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function proxychainsConf(dir: string, proxyPort: number, extra = ""): string {
  const path = join(dir, "proxychains.conf");
  // No localnet lines: loopback destinations must go through the proxy too.
  // No proxy_dns: the programs below connect to literal addresses.
  writeFileSync(
    path,
    `strict_chain\nquiet_mode\ntcp_read_time_out 15000\ntcp_connect_time_out 8000\n${extra}[ProxyList]\nsocks5 127.0.0.1 ${proxyPort}\n`,
  );
  return path;
}

test("curl --socks5-hostname: the proxy resolves the name and attributes the attempt to curl", async (t) => {
  const curl = requireBinary("curl");
  const target = await http(t);
  const proxy = await startProxy(t, { identity: "process" });
  const events = recordProxyEvents(t);
  // localhost may resolve to ::1 first, where nothing listens: the proxy
  // tries the next address as a resolver-aware client would.
  const r = await run(curl, [
    "-sS",
    "--socks5-hostname",
    `127.0.0.1:${proxy.port}`,
    `http://localhost:${target.port}/`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "ok");
  const attempt = await events.next("attempt", (e) => e.outcome === "connected");
  assert.match(String(attempt.identity), /^process:\d+:.*\/curl$/);
  assert.equal(attempt.address, "127.0.0.1");
  await untilIdle(proxy);
});

test("curl -x: HTTP CONNECT tunnels (http and https) and absolute-URI forwarding", async (t) => {
  const curl = requireBinary("curl");
  const target = await http(t);
  const tls = await new HttpsFixture().listen();
  t.after(() => tls.close());
  const proxy = await startProxy(t);
  const via = `http://127.0.0.1:${proxy.port}`;
  const tunnel = await run(curl, ["-sS", "-p", "-x", via, `http://127.0.0.1:${target.port}/`]);
  assert.equal(tunnel.code, 0, tunnel.stderr);
  assert.equal(tunnel.stdout, "ok");
  const https = await run(curl, ["-sS", "-k", "-x", via, `https://127.0.0.1:${tls.port}/`]);
  assert.equal(https.code, 0, https.stderr);
  assert.equal(https.stdout, "ok");
  const forward = await run(curl, ["-sS", "-x", via, `http://127.0.0.1:${target.port}/path?q=1`]);
  assert.equal(forward.code, 0, forward.stderr);
  assert.equal(forward.stdout, "ok");
  await untilIdle(proxy);
});

test("proxychains4 runs unmodified programs (curl, node) through the gate", async (t) => {
  const proxychains = requireBinary("proxychains4");
  const curl = requireBinary("curl");
  const target = await http(t);
  const proxy = await startProxy(t, { identity: "exe" });
  const events = recordProxyEvents(t);
  const conf = proxychainsConf(await tempDir(t), proxy.port);

  const viaCurl = await run(proxychains, [
    "-q",
    "-f",
    conf,
    curl,
    "-sS",
    `http://127.0.0.1:${target.port}/`,
  ]);
  assert.equal(viaCurl.code, 0, viaCurl.stderr);
  assert.equal(viaCurl.stdout, "ok");
  const curlAttempt = await events.next("attempt", (e) => String(e.identity).endsWith("/curl"));
  assert.equal(curlAttempt.outcome, "connected");

  const script = `const s = require("node:net").connect(${target.port}, "127.0.0.1", () => { s.end("GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n"); }); let b = ""; s.on("data", (d) => b += d); s.on("end", () => process.stdout.write(b.endsWith("ok") ? "ok" : b));`;
  const viaNode = await run(proxychains, ["-q", "-f", conf, process.execPath, "-e", script]);
  assert.equal(viaNode.code, 0, viaNode.stderr);
  assert.equal(viaNode.stdout, "ok");
  const nodeAttempt = await events.next(
    "attempt",
    (e) => String(e.identity) === `exe:${process.execPath}`,
  );
  assert.equal(nodeAttempt.outcome, "connected");
  assert.equal(target.accepted, 2);
  await untilIdle(proxy);
});

test("the socks npm client, with username/password authentication", async (t) => {
  const target = await http(t);
  const proxy = await startProxy(t, {
    users: [{ username: "alice", password: "s3cret" }],
    identity: "user",
  });
  const events = recordProxyEvents(t);
  const socket = await socksConnect(
    t,
    proxy,
    { host: "127.0.0.1", port: target.port },
    { userId: "alice", password: "s3cret" },
  );
  socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  let body = "";
  socket.setEncoding("utf8").on("data", (d: string) => {
    body += d;
  });
  await new Promise((r) => socket.once("end", r));
  assert.ok(body.endsWith("ok"), body);
  assert.equal((await events.next("attempt")).identity, "user:alice");
  await assert.rejects(
    socksConnect(
      t,
      proxy,
      { host: "127.0.0.1", port: target.port },
      { userId: "alice", password: "wrong" },
    ),
    /authentication/i,
  );
  await assert.rejects(
    socksConnect(t, proxy, { host: "127.0.0.1", port: target.port }),
    /no accepted authentication/i,
  );
  await untilIdle(proxy);
});

test("undici ProxyAgent: CONNECT tunnel and plain forwarding, with Basic proxy auth", async (t) => {
  const target = await http(t);
  const proxy = await startProxy(t, { users: [{ username: "bob", password: "hunter2" }] });
  const events = recordProxyEvents(t);
  const token = `Basic ${Buffer.from("bob:hunter2").toString("base64")}`;
  for (const proxyTunnel of [true, false]) {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, token, proxyTunnel });
    t.after(() => agent.close());
    const res = await request(`http://127.0.0.1:${target.port}/`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), "ok");
  }
  assert.deepEqual(
    events.of("request").map((e) => e.protocol),
    ["http-connect", "http-forward"],
  );
  const anonymous = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}` });
  t.after(() => anonymous.close());
  await assert.rejects(
    request(`http://127.0.0.1:${target.port}/`, { dispatcher: anonymous }),
    /407/,
  );
});

import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { synSentOf } from "../../src/os/linux/tcp-table.js";
import type { GateProxy } from "../../src/proxy/server.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import {
  closedPort,
  RawClient,
  recordProxyEvents,
  socks5Connect,
  socks5ConnectIpv6,
  socks5Greeting,
  startProxy,
  until,
  untilIdle,
} from "../helpers/proxy-fixtures.js";
import { HttpFixture } from "../helpers/servers.js";

/** Greets, sends `request`, returns the client and the reply's first 10 bytes (IPv4 BND). */
async function socks(t: TestContext, proxy: GateProxy, request: Buffer) {
  const c = await RawClient.connect(t, proxy.port);
  c.write(socks5Greeting());
  assert.deepEqual([...(await c.read(2))], [5, 0]);
  c.write(request);
  const reply = await c.read(2 + 10);
  return { client: c, rep: reply[3], reply: reply.subarray(2) };
}

/** Sends a request and leaves it waiting (no reply expected yet). */
async function socksPending(t: TestContext, proxy: GateProxy, request: Buffer): Promise<RawClient> {
  const c = await RawClient.connect(t, proxy.port);
  c.write(Buffer.concat([socks5Greeting(), request]));
  await c.read(2);
  return c;
}

async function connectHead(t: TestContext, proxy: GateProxy, authority: string): Promise<string> {
  const c = await RawClient.connect(t, proxy.port);
  c.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  return (await c.readHttpHead()).split("\r\n")[0] ?? "";
}

async function tarpit(t: TestContext): Promise<Tarpit> {
  const tp = await Tarpit.listen();
  t.after(() => tp.close());
  return tp;
}

async function live(t: TestContext): Promise<HttpFixture> {
  const f = await new HttpFixture().listen();
  t.after(() => f.close());
  return f;
}

const BND_ZERO = [1, 0, 0, 0, 0, 0, 0];

test("success: REP 00 with the upstream's local address and port in BND", async (t) => {
  const target = await live(t);
  const proxy = await startProxy(t);
  const { reply } = await socks(t, proxy, socks5Connect("127.0.0.1", target.port));
  assert.deepEqual([...reply.subarray(0, 8)], [5, 0, 0, 1, 127, 0, 0, 1]);
  assert.ok(reply.readUInt16BE(8) > 0);
});

test("refused and unreachable upstreams: REP 05 / HTTP 502, BND well-formed", async (t) => {
  const port = await closedPort();
  const proxy = await startProxy(t);
  const { reply } = await socks(t, proxy, socks5Connect("127.0.0.1", port));
  assert.deepEqual([...reply], [5, 5, 0, ...BND_ZERO]);
  assert.equal(await connectHead(t, proxy, `127.0.0.1:${port}`), "HTTP/1.1 502 Bad Gateway");
  const badName = await socks(t, proxy, socks5Connect("bad name!", 80));
  assert.deepEqual([...badName.reply], [5, 4, 0, ...BND_ZERO]);
  await untilIdle(proxy);
});

test("a deny rule holds against every spelling of the address: REP 02 / HTTP 403, nothing dialled", async (t) => {
  const target = await live(t);
  const proxy = await startProxy(t, {
    deny: ["127.0.0.1", "::1"],
    // A name that resolves onto the denied address is refused after resolution.
    lookup: async (name) => (name === "rebind.test" ? ["127.0.0.1"] : []),
  });
  const events = recordProxyEvents(t);
  const spellings = [
    "127.1",
    "0x7f000001",
    "0X7F.0.0.1",
    "2130706433",
    "0177.0.0.1",
    "127.0.0.1.",
    "::ffff:127.0.0.1",
    "0:0:0:0:0:0:0:1",
    "rebind.test",
    "REBIND.TEST.",
  ];
  for (const host of spellings) {
    const { rep, reply } = await socks(t, proxy, socks5Connect(host, target.port));
    assert.equal(rep, 2, `SOCKS ${host}`);
    assert.deepEqual([...reply.subarray(4)], BND_ZERO.slice(1));
  }
  const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 127, 0, 0, 1];
  assert.equal((await socks(t, proxy, socks5ConnectIpv6(mapped, target.port))).rep, 2);
  for (const authority of ["127.1", "0x7f000001", "[::ffff:127.0.0.1]", "[::1]", "2130706433"]) {
    assert.equal(
      await connectHead(t, proxy, `${authority}:${target.port}`),
      "HTTP/1.1 403 Forbidden",
      authority,
    );
  }
  assert.equal(target.accepted, 0);
  assert.equal(events.of("denied").length, spellings.length + 1 + 5);
  await untilIdle(proxy);
});

test("unspecified addresses and the proxy's own ports are never destinations", async (t) => {
  const proxy = await startProxy(t, { admin: { port: 0 } });
  assert.equal((await socks(t, proxy, socks5Connect("0.0.0.0", 80))).rep, 2);
  assert.equal((await socks(t, proxy, socks5Connect("127.0.0.1", proxy.port))).rep, 2);
  assert.equal(
    (await socks(t, proxy, socks5Connect("127.0.0.2", proxy.adminAddress?.port ?? 0))).rep,
    2,
  );
  assert.equal(await connectHead(t, proxy, `localhost:${proxy.port}`), "HTTP/1.1 403 Forbidden");
});

test("an allow list admits only what it names", async (t) => {
  const target = await live(t);
  const proxy = await startProxy(t, { allow: ["::1/128"] });
  assert.equal((await socks(t, proxy, socks5Connect("127.0.0.1", target.port))).rep, 2);
  assert.equal(target.accepted, 0);
});

test("unsupported command and address type: REP 07 / 08 with a well-formed reply", async (t) => {
  const proxy = await startProxy(t);
  const bind = Buffer.from([5, 2, 0, 1, 127, 0, 0, 1, 0, 80]);
  assert.deepEqual([...(await socks(t, proxy, bind)).reply], [5, 7, 0, ...BND_ZERO]);
  const atyp = Buffer.from([5, 1, 0, 9, 127, 0, 0, 1, 0, 80]);
  assert.deepEqual([...(await socks(t, proxy, atyp)).reply], [5, 8, 0, ...BND_ZERO]);
  await untilIdle(proxy);
});

test("the limiter's deadline: REP 06 (TTL expired) / HTTP 504, and the SYN ends with it", async (t) => {
  const tp = await tarpit(t);
  const proxy = await startProxy(t, { limits: { profile: "incident", timing: 50 } });
  const { reply } = await socks(t, proxy, socks5Connect("127.0.0.1", tp.port));
  assert.deepEqual([...reply], [5, 6, 0, ...BND_ZERO]);
  assert.equal(await connectHead(t, proxy, `127.0.0.1:${tp.port}`), "HTTP/1.1 504 Gateway Timeout");
  await untilIdle(proxy);
  assert.deepEqual(
    (await synSentOf()).filter((e) => e.remote.port === tp.port),
    [],
  );
});

test("clients that leave while queued or while dialling release their slot exactly once", async (t) => {
  const tp = await tarpit(t);
  const proxy = await startProxy(t, { identity: "global" });
  const events = recordProxyEvents(t);
  const first = await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  const second = await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  await until(
    () => proxy.stats().queued === 1 && proxy.stats().inFlight === 1,
    "one pending, one queued",
  );
  second.socket.destroy();
  await until(() => proxy.stats().queued === 0, "the queued attempt gone");
  assert.equal(proxy.stats().inFlight, 1);
  assert.equal((await synSentOf()).filter((e) => e.remote.port === tp.port).length, 1);
  first.socket.end();
  await untilIdle(proxy);
  assert.deepEqual(
    (await synSentOf()).filter((e) => e.remote.port === tp.port),
    [],
    "the pending SYN ended with its client",
  );
  assert.deepEqual(
    events.of("attempt").map((e) => e.outcome),
    ["cancelled", "cancelled"],
  );
});

test("admin reset and cancel end attempts: REP 01 to their clients, slots released", async (t) => {
  const tp = await tarpit(t);
  const proxy = await startProxy(t, { identity: "global" });
  const a = await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  const b = await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  const c = await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  await until(() => proxy.stats().queued === 2, "two queued");
  const [, queuedId] = proxy.attempts().map((x) => x.id);
  assert.equal(proxy.cancelAttempt(queuedId ?? 0), true);
  assert.equal((await b.read(12))[3], 1);
  assert.deepEqual(proxy.reset(), { cancelled: 2 });
  assert.equal((await a.read(12))[3], 1);
  assert.equal((await c.read(12))[3], 1);
  await untilIdle(proxy);
});

test("raising the limit starts queued attempts; lowering it stops excess SYNs and queues them again", async (t) => {
  const tp = await tarpit(t);
  const target = await live(t);
  const proxy = await startProxy(t, { identity: "global" });
  const a = await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  const b = await socksPending(t, proxy, socks5Connect("127.0.0.1", target.port));
  await until(() => proxy.stats().queued === 1, "B queued behind A");
  proxy.setLimits("default", { profile: "incident", maxInFlight: 2 });
  assert.equal((await b.read(12))[3], 0, "B connected while A is still pending");
  b.socket.destroy();
  const c = await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  await until(() => proxy.stats().inFlight === 2, "two pending on the tarpit");
  proxy.setLimits("default", { profile: "incident" });
  assert.deepEqual([proxy.stats().inFlight, proxy.stats().queued], [1, 1]);
  const syns = async () => (await synSentOf()).filter((e) => e.remote.port === tp.port).length;
  let count = await syns();
  // The aborted SYN leaves the kernel's table once its fd is closed, a turn later.
  for (let i = 0; i < 100 && count !== 1; i++) count = await syns();
  assert.equal(count, 1, "only one SYN in flight under the lowered limit");
  a.socket.destroy();
  c.socket.destroy();
  await untilIdle(proxy);
});

test("the reject policy refuses over the limit at once: REP 05", async (t) => {
  const tp = await tarpit(t);
  const target = await live(t);
  const proxy = await startProxy(t, {
    identity: "global",
    limits: { profile: "incident", policy: "reject" },
  });
  await socksPending(t, proxy, socks5Connect("127.0.0.1", tp.port));
  await until(() => proxy.stats().inFlight === 1, "one pending");
  assert.equal((await socks(t, proxy, socks5Connect("127.0.0.1", target.port))).rep, 5);
  assert.equal(target.accepted, 0);
});

test("HTTP: 407 without credentials, 400 for a malformed head, 431 for an oversized one", async (t) => {
  const proxy = await startProxy(t, {
    users: [{ username: "u", password: "p" }],
    maxHeaderBytes: 1024,
  });
  const head = async (text: string) => {
    const c = await RawClient.connect(t, proxy.port);
    c.write(text);
    const h = await c.readHttpHead();
    await c.closed;
    return h;
  };
  const auth = await head("CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n");
  assert.match(auth, /^HTTP\/1\.1 407 /);
  assert.match(auth, /Proxy-Authenticate: Basic realm="synlimit"/);
  assert.match(await head("CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 400 /);
  assert.match(await head("GET /relative HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 400 /);
  assert.match(
    await head(`GET http://x/ HTTP/1.1\r\nX: ${"a".repeat(2000)}\r\n\r\n`),
    /^HTTP\/1\.1 431 /,
  );
  await untilIdle(proxy);
});

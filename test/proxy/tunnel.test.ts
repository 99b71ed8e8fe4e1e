import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { socks5Connect, socks5Greeting, startProxy, untilIdle } from "../helpers/proxy-fixtures.js";

/** A server whose connections the test drives; everything it reads is collected. */
async function upstream(t: TestContext, onConnection: (s: net.Socket) => void) {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    onConnection(s);
  });
  server.listen(0, "127.0.0.1");
  t.after(() => server.close());
  await once(server, "listening");
  return (server.address() as net.AddressInfo).port;
}

/** A half-open capable client, through the proxy's SOCKS5 handshake; returns the tunnel. */
async function tunnel(t: TestContext, proxyPort: number, port: number): Promise<net.Socket> {
  const c = net.connect({ port: proxyPort, host: "127.0.0.1", allowHalfOpen: true });
  c.on("error", () => {});
  t.after(() => c.destroy());
  await once(c, "connect");
  const read = async (n: number) => {
    let buf = Buffer.alloc(0);
    while (buf.length < n) {
      const chunk = c.read() as Buffer | null;
      if (chunk) buf = Buffer.concat([buf, chunk]);
      else await once(c, "readable");
    }
    if (buf.length > n) c.unshift(buf.subarray(n));
    return buf.subarray(0, n);
  };
  c.write(socks5Greeting());
  assert.deepEqual([...(await read(2))], [5, 0]);
  c.write(socks5Connect("127.0.0.1", port));
  assert.equal((await read(10))[1], 0);
  return c;
}

function collect(s: net.Socket): Promise<string> {
  let text = "";
  s.setEncoding("latin1");
  s.on("data", (d: string) => {
    text += d;
  });
  return once(s, "end").then(() => text);
}

test("the upstream ends first: the client reads it all and its later bytes still reach the upstream", async (t) => {
  let received: Promise<string> = Promise.resolve("");
  const port = await upstream(t, (s) => {
    received = collect(s);
    s.end("server-done");
  });
  const proxy = await startProxy(t, { identity: "global", limits: { profile: "windows" } });
  const c = await tunnel(t, proxy.port, port);
  const closed = once(c, "close");
  assert.equal(await collect(c), "server-done");
  c.end("late-data");
  assert.equal(await received, "late-data");
  await closed;
  await untilIdle(proxy);
  assert.equal(proxy.stats().tunnels, 0);
});

test("the client ends first: the upstream reads it all and its reply still reaches the client", async (t) => {
  const port = await upstream(t, (s) => {
    collect(s).then((text) => s.end(`got ${text}`));
  });
  const proxy = await startProxy(t, { identity: "global", limits: { profile: "windows" } });
  const c = await tunnel(t, proxy.port, port);
  const closed = once(c, "close");
  const reply = collect(c);
  c.end("request");
  assert.equal(await reply, "got request");
  await closed;
  await untilIdle(proxy);
  assert.equal(proxy.stats().tunnels, 0);
});

test("bulk both ways at once arrives whole and in order", async (t) => {
  const size = 8 * 1024 * 1024;
  const pattern = (n: number, seed: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255;
    return b;
  };
  const up = pattern(size, 7);
  const down = pattern(size, 3);
  let atUpstream: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
  const port = await upstream(t, (s) => {
    const chunks: Buffer[] = [];
    s.on("data", (d: Buffer) => chunks.push(d));
    atUpstream = once(s, "end").then(() => Buffer.concat(chunks));
    s.end(down);
  });
  const proxy = await startProxy(t, { identity: "global", limits: { profile: "windows" } });
  const c = await tunnel(t, proxy.port, port);
  const chunks: Buffer[] = [];
  c.on("data", (d: Buffer) => chunks.push(d));
  const atClient = once(c, "end").then(() => Buffer.concat(chunks));
  c.end(up);
  assert.ok((await atClient).equals(down), "upstream → client bytes differ");
  assert.ok((await atUpstream).equals(up), "client → upstream bytes differ");
});

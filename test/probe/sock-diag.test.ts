import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import { type SocketEnd, sockDiagAvailable, tcpSocketInode } from "../../src/probe/sock-diag.js";
import { socketInode } from "../../src/probe/tcp-table.js";
import { canonicalHost } from "../../src/proxy/acl.js";

const linux = process.platform === "linux";

function end(address: string, port: number): SocketEnd {
  const c = canonicalHost(address);
  if (!c || c.kind === "name") throw new Error(`not an address: ${address}`);
  if (c.kind === "ipv6") return { address: c.bytes, port };
  const v = c.value;
  return { address: Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255), port };
}

function mappedEnd(address: string, port: number): SocketEnd {
  const bytes = new Uint8Array(16);
  bytes[10] = 255;
  bytes[11] = 255;
  bytes.set(end(address, port).address, 12);
  return { address: bytes, port };
}

/** A connected pair on loopback: the client socket and the server's accepted one. */
async function pair(
  t: { after(fn: () => void): void },
  listenHost: string,
  connectHost: string,
): Promise<{ client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer().listen(0, listenHost);
  t.after(() => server.close());
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, "connection");
  const client = net.connect(port, connectHost);
  t.after(() => client.destroy());
  await once(client, "connect");
  const [socket] = (await accepted) as [net.Socket];
  t.after(() => socket.destroy());
  return { client, accepted: socket };
}

test("the native sock_diag lookup is built on Linux (npm install runs node-gyp)", {
  skip: !linux && "Linux only",
}, () => {
  assert.equal(sockDiagAvailable(), true, "build/Release/sockdiag.node missing: run npm ci");
});

test("finds a loopback IPv4 socket's inode by its 4-tuple, from either end", {
  skip: !linux && "Linux only",
}, async (t) => {
  const { client, accepted } = await pair(t, "127.0.0.1", "127.0.0.1");
  const clientInode = await socketInode(client);
  const acceptedInode = await socketInode(accepted);
  assert.ok(clientInode && acceptedInode && clientInode !== acceptedInode);
  const c = end(client.localAddress ?? "", client.localPort ?? 0);
  const s = end(client.remoteAddress ?? "", client.remotePort ?? 0);
  assert.equal(tcpSocketInode(c, s), clientInode);
  assert.equal(tcpSocketInode(s, c), acceptedInode);
});

test("finds IPv6 and IPv4-mapped sockets", { skip: !linux && "Linux only" }, async (t) => {
  const v6 = await pair(t, "::1", "::1");
  assert.equal(
    tcpSocketInode(end("::1", v6.client.localPort ?? 0), end("::1", v6.client.remotePort ?? 0)),
    await socketInode(v6.client),
  );
  // A client on an IPv6 socket dialling an IPv4-mapped address.
  const m = await pair(t, "::", "::ffff:127.0.0.1");
  assert.equal(
    tcpSocketInode(
      mappedEnd("127.0.0.1", m.client.localPort ?? 0),
      mappedEnd("127.0.0.1", m.client.remotePort ?? 0),
    ),
    await socketInode(m.client),
  );
});

test("a 4-tuple no socket has is null; malformed input throws a coded error", {
  skip: !linux && "Linux only",
}, async (t) => {
  const { client } = await pair(t, "127.0.0.1", "127.0.0.1");
  // A socket connected to itself: none here (that takes a simultaneous open).
  const self = end("127.0.0.1", client.localPort ?? 0);
  assert.equal(tcpSocketInode(self, self), null);
  assert.throws(
    () => tcpSocketInode({ address: new Uint8Array(3), port: 1 }, end("127.0.0.1", 1)),
    (e: Error & { code?: string }) => e.code === "SYNLIMIT_INVALID_OPTION",
  );
  assert.throws(
    () => tcpSocketInode(end("127.0.0.1", 70_000), end("127.0.0.1", 1)),
    (e: Error & { code?: string }) => e.code === "SYNLIMIT_INVALID_OPTION",
  );
});

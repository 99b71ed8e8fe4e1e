import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type SocketEnd,
  sockDiagAvailable,
  tcpSocketInode,
} from "../../../src/os/linux/sock-diag.js";
import { socketInode } from "../../../src/os/linux/tcp-table.js";
import { mappedEnd, socketEnd } from "../../../src/proxy/identity.js";
import { loopbackPair } from "../../helpers/loopback-pair.js";

const linux = process.platform === "linux";

function end(address: string, port: number): SocketEnd {
  const e = socketEnd(address, port);
  if (!e) throw new Error(`not an address: ${address}`);
  return e;
}

test("the native sock_diag lookup is built on Linux (npm ci builds the synlimit-sockdiag workspace)", {
  skip: !linux && "Linux only",
}, () => {
  assert.equal(sockDiagAvailable(), true, "synlimit-sockdiag is not built: run npm ci");
});

test("finds a loopback IPv4 socket's inode by its 4-tuple, from either end", {
  skip: !linux && "Linux only",
}, async (t) => {
  const { client, accepted } = await loopbackPair(t, "127.0.0.1", "127.0.0.1");
  const clientInode = await socketInode(client);
  const acceptedInode = await socketInode(accepted);
  assert.ok(clientInode && acceptedInode && clientInode !== acceptedInode);
  const c = end(client.localAddress ?? "", client.localPort ?? 0);
  const s = end(client.remoteAddress ?? "", client.remotePort ?? 0);
  assert.equal(tcpSocketInode(c, s), clientInode);
  assert.equal(tcpSocketInode(s, c), acceptedInode);
});

test("finds IPv6 and IPv4-mapped sockets", { skip: !linux && "Linux only" }, async (t) => {
  const v6 = await loopbackPair(t, "::1", "::1");
  assert.equal(
    tcpSocketInode(end("::1", v6.client.localPort ?? 0), end("::1", v6.client.remotePort ?? 0)),
    await socketInode(v6.client),
  );
  // A client on an IPv6 socket dialling an IPv4-mapped address.
  const m = await loopbackPair(t, "::", "::ffff:127.0.0.1");
  assert.equal(
    tcpSocketInode(
      mappedEnd(end("127.0.0.1", m.client.localPort ?? 0)),
      mappedEnd(end("127.0.0.1", m.client.remotePort ?? 0)),
    ),
    await socketInode(m.client),
  );
});

test("a 4-tuple no socket has is null; malformed input throws a coded error", {
  skip: !linux && "Linux only",
}, async (t) => {
  const { client } = await loopbackPair(t, "127.0.0.1", "127.0.0.1");
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

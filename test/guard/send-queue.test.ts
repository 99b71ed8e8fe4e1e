import assert from "node:assert/strict";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import net from "node:net";
import { test } from "node:test";
import { findSample, tcpTableKey } from "../../src/guard/send-queue.js";

const skip = process.platform === "linux" ? false : "reads Linux /proc/net/tcp";

/** A connected pair on `host`, or null where the address cannot be bound (no IPv6). */
async function pair(host: string): Promise<{ client: net.Socket; close(): void } | null> {
  const server = net.createServer((s) => s.resume());
  server.on("error", () => {});
  server.listen(0, host);
  const ok = await Promise.race([
    once(server, "listening").then(() => true),
    once(server, "error").then(() => false),
  ]);
  if (!ok) return null;
  const client = net.connect((server.address() as net.AddressInfo).port, host);
  await once(client, "connect");
  return {
    client,
    close: () => {
      client.destroy();
      server.close();
    },
  };
}

for (const host of ["127.0.0.1", "::1", "::ffff:127.0.0.1"]) {
  test(`the kernel's line of a connected ${host} socket is found by its ends`, {
    skip,
  }, async (t) => {
    const p = await pair(host);
    if (!p) return t.skip(`${host} cannot be bound here`);
    try {
      const key = tcpTableKey(p.client);
      assert.ok(key, "no key for a connected socket");
      assert.equal(key.v6, host.includes(":"));
      const table = await readFile(key.v6 ? "/proc/net/tcp6" : "/proc/net/tcp", "latin1");
      const sample = findSample(table, key);
      assert.ok(sample, `${key.text.trim()} not in the table`);
      // The peer reads everything: nothing stays unacknowledged for long, nothing retransmitted.
      assert.equal(sample.retransmits, 0);
      // The server's end of the same connection is another line: the key tells them apart.
      const reversed = tcpTableKey({
        localAddress: p.client.remoteAddress,
        localPort: p.client.remotePort,
        remoteAddress: p.client.localAddress,
        remotePort: p.client.localPort,
      });
      assert.ok(reversed && reversed.text !== key.text);
      assert.ok(findSample(table, reversed), "the server's end is missing");
    } finally {
      p.close();
    }
  });
}

test("a socket not in the table has no sample", () => {
  const key = tcpTableKey({
    localAddress: "127.0.0.1",
    localPort: 1,
    remoteAddress: "127.0.0.1",
    remotePort: 2,
  });
  assert.ok(key);
  assert.equal(key.text, " 0100007F:0001 0100007F:0002 ");
  assert.equal(findSample("  sl  local_address rem_address\n", key), null);
});

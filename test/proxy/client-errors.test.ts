import assert from "node:assert/strict";
import { test } from "node:test";
import { RawClient, socks5Greeting, startProxy, untilIdle } from "../helpers/proxy-fixtures.js";

function clientErrors(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of metrics.matchAll(
    /^synlimit_gate_client_errors_total\{reason="([^"]+)"\} (\d+)$/gm,
  )) {
    counts[m[1] as string] = Number(m[2]);
  }
  return counts;
}

test("client errors are counted by where they were found, not by their message", async (t) => {
  const proxy = await startProxy(t, {
    users: [{ username: "u", password: "p" }],
    maxHeaderBytes: 1024,
    handshakeTimeoutMs: 200,
  });
  const send = async (bytes: Uint8Array | string) => {
    const c = await RawClient.connect(t, proxy.port);
    if (bytes.length > 0) c.write(bytes);
    await c.closed;
  };
  // auth: no credentials (HTTP), a wrong password (SOCKS5 username/password).
  await send("CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n");
  const wrong = Buffer.from([1, 1, 0x75, 1, 0x78]); // version 1, "u", "x"
  await send(Buffer.concat([socks5Greeting([2]), wrong]));
  // malformed: a bad request line, SOCKS 4.
  await send("CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n");
  await send(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
  // too-large: a head over maxHeaderBytes.
  await send(`GET http://x/ HTTP/1.1\r\nX: ${"a".repeat(2000)}\r\n\r\n`);
  // deadline: a client that says nothing.
  await send("");
  await untilIdle(proxy);
  assert.deepEqual(clientErrors(await proxy.metrics()), {
    auth: 2,
    malformed: 2,
    "too-large": 1,
    deadline: 1,
  });
});

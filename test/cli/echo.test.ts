import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { firstLine, runCli, startForTest } from "../helpers/run-cli.js";

// A bug here usually means an event that never comes: fail, do not hang.
const guard = { timeout: 30_000 };

async function udpRoundTrip(t: TestContext, port: number, payload: Buffer): Promise<Buffer> {
  const socket = dgram.createSocket("udp4");
  t.after(() => new Promise<void>((resolve) => socket.close(resolve)));
  socket.bind(0, "127.0.0.1");
  await once(socket, "listening");
  const reply = once(socket, "message") as Promise<[Buffer, dgram.RemoteInfo]>;
  socket.send(payload, port, "127.0.0.1");
  const [message, from] = await reply;
  assert.equal(from.port, port);
  return message;
}

async function tcpRoundTrip(t: TestContext, port: number, payload: Buffer): Promise<Buffer> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.end(payload);
  await once(socket, "end");
  return Buffer.concat(chunks);
}

function assertOneLineError(stderr: string, message: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0] ?? "", /^synlimit: /);
  assert.match(lines[0] ?? "", message);
  assert.doesNotMatch(stderr, /\n\s+at /);
}

test(
  "echo --json --tcp answers UDP and TCP, logs no payload, and exits 0 on SIGTERM",
  guard,
  async (t) => {
    const { child, result } = startForTest(t, ["echo", "--json", "--tcp", "--log-level", "debug"]);
    const info = JSON.parse(await firstLine(child)) as {
      host: string;
      udpPort: number;
      tcpPort: number;
    };
    assert.deepEqual(Object.keys(info), ["host", "udpPort", "tcpPort"]);
    assert.equal(info.host, "127.0.0.1");
    assert.ok(Number.isInteger(info.udpPort) && info.udpPort > 0);
    assert.ok(Number.isInteger(info.tcpPort) && info.tcpPort > 0);

    const marker = "not-for-the-log";
    const datagram = Buffer.concat([Buffer.from(marker), randomBytes(200)]);
    assert.deepEqual(await udpRoundTrip(t, info.udpPort, datagram), datagram);
    const stream = randomBytes(256 * 1024);
    assert.ok((await tcpRoundTrip(t, info.tcpPort, stream)).equals(stream));

    child.kill("SIGTERM");
    const { code, signal, stderr } = await result;
    assert.equal(signal, null);
    assert.equal(code, 0, stderr);
    const logs = stderr
      .trimEnd()
      .split("\n")
      .map(
        (line) =>
          JSON.parse(line) as { msg: string; level: number; bytes?: number; from?: unknown },
      );
    const datagrams = logs.filter((l) => l.msg === "datagram");
    assert.equal(datagrams.length, 1, stderr);
    assert.equal(datagrams[0]?.bytes, datagram.length);
    assert.equal(datagrams[0]?.level, 20, "logged at debug");
    assert.ok(logs.some((l) => l.msg === "echo responder closed"));
    assert.ok(!stderr.includes(marker), "a datagram's bytes never reach the log");
  },
);

test("echo prints one human line and logs no datagram at the default level", guard, async (t) => {
  const { child, result } = startForTest(t, ["echo", "--tcp-port", "0"]);
  const line = await firstLine(child);
  const match = /^echo responder on udp 127\.0\.0\.1:(\d+) \(tcp 127\.0\.0\.1:(\d+)\)$/.exec(line);
  assert.ok(match, line);
  const payload = Buffer.from("human");
  assert.deepEqual(await udpRoundTrip(t, Number(match[1]), payload), payload);
  assert.deepEqual(await tcpRoundTrip(t, Number(match[2]), payload), payload);
  child.kill("SIGINT");
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /"msg":"datagram"/);
  assert.match(stderr, /"msg":"echo responder listening"/);
});

const usageErrors: Array<[string[], RegExp]> = [
  [["echo", "--port", "nope"], /option '--port <port>' argument 'nope' is invalid/],
  [["echo", "--tcp-port", "65536"], /expected a port number from 0 to 65535/],
  [["echo", "--host", "localhost"], /expected an IPv4 or IPv6 address/],
  [
    ["echo", "--log-level", "loud"],
    /expected one of trace, debug, info, warn, error, fatal, silent/,
  ],
  [["echo", "--bogus"], /unknown option '--bogus'/],
];

for (const [args, message] of usageErrors) {
  test(`${args.join(" ")}: one line on stderr, exit 2, no stack`, guard, async () => {
    const r = await runCli(args);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assertOneLineError(r.stderr, message);
  });
}

test("echo on a UDP port in use: one line on stderr, exit 2", guard, async (t) => {
  const busy = dgram.createSocket("udp4");
  t.after(() => new Promise<void>((resolve) => busy.close(resolve)));
  busy.bind(0, "127.0.0.1");
  await once(busy, "listening");
  const port = busy.address().port;
  const r = await runCli(["echo", "--port", String(port)]);
  assert.equal(r.code, 2);
  assertOneLineError(
    r.stderr,
    new RegExp(
      `^synlimit: echo cannot listen on udp 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.* \\(SYNLIMIT_ADDRESS_IN_USE\\)$`,
    ),
  );
});

test("echo --help shows the deployment example and exits 0", guard, async () => {
  const r = await runCli(["echo", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: synlimit echo/);
  assert.match(r.stdout, /\n {2}synlimit echo --host 0\.0\.0\.0 --port 7 --tcp\n/);
  assert.match(r.stdout, /port 7 needs root/);
});

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { SynlimitError } from "../../src/errors.js";
import {
  type EchoDatagramEvent,
  EchoServer,
  type EchoServerOptions,
  echoChannelNames,
} from "../../src/targets/echo.js";

// A bug here usually means an event that never comes: fail, do not hang.
const guard = { timeout: 20_000 };

async function echoServer(t: TestContext, options?: EchoServerOptions): Promise<EchoServer> {
  const server = await EchoServer.listen(options);
  t.after(() => server.close());
  return server;
}

/** A loopback UDP client that records every datagram it receives. */
async function udpClient(t: TestContext, port = 0) {
  const socket = dgram.createSocket("udp4");
  t.after(() => new Promise<void>((resolve) => socket.close(resolve)));
  const received: Array<{ message: Buffer; from: dgram.RemoteInfo }> = [];
  socket.on("message", (message, from) => received.push({ message, from }));
  socket.bind(port, "127.0.0.1");
  await once(socket, "listening");
  return {
    socket,
    port: socket.address().port,
    received,
    /** Sends `payload` and resolves with the next datagram received. */
    async roundTrip(to: number, payload: Buffer) {
      const reply = once(socket, "message") as Promise<[Buffer, dgram.RemoteInfo]>;
      socket.send(payload, to, "127.0.0.1");
      const [message, from] = await reply;
      return { message, from };
    },
  };
}

function tcpClient(t: TestContext, port: number): net.Socket {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  return socket;
}

/** Writes `payload`, ends, and resolves with everything received until the peer ends. */
async function tcpRoundTrip(socket: net.Socket, payload: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.end(payload);
  await once(socket, "end");
  return Buffer.concat(chunks);
}

/** A port just released by a TCP listener, so free for TCP (and almost surely for UDP). */
async function freshPort(): Promise<number> {
  const probe = net.createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Resolves with the first bytes the peer sends back. */
async function firstEcho(socket: net.Socket, payload: string): Promise<string> {
  socket.write(payload);
  const [chunk] = (await once(socket, "data")) as [Buffer];
  return chunk.toString();
}

test(
  "each datagram comes back byte for byte, empty ones included, from the echo port",
  guard,
  async (t) => {
    const server = await echoServer(t);
    assert.equal(server.host, "127.0.0.1");
    assert.ok(server.udpPort > 0);
    assert.equal(server.tcpPort, null);
    const client = await udpClient(t);
    for (const size of [0, 1, 512, 8192]) {
      const payload = randomBytes(size);
      const { message, from } = await client.roundTrip(server.udpPort, payload);
      assert.equal(message.length, size, `reply to ${size} bytes`);
      assert.deepEqual(message, payload);
      assert.equal(from.address, "127.0.0.1");
      assert.equal(from.port, server.udpPort);
    }
    assert.equal(server.datagrams, 4);
    assert.equal(client.received.length, 4);
  },
);

test("a reply goes only to its sender", guard, async (t) => {
  const server = await echoServer(t);
  const a = await udpClient(t);
  const b = await udpClient(t);
  for (let i = 0; i < 5; i++) {
    assert.equal(
      (await a.roundTrip(server.udpPort, Buffer.from(`a${i}`))).message.toString(),
      `a${i}`,
    );
    assert.equal(
      (await b.roundTrip(server.udpPort, Buffer.from(`b${i}`))).message.toString(),
      `b${i}`,
    );
  }
  assert.deepEqual(
    a.received.map((r) => r.message.toString()),
    ["a0", "a1", "a2", "a3", "a4"],
  );
  assert.deepEqual(
    b.received.map((r) => r.message.toString()),
    ["b0", "b1", "b2", "b3", "b4"],
  );
});

test(
  "a datagram from an echo-like service's port is dropped, not bounced back",
  guard,
  async (t) => {
    // Binding port 7 needs root or CAP_NET_BIND_SERVICE.
    let looping: Awaited<ReturnType<typeof udpClient>>;
    try {
      looping = await udpClient(t, 7);
    } catch (error) {
      t.skip(`cannot bind 127.0.0.1:7 here (${(error as Error).message})`);
      return;
    }
    const server = await echoServer(t);
    const events: EchoDatagramEvent[] = [];
    const record = (e: unknown) => events.push(e as EchoDatagramEvent);
    diagnostics.subscribe(echoChannelNames.datagram, record);
    t.after(() => diagnostics.unsubscribe(echoChannelNames.datagram, record));
    looping.socket.send("loop", server.udpPort, "127.0.0.1");
    // One socket reads datagrams in order: once the later one is answered, the
    // first has been handled.
    const other = await udpClient(t);
    assert.equal(
      (await other.roundTrip(server.udpPort, Buffer.from("ok"))).message.toString(),
      "ok",
    );
    assert.equal(server.droppedDatagrams, 1);
    assert.equal(server.datagrams, 1);
    assert.deepEqual(looping.received, []);
    assert.deepEqual(
      events.map((e) => [e.from.port, e.echoed]),
      [
        [7, false],
        [other.port, true],
      ],
    );
  },
);

test("each datagram is published on synlimit:echo:datagram", guard, async (t) => {
  const server = await echoServer(t);
  const client = await udpClient(t);
  const events: EchoDatagramEvent[] = [];
  const record = (e: unknown) => events.push(e as EchoDatagramEvent);
  assert.equal(echoChannelNames.datagram, "synlimit:echo:datagram");
  diagnostics.subscribe("synlimit:echo:datagram", record);
  t.after(() => diagnostics.unsubscribe("synlimit:echo:datagram", record));
  await client.roundTrip(server.udpPort, Buffer.from("abc"));
  await client.roundTrip(server.udpPort, Buffer.alloc(0));
  assert.deepEqual(events, [
    { from: { host: "127.0.0.1", port: client.port }, bytes: 3, echoed: true },
    { from: { host: "127.0.0.1", port: client.port }, bytes: 0, echoed: true },
  ]);
});

test("IPv6 loopback works with udp6", guard, async (t) => {
  const server = await echoServer(t, { host: "::1", tcp: true });
  assert.equal(server.host, "::1");
  const socket = dgram.createSocket("udp6");
  t.after(() => new Promise<void>((resolve) => socket.close(resolve)));
  socket.bind(0, "::1");
  await once(socket, "listening");
  const reply = once(socket, "message") as Promise<[Buffer, dgram.RemoteInfo]>;
  socket.send("six", server.udpPort, "::1");
  const [message, from] = await reply;
  assert.equal(message.toString(), "six");
  assert.equal(from.address, "::1");
  const tcp = net.connect(server.tcpPort as number, "::1");
  tcp.on("error", () => {});
  t.after(() => tcp.destroy());
  assert.equal((await tcpRoundTrip(tcp, Buffer.from("over tcp"))).toString(), "over tcp");
});

test("TCP echo returns a payload larger than the socket buffers intact", guard, async (t) => {
  const server = await echoServer(t, { tcp: true });
  const payload = randomBytes(8 * 1024 * 1024);
  // Far more than the kernel buffers hold, so the server's writes back up and
  // its reads pause; the bytes must still come back whole and in order.
  const echoed = await tcpRoundTrip(tcpClient(t, server.tcpPort as number), payload);
  assert.equal(echoed.length, payload.length);
  assert.ok(echoed.equals(payload), "echoed bytes differ");
  assert.equal(server.tcpConnections, 1);
});

test("connections over maxTcpConnections are closed at once, without an echo", guard, async (t) => {
  const server = await echoServer(t, { tcp: true, maxTcpConnections: 2 });
  const port = server.tcpPort as number;
  const first = tcpClient(t, port);
  const second = tcpClient(t, port);
  assert.equal(await firstEcho(first, "one"), "one");
  assert.equal(await firstEcho(second, "two"), "two");
  const extra = tcpClient(t, port);
  const received: Buffer[] = [];
  extra.on("data", (chunk: Buffer) => received.push(chunk));
  extra.write("three");
  await once(extra, "close");
  assert.deepEqual(received, []);
  assert.equal(server.tcpConnections, 2);
  assert.equal(server.droppedTcpConnections, 1);
  assert.equal(await firstEcho(first, "still"), "still", "open connections are untouched");
});

test("an idle TCP connection is destroyed after tcpIdleTimeoutMs", guard, async (t) => {
  const server = await echoServer(t, { tcp: true, tcpIdleTimeoutMs: 100 });
  const socket = tcpClient(t, server.tcpPort as number);
  assert.equal(await firstEcho(socket, "ping"), "ping");
  // The client never ends or destroys it: only the server can close it.
  await once(socket, "close");
  assert.equal(server.tcpConnections, 1);
});

test("the TCP port defaults to the UDP port when it is free", guard, async (t) => {
  const port = await freshPort();
  const server = await echoServer(t, { udpPort: port, tcp: true });
  assert.equal(server.udpPort, port);
  assert.equal(server.tcpPort, port);
});

test("a busy TCP port falls back to any free port, unless it was asked for", guard, async (t) => {
  const busy = net.createServer();
  t.after(() => new Promise<void>((resolve) => busy.close(() => resolve())));
  busy.listen(0, "127.0.0.1");
  await once(busy, "listening");
  const taken = (busy.address() as net.AddressInfo).port;

  const server = await echoServer(t, { udpPort: taken, tcp: true });
  assert.equal(server.udpPort, taken);
  assert.notEqual(server.tcpPort, taken);
  const socket = tcpClient(t, server.tcpPort as number);
  assert.equal(await firstEcho(socket, "x"), "x");

  await assert.rejects(
    EchoServer.listen({ tcp: true, tcpPort: taken }),
    (e: unknown) =>
      e instanceof SynlimitError &&
      e.code === "SYNLIMIT_ADDRESS_IN_USE" &&
      /^echo cannot listen on tcp 127\.0\.0\.1:\d+: .*EADDRINUSE/.test(e.message),
  );
});

test("a UDP port in use is a SynlimitError naming it", guard, async (t) => {
  const first = await echoServer(t);
  await assert.rejects(
    EchoServer.listen({ udpPort: first.udpPort }),
    (e: unknown) =>
      e instanceof SynlimitError &&
      e.code === "SYNLIMIT_ADDRESS_IN_USE" &&
      e.message.startsWith(`echo cannot listen on udp 127.0.0.1:${first.udpPort}: `) &&
      /EADDRINUSE/.test(e.message),
  );
});

test("close() destroys TCP connections, is idempotent, and frees both ports", guard, async (t) => {
  const server = await EchoServer.listen({ tcp: true });
  t.after(() => server.close());
  const { udpPort, tcpPort } = server;
  const socket = tcpClient(t, tcpPort as number);
  assert.equal(await firstEcho(socket, "hi"), "hi");
  const closed = once(socket, "close");
  await Promise.all([server.close(), server.close()]);
  await server.close();
  await closed;

  const udp = dgram.createSocket("udp4");
  t.after(() => new Promise<void>((resolve) => udp.close(resolve)));
  udp.bind(udpPort, "127.0.0.1");
  await once(udp, "listening");
  const tcp = net.createServer();
  t.after(() => new Promise<void>((resolve) => tcp.close(() => resolve())));
  tcp.listen(tcpPort as number, "127.0.0.1");
  await once(tcp, "listening");
});

test("bad options are SynlimitErrors naming the option", guard, async () => {
  const bad: Array<[unknown, string]> = [
    [{ udpPort: 70000 }, "udpPort"],
    [{ udpPort: -1 }, "udpPort"],
    [{ udpPort: 1.5 }, "udpPort"],
    [{ udpPort: "7" }, "udpPort"],
    [{ host: "localhost" }, "host"],
    [{ host: "not an ip" }, "host"],
    [{ host: 127 }, "host"],
    [{ tcp: "yes" }, "tcp"],
    [{ tcp: true, tcpPort: 65536 }, "tcpPort"],
    [{ tcpPort: 7 }, "tcp"],
    [{ tcp: true, maxTcpConnections: 0 }, "maxTcpConnections"],
    [{ tcp: true, maxTcpConnections: 2.5 }, "maxTcpConnections"],
    [{ tcp: true, tcpIdleTimeoutMs: -1 }, "tcpIdleTimeoutMs"],
    [{ tcp: true, tcpIdleTimeoutMs: Number.NaN }, "tcpIdleTimeoutMs"],
    [{ tcp: true, tcpIdleTimeoutMs: 2 ** 31 }, "tcpIdleTimeoutMs"],
    [null, "options"],
  ];
  for (const [options, name] of bad) {
    await assert.rejects(
      EchoServer.listen(options as EchoServerOptions),
      (e: unknown) =>
        e instanceof SynlimitError &&
        e.code === "SYNLIMIT_INVALID_OPTION" &&
        e.message.startsWith(`option ${name} must be `),
      `${JSON.stringify(options)} is rejected as a bad ${name}`,
    );
  }
});

import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { guardChannelNames } from "../../src/guard/channels.js";
import { Guard, type GuardOptions } from "../../src/guard/guard.js";
import { ReconnectingLink, type ReconnectingLinkOptions } from "../../src/guard/link.js";
import { EchoServer } from "../../src/targets/echo.js";
import { LiveListener } from "../../src/targets/live.js";
import { SilentUdpPort } from "../../src/targets/silent-udp.js";
import { FakeClock } from "../helpers/fake-clock.js";

/** A collector: newline-separated records over TCP, on a port it can come back to. */
class CollectorFixture {
  readonly records: string[] = [];
  #server: net.Server | null = null;
  #sockets = new Set<net.Socket>();
  #waiters: Array<{ count: number; resolve: () => void }> = [];
  port = 0;

  async listen(port = 0): Promise<this> {
    const server = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => this.#sockets.delete(socket));
      let partial = "";
      socket.setEncoding("utf8").on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        this.records.push(...lines);
        for (const w of [...this.#waiters]) {
          if (this.records.length >= w.count) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      });
    });
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    this.#server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this;
  }

  received(count: number): Promise<void> {
    if (this.records.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

/**
 * A peer that accepts and never reads (nothing ACKed past the buffers) and
 * keeps its side open after our FIN (half-open allowed, never ends).
 */
class StuckPeer {
  readonly #sockets = new Set<net.Socket>();
  readonly #server = net.createServer({ allowHalfOpen: true }, (s) => {
    this.#sockets.add(s);
    s.pause();
    s.on("error", () => {});
  });
  port = 0;

  async listen(): Promise<this> {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

/** Collects guard events, and resolves waits on the next one of a kind. */
function guardEvents(t: TestContext) {
  const events: Array<{ channel: string; at: number } & Record<string, unknown>> = [];
  let clock: FakeClock | null = null;
  const waiters: Array<{ channel: string; resolve: () => void }> = [];
  for (const [channel, name] of Object.entries(guardChannelNames)) {
    const fn = (m: unknown) => {
      events.push({ channel, at: clock?.now() ?? 0, ...(m as object) });
      for (const w of waiters.filter((x) => x.channel === channel)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    };
    diagnostics.subscribe(name, fn);
    t.after(() => diagnostics.unsubscribe(name, fn));
  }
  return {
    events,
    useClock: (c: FakeClock) => {
      clock = c;
    },
    next: (channel: keyof typeof guardChannelNames) =>
      new Promise<void>((resolve) => waiters.push({ channel, resolve })),
  };
}

let seq = 0;

test("collector dies mid-stream and comes back: reconnects on the backoff schedule, loses only what the queue bound drops", async (t) => {
  const collector = await new CollectorFixture().listen();
  t.after(() => collector.close());
  let echo = await EchoServer.listen();
  t.after(() => echo.close());
  const clock = new FakeClock();
  const recorder = guardEvents(t);
  recorder.useClock(clock);
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: collector.port,
    udpEchoPort: echo.udpPort,
    queueLimit: 50,
    clock,
    guard: { budget: `link-${seq++}`, backoff: { random: () => 0.5 } },
  });
  t.after(() => link.close());
  await once(link, "connected");
  for (let i = 0; i < 100; i++) link.send(`${i}\n`);
  await collector.received(100);

  // The collector and its echo go away.
  const disconnected = once(link, "disconnected");
  const firstSkip = recorder.next("skipped");
  const echoPort = echo.udpPort;
  await Promise.all([collector.close(), echo.close()]);
  await disconnected;
  await firstSkip; // the immediate reconnect's preflight: refused, breaker open

  for (let i = 100; i < 400; i++) {
    // Never blocks or throws; says false when the bound dropped a record for it.
    assert.equal(link.send(`${i}\n`), i < 150, `send #${i}`);
  }
  assert.deepEqual(
    { queued: link.stats().queued, dropped: link.stats().dropped },
    { queued: 50, dropped: 250 },
  );

  // While the collector is dead, tries follow gRPC's schedule: 1 s, 1.6 s, 2.56 s.
  for (const step of [1000, 1600, 2560]) {
    assert.equal(link.guard.nextTryInMs("127.0.0.1", collector.port), step);
    const skipped = recorder.next("skipped");
    clock.advance(step - 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(
      recorder.events.filter((e) => e.channel === "preflight" && e.at === clock.now() + 1).length,
      0,
    );
    clock.advance(1);
    await skipped;
  }
  const preflightTimes = recorder.events.filter((e) => e.channel === "preflight").map((e) => e.at);
  assert.deepEqual(
    preflightTimes,
    [0, 0, 1000, 2600, 5160],
    "one preflight per step, none in between",
  );

  // It comes back on the same ports.
  echo = await EchoServer.listen({ udpPort: echoPort });
  await collector.listen(collector.port);
  const reconnected = once(link, "connected");
  clock.advance(4096);
  await reconnected;
  await collector.received(150);

  const expected = [
    ...Array.from({ length: 100 }, (_, i) => `${i}`),
    ...Array.from({ length: 50 }, (_, i) => `${350 + i}`),
  ];
  assert.deepEqual(
    collector.records,
    expected,
    "the first 100, then the newest 50: drop-oldest, nothing else lost",
  );
  const stats = link.stats();
  assert.equal(stats.dropped, 250);
  assert.equal(stats.connects, 2);
  assert.equal(
    recorder.events.filter((e) => e.channel === "connectStart").length,
    2,
    "no TCP attempt while the collector was dead",
  );
});

test("UDP filtered but TCP alive: the link still connects, by a sparse TCP try, within the configured bound", async (t) => {
  const collector = await new CollectorFixture().listen();
  t.after(() => collector.close());
  const silent = await SilentUdpPort.listen();
  t.after(() => silent.close());
  const clock = new FakeClock();
  const recorder = guardEvents(t);
  recorder.useClock(clock);
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: collector.port,
    udpEchoPort: silent.port,
    clock,
    guard: {
      budget: `link-${seq++}`,
      backoff: { random: () => 0.5 },
      preflight: { timeoutMs: 100, sparseTcpIntervalMs: 4000 },
    },
  });
  t.after(() => link.close());
  const connected = once(link, "connected");
  link.send("hello\n");
  // Drive the fake clock until the link connects; each step lets a preflight time out.
  let steps = 0;
  while (link.state !== "connected" && steps < 20) {
    steps++;
    await new Promise((r) => setImmediate(r));
    clock.advance(100); // the preflight's deadline
    await new Promise((r) => setImmediate(r));
    clock.advance(link.guard.nextTryInMs("127.0.0.1", collector.port));
  }
  await connected;
  await collector.received(1);
  assert.deepEqual(collector.records, ["hello"]);
  const tcp = recorder.events.filter((e) => e.channel === "connectStart");
  assert.equal(tcp.length, 1, "exactly one TCP attempt: the sparse one");
  const firstFailure = recorder.events.find((e) => e.channel === "preflight")?.at ?? 0;
  assert.ok((tcp[0]?.at ?? 0) - firstFailure >= 4000, "not before the sparse interval");
  assert.ok((tcp[0]?.at ?? 0) - firstFailure < 4000 + 4096 + 100, "at the first try after it");
});

test("close() flushes what is queued on a live link and refuses later sends", async (t) => {
  const collector = await new CollectorFixture().listen();
  t.after(() => collector.close());
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: collector.port,
    guard: { budget: `link-${seq++}` },
  });
  link.send("a\n");
  link.send("b\n");
  await once(link, "connected");
  await link.close();
  await collector.received(2);
  assert.deepEqual(collector.records, ["a", "b"]);
  assert.equal(link.send("c\n"), false);
  assert.equal(link.state, "closed");
});

test("options are validated", () => {
  assert.throws(() => new ReconnectingLink({ host: "", port: 1 }), /option host/);
  assert.throws(() => new ReconnectingLink({ host: "127.0.0.1", port: 0 }), /option port/);
  assert.throws(
    () => new ReconnectingLink({ host: "127.0.0.1", port: 1, queueLimit: -1 }),
    /queueLimit/,
  );
});

/** A connected link, on a fake clock, to a peer that accepts and never reads. */
async function linkToStuckPeer(
  t: TestContext,
  options: Partial<ReconnectingLinkOptions>,
  guard: Partial<GuardOptions> = {},
) {
  const peer = await new StuckPeer().listen();
  t.after(() => peer.close());
  const clock = new FakeClock();
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: peer.port,
    clock,
    ...options,
    guard: { budget: `link-${seq++}`, ...guard },
  });
  await once(link, "connected");
  return { link, clock };
}

test("close() resolves within its deadline even when the peer never closes its side", {
  timeout: 20_000,
}, async (t) => {
  // The peer accepts and never reads, so never sees our FIN.
  const { link, clock } = await linkToStuckPeer(t, { closeTimeoutMs: 500 });
  let resolved = false;
  const closing = link.close().then(() => {
    resolved = true;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(resolved, false, "still waiting for the peer's FIN");
  clock.advance(500);
  await closing;
  assert.equal(link.state, "closed");
});

test("close() counts the records still queued as dropped: they are never written now", async () => {
  const closed = await LiveListener.listen();
  await closed.close(); // refuses: the link waits, its records queue
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: closed.port,
    clock: new FakeClock(),
    guard: { budget: `link-${seq++}` },
  });
  for (let i = 0; i < 3; i++) link.send("span\n");
  await link.close();
  // Before: queued 3, dropped 0 — discarded without a count.
  assert.deepEqual([link.stats().queued, link.stats().dropped], [0, 3]);
});

test("close() past its deadline counts the records the kernel had not seen acknowledged as dropped", {
  skip: process.platform !== "linux" && "the send queue is tracked on Linux only",
  timeout: 20_000,
}, async (t) => {
  // The peer never reads: its window fills.
  const { link, clock } = await linkToStuckPeer(t, {
    closeTimeoutMs: 500,
    queueLimit: 1_000,
    queueLimitBytes: 64 * 1024 * 1024,
  });
  const record = Buffer.alloc(64 * 1024, 1);
  for (let i = 0; i < 200; i++) link.send(record); // 12.5 MiB: more than both buffers hold
  await new Promise((r) => setImmediate(r));
  const closing = link.close();
  clock.advance(500);
  await closing;
  const { written, dropped, queued } = link.stats();
  const unsent = 200 - written; // left in the queue: the socket never drained
  assert.equal(queued, 0);
  // Before: dropped 0, though most of them never left this host. Now the
  // unsent ones, and some written ones (the peer's window is full, so the
  // last written bytes cannot have been acknowledged).
  assert.ok(unsent > 0, "the socket's buffer filled");
  assert.ok(dropped > unsent, `dropped ${dropped}, unsent ${unsent}`);
  assert.ok(dropped <= 200, `dropped ${dropped} of 200`);
});

test("closeTimeoutMs follows the guard's time scale like the guard's own durations", {
  timeout: 20_000,
}, async (t) => {
  const { link, clock } = await linkToStuckPeer(t, { closeTimeoutMs: 500 }, { timeScale: 0.1 });
  let resolved = false;
  const closing = link.close().then(() => {
    resolved = true;
  });
  clock.advance(49);
  await new Promise((r) => setImmediate(r));
  assert.equal(resolved, false, "49 ms < 500 ms × 0.1");
  clock.advance(1);
  await closing;
});

test("the queue is bounded by bytes too, and send() says false when it dropped", async (t) => {
  const closed = await LiveListener.listen();
  await closed.close();
  const clock = new FakeClock();
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: closed.port,
    clock,
    queueLimitBytes: 10,
    guard: { budget: `link-${seq++}` },
  });
  t.after(() => link.close());
  assert.equal(link.send("abcd"), true);
  assert.equal(link.send("efgh"), true);
  assert.equal(link.send("ijkl"), false, "12 bytes > 10: the oldest goes");
  assert.deepEqual(
    [link.stats().queued, link.stats().queuedBytes, link.stats().dropped],
    [2, 8, 1],
  );
  assert.equal(
    link.send(Buffer.alloc(11)),
    false,
    "a record larger than the bound is dropped itself",
  );
  assert.deepEqual(
    [link.stats().queued, link.stats().queuedBytes, link.stats().dropped],
    [2, 8, 2],
  );
});

test("a connection whose bytes stop draining is found dead by the write deadline, and replaced", {
  timeout: 20_000,
}, async (t) => {
  // A peer that accepts and never reads: nothing is ACKed past the buffers, as with a dead host.
  const peer = await new StuckPeer().listen();
  t.after(() => peer.close());
  const port = peer.port;
  const clock = new FakeClock();
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port,
    clock,
    writeTimeoutMs: 50_000,
    queueLimitBytes: 256 * 1024 * 1024,
    queueLimit: 1_000_000,
    // writeTimeoutMs follows the time scale: 50 s × 0.1.
    guard: { budget: `link-${seq++}`, timeScale: 0.1 },
  });
  t.after(() => link.close());
  await once(link, "connected");
  const chunk = Buffer.alloc(256 * 1024);
  for (let i = 0; i < 1024 && link.stats().queued === 0; i++) {
    link.send(chunk);
    await new Promise((r) => setImmediate(r));
  }
  assert.ok(link.stats().queued > 0, "the kernel's buffers are full: the link holds the rest");
  const disconnected = once(link, "disconnected");
  clock.advance(5_000);
  const [error] = (await disconnected) as [Error & { code?: string }];
  assert.equal(error?.code, "SYNLIMIT_LINK_STALLED");
  await once(link, "connected");
  assert.equal(link.stats().connects, 2);
  assert.equal(link.stats().disconnects, 1);
});

test("fast skips by an open breaker are not counted as failures", async (t) => {
  const closed = await LiveListener.listen();
  await closed.close();
  const clock = new FakeClock();
  const guard = new Guard({ budget: `link-${seq++}`, clock, backoff: { random: () => 0.5 } });
  await assert.rejects(guard.connect({ host: "127.0.0.1", port: closed.port }), /ECONNREFUSED/);
  const link = new ReconnectingLink({ host: "127.0.0.1", port: closed.port, clock, guard });
  t.after(() => link.close());
  await new Promise((r) => setImmediate(r));
  assert.equal(link.state, "waiting");
  assert.equal(link.stats().failures, 0, "skipped by the breaker: no attempt, no failure");
  clock.advance(guard.nextTryInMs("127.0.0.1", closed.port));
  // The half-open trial really tries, and its refusal is a failure.
  await new Promise<void>((resolve) => {
    const check = () => (link.stats().failures === 1 ? resolve() : setImmediate(check));
    check();
  });
});

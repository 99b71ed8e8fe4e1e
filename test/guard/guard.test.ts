import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { install, uninstall } from "../../src/emulate/install.js";
import { guardChannelNames } from "../../src/guard/channels.js";
import { Guard, type GuardOptions } from "../../src/guard/guard.js";
import { synSentOf } from "../../src/os/linux/tcp-table.js";
import { EchoServer } from "../../src/targets/echo.js";
import { LiveListener } from "../../src/targets/live.js";
import { SilentUdpPort } from "../../src/targets/silent-udp.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { TlsFixture, testCert } from "../helpers/servers.js";

type GuardEvent = { channel: string } & Record<string, unknown>;

/** Records every synlimit:guard:* event in order. */
function recordGuard(t: TestContext): GuardEvent[] {
  const events: GuardEvent[] = [];
  for (const [channel, name] of Object.entries(guardChannelNames)) {
    const fn = (m: unknown) => events.push({ channel, ...(m as object) });
    diagnostics.subscribe(name, fn);
    t.after(() => diagnostics.unsubscribe(name, fn));
  }
  return events;
}

/** Resolves on the next event published on a guard channel. */
function nextGuardEvent(channel: keyof typeof guardChannelNames): Promise<unknown> {
  const name = guardChannelNames[channel];
  return new Promise((resolve) => {
    const fn = (m: unknown) => {
      diagnostics.unsubscribe(name, fn);
      resolve(m);
    };
    diagnostics.subscribe(name, fn);
  });
}

async function fixtures(t: TestContext) {
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  return { live, tarpit };
}

let budgetSeq = 0;
/** Each test gets its own process-wide budget name, so tests do not share slots. */
const guardOptions = (o: GuardOptions = {}): GuardOptions => ({
  budget: `test-${budgetSeq++}`,
  ...o,
});

const code = (c: string) => (e: Error & { code?: string }) => e.code === c;

test("connects to a live peer and returns the socket", async (t) => {
  const { live } = await fixtures(t);
  const guard = new Guard(guardOptions());
  const socket = await guard.connect({ host: "127.0.0.1", port: live.port });
  t.after(() => socket.destroy());
  assert.equal(socket.remotePort, live.port);
  assert.equal(guard.state("127.0.0.1", live.port), "closed");
});

test("the guard's deadline ends a SYN_SENT attempt: the socket is gone from the kernel's table", async (t) => {
  const { tarpit } = await fixtures(t);
  const events = recordGuard(t);
  const guard = new Guard(guardOptions({ connectTimeoutMs: 100 }));
  await assert.rejects(
    guard.connect({ host: "127.0.0.1", port: tarpit.port }),
    (e: Error & { code?: string }) => {
      return e.code === "SYNLIMIT_CONNECT_TIMEOUT" && /timed out after 100 ms/.test(e.message);
    },
  );
  assert.deepEqual(
    (await synSentOf()).filter((e) => e.remote.port === tarpit.port),
    [],
  );
  assert.deepEqual(
    events
      .filter((e) => e.channel.startsWith("connect") || e.channel === "breaker")
      .map((e) => `${e.channel}:${e.outcome ?? e.to ?? ""}`),
    ["connectStart:", "connectEnd:timeout", "breaker:open"],
  );
});

test("the default deadline is RFC 6298's 1 s until a connect is measured, then follows the peer down to the 250 ms floor", async (t) => {
  const { live } = await fixtures(t);
  const events = recordGuard(t);
  const guard = new Guard(guardOptions());
  for (let i = 0; i < 2; i++)
    (await guard.connect({ host: "127.0.0.1", port: live.port })).destroy();
  const deadlines = events.filter((e) => e.channel === "connectStart").map((e) => e.deadlineMs);
  assert.deepEqual(deadlines, [1000, 250]);
});

test("an open breaker fails fast without a TCP attempt, then half-opens by preflight after the backoff", async (t) => {
  const { live } = await fixtures(t);
  const echo = await EchoServer.listen();
  t.after(() => echo.close());
  const closed = await LiveListener.listen();
  const deadPort = closed.port;
  await closed.close();
  const clock = new FakeClock();
  const events = recordGuard(t);
  const guard = new Guard(
    guardOptions({
      clock,
      preflight: { udpEchoPort: echo.udpPort },
      backoff: { random: () => 0.5 },
    }),
  );
  await assert.rejects(guard.connect({ host: "127.0.0.1", port: deadPort }), code("ECONNREFUSED"));
  assert.equal(guard.state("127.0.0.1", deadPort), "open");
  assert.equal(guard.nextTryInMs("127.0.0.1", deadPort), 1000);
  clock.advance(400);
  await assert.rejects(
    guard.connect({ host: "127.0.0.1", port: deadPort }),
    (e: Error & { code?: string; retryAfterMs?: number }) => {
      return e.code === "SYNLIMIT_BREAKER_OPEN" && e.retryAfterMs === 600;
    },
  );
  // Other destinations are not affected by this one's breaker.
  (await guard.connect({ host: "127.0.0.1", port: live.port })).destroy();
  clock.advance(600);
  // Half-open: the echo answers, so one TCP attempt is made; it is refused, so open again, 1.6 s.
  await assert.rejects(guard.connect({ host: "127.0.0.1", port: deadPort }), code("ECONNREFUSED"));
  assert.equal(guard.nextTryInMs("127.0.0.1", deadPort), 1600);
  const seq = events
    .filter((e) => e.port === deadPort)
    .map((e) => `${e.channel}:${e.to ?? e.outcome ?? e.reason ?? ""}`);
  assert.deepEqual(seq, [
    "preflight:alive", // the default: every connect is tested first when an echo port is known
    "connectStart:",
    "connectEnd:failed",
    "breaker:open",
    "skipped:breaker-open",
    "breaker:half-open",
    "preflight:alive",
    "connectStart:",
    "connectEnd:failed",
    "breaker:open",
  ]);
});

test("a silent preflight means no TCP attempt at all; a refused one is told apart", async (t) => {
  const { tarpit } = await fixtures(t);
  const silent = await SilentUdpPort.listen();
  t.after(() => silent.close());
  const clock = new FakeClock();
  const events = recordGuard(t);
  const guard = new Guard(
    guardOptions({ clock, preflight: { udpEchoPort: silent.port, when: "always", timeoutMs: 50 } }),
  );
  const pending = guard.connect({ host: "127.0.0.1", port: tarpit.port });
  await once(silent.socket, "message");
  clock.advance(50);
  await assert.rejects(
    pending,
    (e: Error & { code?: string }) =>
      e.code === "SYNLIMIT_PREFLIGHT_FAILED" && /preflight silent/.test(e.message),
  );
  assert.equal(events.filter((e) => e.channel === "connectStart").length, 0, "no SYN was sent");
  assert.equal(silent.received, 1);

  const closedUdp = await SilentUdpPort.listen();
  await closedUdp.close(); // nothing bound: the kernel answers with ICMP port unreachable
  const refusing = new Guard(
    guardOptions({ preflight: { udpEchoPort: closedUdp.port, when: "always", timeoutMs: 5000 } }),
  );
  await assert.rejects(
    refusing.connect({ host: "127.0.0.1", port: tarpit.port }),
    /preflight refused/,
  );
});

test("UDP filtered but TCP alive: a sparse TCP attempt still gets through after the configured interval", async (t) => {
  const { live } = await fixtures(t);
  const silent = await SilentUdpPort.listen();
  t.after(() => silent.close());
  const clock = new FakeClock();
  const guard = new Guard(
    guardOptions({
      clock,
      preflight: {
        udpEchoPort: silent.port,
        when: "always",
        timeoutMs: 10,
        sparseTcpIntervalMs: 5000,
      },
      backoff: { random: () => 0.5 },
    }),
  );
  let connected: net.Socket | null = null;
  let tries = 0;
  while (!connected && tries < 20) {
    tries++;
    const attempt = guard.connect({ host: "127.0.0.1", port: live.port });
    attempt.catch(() => {});
    // Let the preflight's datagram go out, then let its deadline pass.
    await new Promise((r) => setImmediate(r));
    clock.advance(10);
    try {
      connected = await attempt;
    } catch (e) {
      assert.match((e as Error).message, /preflight silent|breaker/);
      clock.advance(guard.nextTryInMs("127.0.0.1", live.port));
    }
  }
  assert.ok(connected, "the link got through by TCP");
  connected.destroy();
  // 1 s + 1.6 s + 2.56 s = 5.16 s ≥ 5 s: the fourth try is the sparse TCP one.
  assert.equal(tries, 4);
});

test("guards share one process-wide attempt budget: the second waits while the first's attempt is pending", async (t) => {
  const { live, tarpit } = await fixtures(t);
  const events = recordGuard(t);
  const name = `shared-${budgetSeq++}`;
  const a = new Guard({ budget: name, connectTimeoutMs: 150 });
  const b = new Guard({ budget: name });
  const first = a.connect({ host: "127.0.0.1", port: tarpit.port });
  first.catch(() => {});
  const second = b.connect({ host: "127.0.0.1", port: live.port });
  (await second).destroy();
  await assert.rejects(first, code("SYNLIMIT_CONNECT_TIMEOUT"));
  const seq = events
    .filter((e) => e.channel.startsWith("connect"))
    .map((e) => `${e.channel}:${e.port}`);
  assert.deepEqual(seq, [
    `connectStart:${tarpit.port}`,
    `connectEnd:${tarpit.port}`,
    `connectStart:${live.port}`,
    `connectEnd:${live.port}`,
  ]);
});

test("yieldToHost: a background connect waits while the application has a connect in flight", async (t) => {
  const { live, tarpit } = await fixtures(t);
  const events = recordGuard(t);
  const guard = new Guard(guardOptions({ yieldToHost: true }));
  const app = net.connect(tarpit.port, "127.0.0.1"); // the app's own connect, pending
  app.on("error", () => {});
  t.after(() => app.destroy());
  const yielded = nextGuardEvent("yield");
  const background = guard.connect({ host: "127.0.0.1", port: live.port });
  await yielded;
  await new Promise((r) => setImmediate(r));
  assert.equal(
    events.filter((e) => e.channel === "connectStart").length,
    0,
    "held back while the app connects",
  );
  assert.equal(events.filter((e) => e.channel === "yield").length, 1);
  app.destroy();
  (await background).destroy();
  assert.equal(events.filter((e) => e.channel === "connectStart").length, 1);
});

test("an AbortSignal ends the attempt and its SYN_SENT", async (t) => {
  const { tarpit } = await fixtures(t);
  const guard = new Guard(guardOptions());
  const abort = new AbortController();
  const started = nextGuardEvent("connectStart");
  const pending = guard.connect({ host: "127.0.0.1", port: tarpit.port, signal: abort.signal });
  await started;
  abort.abort();
  await assert.rejects(pending, code("SYNLIMIT_ABORTED"));
  assert.deepEqual(
    (await synSentOf()).filter((e) => e.remote.port === tarpit.port),
    [],
  );
  assert.equal(
    guard.state("127.0.0.1", tarpit.port),
    "closed",
    "an abort is not the peer's failure",
  );
});

test("tls: the connection is upgraded after the guarded TCP connect", async (t) => {
  const server = await new TlsFixture().listen();
  t.after(() => server.close());
  const guard = new Guard(guardOptions());
  const socket = await guard.connect({
    host: "127.0.0.1",
    port: server.port,
    tls: { ca: testCert.cert, servername: "localhost" },
  });
  t.after(() => socket.destroy());
  const [data] = (await once(socket, "data")) as [Buffer];
  assert.equal(data.toString(), "hello");
});

test("under the incident's limiter, the guard's short deadline frees the process's only slot", async (t) => {
  const { live, tarpit } = await fixtures(t);
  install({ profile: "incident" }); // real Windows timing: 21 s if nothing ends the attempt
  t.after(uninstall);
  const guard = new Guard(guardOptions({ connectTimeoutMs: 100 }));
  const background = guard.connect({ host: "127.0.0.1", port: tarpit.port });
  background.catch(() => {});
  const login = new Promise<void>((resolve, reject) => {
    const s = net.connect(live.port, "127.0.0.1", () => {
      s.destroy();
      resolve();
    });
    s.on("error", reject);
  });
  await login; // would take 21 s without the guard's deadline
  await assert.rejects(background, code("SYNLIMIT_CONNECT_TIMEOUT"));
});

test("options are validated at construction", () => {
  assert.throws(
    () => new Guard({ maxInFlight: 0 }),
    /option maxInFlight must be a positive integer, got 0/,
  );
  assert.throws(() => new Guard({ connectTimeoutMs: -1 }), /connectTimeoutMs/);
  assert.throws(() => new Guard({ preflight: { udpEchoPort: 70000 } }), /preflight.udpEchoPort/);
  assert.throws(() => new Guard({ preflight: { when: "sometimes" as never } }), /preflight.when/);
  assert.throws(() => new Guard({ backoff: { jitter: 2 } }), /backoff.jitter/);
  assert.throws(() => new Guard({ yieldToHost: "yes" as never }), /yieldToHost/);
  assert.throws(() => new Guard({ budget: "" }), /budget/);
});

/** Resolves after `n` turns of the event loop, so pending I/O callbacks run. */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

test("half-open admits one trial: five concurrent connects to a refusing port make one TCP attempt", async (t) => {
  const closed = await LiveListener.listen();
  const deadPort = closed.port;
  await closed.close(); // nothing listens: every SYN is answered by RST
  const clock = new FakeClock();
  const events = recordGuard(t);
  const guard = new Guard(guardOptions({ clock, backoff: { random: () => 0.5 } }));
  await assert.rejects(guard.connect({ host: "127.0.0.1", port: deadPort }), code("ECONNREFUSED"));
  assert.equal(guard.state("127.0.0.1", deadPort), "open");
  clock.advance(guard.nextTryInMs("127.0.0.1", deadPort));
  const halfOpen: string[] = [];
  guard.onHalfOpen((e) => halfOpen.push(`${e.host}:${e.port}`));
  const results = await Promise.allSettled(
    Array.from({ length: 5 }, () => guard.connect({ host: "127.0.0.1", port: deadPort })),
  );
  const codes = results.map((r) =>
    r.status === "rejected" ? (r.reason as { code?: string }).code : "ok",
  );
  assert.deepEqual(codes.sort(), [
    "ECONNREFUSED",
    "SYNLIMIT_BREAKER_OPEN",
    "SYNLIMIT_BREAKER_OPEN",
    "SYNLIMIT_BREAKER_OPEN",
    "SYNLIMIT_BREAKER_OPEN",
  ]);
  const attempts = events.filter((e) => e.channel === "connectStart" && e.port === deadPort);
  assert.equal(attempts.length, 2, "the first failure, then exactly one half-open trial");
  assert.deepEqual(halfOpen, [`127.0.0.1:${deadPort}`]);
});

test("half-open: the callers waiting for a trial that succeeds go on to connect", async (t) => {
  const { live } = await fixtures(t);
  const clock = new FakeClock();
  const events = recordGuard(t);
  const guard = new Guard(guardOptions({ clock, maxInFlightPerDestination: 4, maxInFlight: 4 }));
  const port = live.port;
  // Open the breaker by a refused connect on the same port, then listen again.
  await live.close();
  await assert.rejects(guard.connect({ host: "127.0.0.1", port }), code("ECONNREFUSED"));
  const again = await LiveListener.listen({ port });
  t.after(() => again.close());
  clock.advance(guard.nextTryInMs("127.0.0.1", port));
  const sockets = await Promise.all(
    Array.from({ length: 3 }, () => guard.connect({ host: "127.0.0.1", port })),
  );
  for (const s of sockets) s.destroy();
  const seq = events
    .filter((e) => e.port === port && (e.channel === "connectStart" || e.channel === "connectEnd"))
    .map((e) => `${e.channel}:${e.outcome ?? ""}`);
  // The first failure, the trial alone (start, end), then the two that waited for it.
  assert.deepEqual(seq.slice(0, 4), [
    "connectStart:",
    "connectEnd:failed",
    "connectStart:",
    "connectEnd:connected",
  ]);
  assert.equal(seq.length, 8);
  assert.equal(guard.state("127.0.0.1", port), "closed");
});

test("an aborted half-open trial hands the trial to the next caller; the abort is not the peer's failure", async (t) => {
  const { tarpit } = await fixtures(t);
  const clock = new FakeClock();
  const guard = new Guard(guardOptions({ clock, backoff: { random: () => 0.5 } }));
  const first = guard.connect({ host: "127.0.0.1", port: tarpit.port });
  await turns(2);
  clock.advance(1000); // the unmeasured deadline
  await assert.rejects(first, code("SYNLIMIT_CONNECT_TIMEOUT"));
  // 1 s held of the 3 s a minute allows: the backoff decides.
  assert.equal(guard.nextTryInMs("127.0.0.1", tarpit.port), 1000);
  clock.advance(1000);
  const abort = new AbortController();
  const trial = guard.connect({ host: "127.0.0.1", port: tarpit.port, signal: abort.signal });
  const waiter = guard.connect({ host: "127.0.0.1", port: tarpit.port });
  await turns(2);
  assert.equal(guard.state("127.0.0.1", tarpit.port), "half-open");
  abort.abort();
  await assert.rejects(trial, code("SYNLIMIT_ABORTED"));
  await turns(2);
  assert.equal(guard.state("127.0.0.1", tarpit.port), "half-open", "the waiter is the new trial");
  clock.advance(1000);
  await assert.rejects(waiter, code("SYNLIMIT_CONNECT_TIMEOUT"));
  assert.equal(guard.state("127.0.0.1", tarpit.port), "open");
});

test("time follows an installed emulation's scale: deadlines and backoff run 10× faster at 0.1", async (t) => {
  const { tarpit } = await fixtures(t);
  const clock = new FakeClock();
  const events = recordGuard(t);
  install({ profile: "incident", timeScale: 0.1 });
  t.after(uninstall);
  const guard = new Guard(guardOptions({ clock, backoff: { random: () => 0.5 }, maxSlotShare: 1 }));
  const pending = guard.connect({ host: "127.0.0.1", port: tarpit.port });
  await turns(2);
  clock.advance(100);
  await assert.rejects(pending, code("SYNLIMIT_CONNECT_TIMEOUT"));
  const starts = events.filter((e) => e.channel === "connectStart").map((e) => e.deadlineMs);
  assert.deepEqual(starts, [100], "RFC 6298's 1 s, scaled");
  assert.equal(guard.nextTryInMs("127.0.0.1", tarpit.port), 100, "gRPC's first 1 s, scaled");
  uninstall();
  assert.equal(guard.timeScale, 1, "the scale is read at each use");
  const fixed = new Guard(guardOptions({ timeScale: 0.5 }));
  assert.equal(fixed.deadlineMs("127.0.0.1", tarpit.port), 500, "an explicit scale wins");
});

test("per-peer state is evicted when idle, and bounded in number", async (t) => {
  const clock = new FakeClock();
  const listeners = await Promise.all([0, 1, 2].map(() => LiveListener.listen()));
  for (const l of listeners) t.after(() => l.close());
  const guard = new Guard(guardOptions({ clock, peerIdleMs: 60_000, maxPeers: 2 }));
  const ports = listeners.map((l) => l.port);
  for (const port of ports) (await guard.connect({ host: "127.0.0.1", port })).destroy();
  assert.equal(guard.peerCount, 2, "the least recently used third peer is gone");
  clock.advance(60_000);
  (await guard.connect({ host: "127.0.0.1", port: ports[0] as number })).destroy();
  assert.equal(guard.peerCount, 1, "idle peers are forgotten");
});

test("per-instance events: onBreak, onHalfOpen, onReset, onAttempt; dispose() stops them", async (t) => {
  const closed = await LiveListener.listen();
  const port = closed.port;
  await closed.close();
  const clock = new FakeClock();
  const guard = new Guard(guardOptions({ clock, backoff: { random: () => 0.5 } }));
  const seen: string[] = [];
  const subs = [
    guard.onBreak((e) => seen.push(`break:${e.reason}:${e.retryAfterMs}`)),
    guard.onHalfOpen(() => seen.push("half-open")),
    guard.onReset(() => seen.push("reset")),
    guard.onAttempt((e) => seen.push(`attempt:${e.outcome}`)),
  ];
  await assert.rejects(guard.connect({ host: "127.0.0.1", port }), code("ECONNREFUSED"));
  const again = await LiveListener.listen({ port });
  t.after(() => again.close());
  clock.advance(1000);
  (await guard.connect({ host: "127.0.0.1", port })).destroy();
  assert.deepEqual(seen, [
    "attempt:failed",
    "break:connect:1000",
    "half-open",
    "attempt:connected",
    "reset",
  ]);
  for (const s of subs) s.dispose();
  (await guard.connect({ host: "127.0.0.1", port })).destroy();
  assert.equal(seen.length, 5);
});

test("bounded harm without an echo: over a 60 s outage of a silent peer the guard holds a connect slot ≤ 5 % of the time", async (t) => {
  const { tarpit } = await fixtures(t);
  const clock = new FakeClock();
  const guard = new Guard(guardOptions({ clock }));
  let heldMs = 0;
  let attempts = 0;
  const outlived: string[] = [];
  // Checked after the loop, not in the callback: a throw there is an uncaught
  // exception the runner pins on whichever test runs then.
  const sub = guard.onAttempt((e) => {
    attempts++;
    heldMs += e.durationMs;
    if (e.durationMs > e.deadlineMs) outlived.push(`${e.durationMs} > ${e.deadlineMs} ms`);
  });
  t.after(() => sub.dispose());
  const host = "127.0.0.1";
  while (clock.now() < 60_000) {
    const wait = guard.nextTryInMs(host, tarpit.port);
    if (wait > 0) {
      clock.advance(Math.min(wait, 60_000 - clock.now()));
      continue;
    }
    const deadline = guard.deadlineMs(host, tarpit.port);
    const pending = guard.connect({ host, port: tarpit.port });
    await turns(2);
    clock.advance(deadline);
    await assert.rejects(pending, code("SYNLIMIT_CONNECT_TIMEOUT"));
  }
  assert.deepEqual(outlived, [], "no attempt outlives its deadline");
  assert.ok(attempts >= 2, "the guard keeps trying");
  assert.ok(heldMs <= 0.05 * 60_000, `held ${heldMs} ms of 60 000 (${attempts} attempts)`);
});

import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import { test } from "node:test";
import { guardChannelNames } from "../../src/guard/channels.js";
import { Guard } from "../../src/guard/guard.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { FakeClock } from "../helpers/fake-clock.js";

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

// The cause of an attempt event with durationMs > deadlineMs: the duration
// was measured from an instant taken before the connect:start subscribers and
// net.connect() ran, the deadline's timer armed only after them. Time spent
// there (an emulation's hook, `net.client.socket` subscribers, a slow
// subscriber, a loaded machine) was in the duration but not in the deadline.
// Here that time passes on a fake clock, inside those synchronous calls.
test("an attempt's duration and its deadline are measured from one instant: time spent inside net.connect() is within the deadline", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const clock = new FakeClock();
  const guard = new Guard({ budget: "attempt-clock", clock, connectTimeoutMs: 1000 });
  const slowStart = () => clock.advance(3);
  const slowSocket = () => clock.advance(5);
  diagnostics.subscribe(guardChannelNames.connectStart, slowStart);
  diagnostics.subscribe("net.client.socket", slowSocket);
  t.after(() => {
    diagnostics.unsubscribe(guardChannelNames.connectStart, slowStart);
    diagnostics.unsubscribe("net.client.socket", slowSocket);
  });
  const events: Array<{ durationMs: number; deadlineMs: number; lateMs: number }> = [];
  const sub = guard.onAttempt((e) => events.push(e));
  t.after(() => sub.dispose());
  const pending = guard.connect({ host: "127.0.0.1", port: tarpit.port });
  await turns(2);
  clock.advance(1000);
  await assert.rejects(pending, (e: Error & { code?: string }) => {
    return e.code === "SYNLIMIT_CONNECT_TIMEOUT";
  });
  assert.equal(events.length, 1);
  const [e] = events as [{ durationMs: number; deadlineMs: number; lateMs: number }];
  assert.deepEqual(
    { durationMs: e.durationMs, deadlineMs: e.deadlineMs, lateMs: e.lateMs },
    { durationMs: 1000, deadlineMs: 1000, lateMs: 0 },
    "the timer fires exactly at the deadline of the same clock",
  );
});

// The event seen once after "bounded harm without an echo": its attempts
// start at fractional fake times (the breaker's jittered backoff), and
// (start + deadline) - start is one ulp above the deadline for about 2 % of
// them, although the timer fired exactly at its due time.
test("an attempt that starts at a fractional time and ends exactly at its deadline reports durationMs === deadlineMs", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const clock = new FakeClock();
  clock.advance(1621.7319885584081); // 1621.7319885584081 + 1000 - 1621.7319885584081 > 1000
  const guard = new Guard({ budget: "attempt-ulp", clock, connectTimeoutMs: 1000 });
  const events: Array<{ durationMs: number; deadlineMs: number; lateMs: number }> = [];
  const sub = guard.onAttempt((e) => events.push(e));
  t.after(() => sub.dispose());
  const pending = guard.connect({ host: "127.0.0.1", port: tarpit.port });
  await turns(2);
  clock.advance(1000);
  await assert.rejects(pending, (e: Error & { code?: string }) => {
    return e.code === "SYNLIMIT_CONNECT_TIMEOUT";
  });
  assert.deepEqual(
    events.map((e) => [e.durationMs, e.deadlineMs, e.lateMs]),
    [[1000, 1000, 0]],
  );
});

test("a deadline run late (a busy event loop) is reported as lateMs, counted, and reserved for the next attempt", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const fake = new FakeClock();
  // Timers fire 700 ms after they are due, as under a blocked event loop.
  const clock = {
    now: () => fake.now(),
    setTimer: (fn: () => void, ms: number) => fake.setTimer(fn, ms + 700),
  };
  const guard = new Guard({ budget: "attempt-late", clock, connectTimeoutMs: 1000 });
  const holds: Array<{ start: number; end: number; lateMs: number }> = [];
  const sub = guard.onAttempt((e) =>
    holds.push({ start: fake.now() - e.durationMs, end: fake.now(), lateMs: e.lateMs }),
  );
  t.after(() => sub.dispose());
  const host = "127.0.0.1";
  while (fake.now() < 120_000) {
    const wait = guard.nextTryInMs(host, tarpit.port);
    if (wait > 0) {
      fake.advance(wait);
      continue;
    }
    const pending = guard.connect({ host, port: tarpit.port });
    await turns(2);
    fake.advance(1700);
    await assert.rejects(pending, (e: Error & { code?: string }) => {
      return e.code === "SYNLIMIT_CONNECT_TIMEOUT";
    });
  }
  assert.ok(holds.length >= 2);
  // Each attempt holds 1700 ms. Counting the next one at its 1000 ms deadline
  // alone, a second fits beside the first (1700 + 1000 ≤ 3000) and holds 1700
  // too: 3400 ms in one minute. Reserving the lateness seen, it waits.
  for (const a of holds) {
    const inWindow = holds.filter((b) => b.end > a.start && b.start < a.start + 60_000);
    const held = inWindow.reduce((sum, b) => sum + (b.end - b.start), 0);
    assert.ok(held <= 3000, `${held} ms held in the minute from ${a.start} ms`);
  }
  assert.ok(holds.every((h) => h.lateMs === 700 && h.end - h.start === 1700));
});

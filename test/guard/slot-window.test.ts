import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Guard, type GuardOptions } from "../../src/guard/guard.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { FakeClock } from "../helpers/fake-clock.js";

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** The most slot time the intervals hold in any window of `windowMs` (not only from the outage start). */
export function maxWindowHeldMs(holds: Array<{ start: number; end: number }>, windowMs: number) {
  const starts = [...holds.map((h) => h.start), ...holds.map((h) => h.end - windowMs)];
  let max = 0;
  for (const s of starts) {
    let sum = 0;
    for (const h of holds) sum += Math.max(0, Math.min(h.end, s + windowMs) - Math.max(h.start, s));
    max = Math.max(max, sum);
  }
  return max;
}

let seq = 0;

/**
 * Drives a guard against a silent peer on a fake clock for `outageMs`: a
 * caller tries whenever the guard would let it, or after `gapsMs` (cycled),
 * and every attempt runs to its deadline. Returns the attempts' intervals.
 */
async function outage(
  port: number,
  options: GuardOptions,
  outageMs: number,
  gapsMs: number[] = [0],
): Promise<{ holds: Array<{ start: number; end: number }>; late: number }> {
  const clock = new FakeClock();
  const guard = new Guard({ budget: `slot-window-${seq++}`, clock, ...options });
  const holds: Array<{ start: number; end: number }> = [];
  let late = 0;
  const sub = guard.onAttempt((e) => {
    const end = clock.now();
    holds.push({ start: end - e.durationMs, end });
    if (e.durationMs > e.deadlineMs) late++;
  });
  const host = "127.0.0.1";
  try {
    for (let i = 0; clock.now() < outageMs; i++) {
      clock.advance(gapsMs[i % gapsMs.length] ?? 0);
      const wait = guard.nextTryInMs(host, port);
      if (wait > 0) {
        clock.advance(Math.min(wait, outageMs - clock.now()));
        continue;
      }
      const pending = guard.connect({ host, port }).then(
        (s) => {
          s.destroy();
          return "connected";
        },
        (e: Error & { code?: string }) => e.code ?? "error",
      );
      await turns(2);
      clock.advance(guard.deadlineMs(host, port) + 1);
      const outcome = await pending;
      assert.ok(
        outcome === "SYNLIMIT_CONNECT_TIMEOUT" || outcome === "SYNLIMIT_BREAKER_OPEN",
        `a silent peer: ${outcome}`,
      );
    }
  } finally {
    sub.dispose();
  }
  return { holds, late };
}

test("slot budget: with failureThreshold 5 the breaker stays closed for four failures, and the budget still holds in every 60 s window", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const { holds } = await outage(tarpit.port, { failureThreshold: 5 }, 120_000);
  const held = maxWindowHeldMs(holds, 60_000);
  assert.ok(holds.length >= 3, `the guard keeps trying (${holds.length} attempts)`);
  assert.ok(held <= 0.05 * 60_000, `held ${held} ms of a 60 s window (${holds.length} attempts)`);
});

test("slot budget: a share smaller than one deadline caps the deadline instead of overrunning the share", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const { holds } = await outage(tarpit.port, { maxSlotShare: 0.01 }, 120_000);
  const held = maxWindowHeldMs(holds, 60_000);
  assert.ok(holds.length >= 1);
  assert.ok(held <= 0.01 * 60_000, `held ${held} ms of a 60 s window`);
});

test("property: over random thresholds, shares, windows, deadlines and caller gaps, failed attempts hold ≤ maxSlotShare of every window", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  await fc.assert(
    fc.asyncProperty(
      fc.record({
        failureThreshold: fc.integer({ min: 1, max: 6 }),
        maxSlotShare: fc.constantFrom(0.01, 0.05, 0.2),
        slotWindowMs: fc.constantFrom(10_000, 60_000),
        connectTimeoutMs: fc.option(fc.constantFrom(100, 1000, 2500), { nil: undefined }),
        timeScale: fc.constantFrom(1, 0.05),
      }),
      fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 5 }),
      async (o, gapsMs) => {
        const options: GuardOptions = {
          failureThreshold: o.failureThreshold,
          maxSlotShare: o.maxSlotShare,
          slotWindowMs: o.slotWindowMs,
          timeScale: o.timeScale,
          ...(o.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: o.connectTimeoutMs }),
        };
        const windowMs = o.slotWindowMs * o.timeScale;
        const scaledGaps = gapsMs.map((g) => g * o.timeScale);
        const { holds } = await outage(tarpit.port, options, 2 * windowMs, scaledGaps);
        const held = maxWindowHeldMs(holds, windowMs);
        // 1e-6: sums of scaled fractions.
        assert.ok(
          held <= o.maxSlotShare * windowMs + 1e-6,
          `held ${held} of ${windowMs} ms (${holds.length} attempts)`,
        );
      },
    ),
    { numRuns: 40 },
  );
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { FATE_STARTED, type SimConfig, simulate } from "../../src/simulate/engine.js";
import { Prng } from "../../src/simulate/prng.js";
import { summarize, waitOf } from "../../src/simulate/summary.js";
import { generatePoissonMix, workloadOf } from "../../src/simulate/workload.js";

const fifo = (maxInFlight: number): SimConfig => ({
  maxInFlight,
  scope: "process",
  policy: "queue",
  failAtMs: null,
  ratePerSecond: 1,
  workingSetSize: 5,
});

/** Random interarrival and service times with ties and zeros, from a seed. */
function randomWorkload(seed: number, n: number) {
  const rng = new Prng(seed);
  let t = 0;
  return workloadOf(
    Array.from({ length: n }, () => {
      // Integers make exact ties (simultaneous arrivals, an end at an arrival) common.
      t += rng.nextUint32() % 4 === 0 ? 0 : rng.nextUint32() % 7;
      return { t, durationMs: rng.nextUint32() % 3 === 0 ? 21 : rng.nextUint32() % 5 };
    }),
  );
}

test("one slot, FIFO: every simulated wait equals Lindley's recursion", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const w = randomWorkload(seed, 5_000);
    const run = simulate(w, fifo(1));
    let wait = 0;
    for (let i = 0; i < w.n; i++) {
      if (i > 0) {
        const s = w.durationMs[i - 1] as number;
        const a = (w.t[i] as number) - (w.t[i - 1] as number);
        wait = Math.max(0, wait + s - a);
      }
      assert.equal(waitOf(run, i), wait, `seed ${seed}, attempt ${i}`);
    }
  }
});

test("k slots, FIFO: every simulated wait equals the Kiefer–Wolfowitz recursion", () => {
  for (const k of [2, 3, 4, 8]) {
    const w = randomWorkload(100 + k, 5_000);
    const run = simulate(w, fifo(k));
    // Workload vector: remaining work of each slot at the arrival, sorted ascending.
    let v = new Array<number>(k).fill(0);
    for (let i = 0; i < w.n; i++) {
      if (i > 0) {
        const a = (w.t[i] as number) - (w.t[i - 1] as number);
        const bumped = v.map((x, j) => (j === 0 ? x + (w.durationMs[i - 1] as number) : x));
        v = bumped.map((x) => Math.max(0, x - a)).sort((x, y) => x - y);
      }
      assert.equal(waitOf(run, i), v[0], `k=${k}, attempt ${i}`);
    }
  }
});

test("M/G/1 with a dead/live mix: the mean wait matches Pollaczek–Khinchine", () => {
  const deadMs = 100;
  const liveMs = 0.5;
  const deadFraction = 0.05;
  const meanService = deadFraction * deadMs + (1 - deadFraction) * liveMs;
  const secondMoment = deadFraction * deadMs ** 2 + (1 - deadFraction) * liveMs ** 2;
  for (const rho of [0.3, 0.6]) {
    const lambda = rho / meanService;
    const w = generatePoissonMix({
      n: 1_000_000,
      seed: 42,
      meanInterarrivalMs: 1 / lambda,
      deadFraction,
      deadMs,
      liveMs,
    });
    const expected = (lambda * secondMoment) / (2 * (1 - rho));
    const s = summarize(simulate(w, fifo(1)));
    const error = Math.abs(s.waits.meanMs - expected) / expected;
    // Fixed seed: deterministic; 3 % covers the sampling error of 10^6 arrivals at these loads.
    assert.ok(
      error < 0.03,
      `rho ${rho}: simulated ${s.waits.meanMs}, P-K ${expected} (${(error * 100).toFixed(2)} %)`,
    );
  }
});

test("deterministic burst: with one slot the i-th dead attempt ends at i·D", () => {
  const D = 21_000;
  const w = workloadOf(
    Array.from({ length: 50 }, () => ({ t: 0, durationMs: D, outcome: "timeout" as const })),
  );
  const run = simulate(w, fifo(1));
  for (let i = 0; i < w.n; i++) assert.equal(run.end[i], (i + 1) * D);
  // And under the windows deadline a recorded 5 s timeout lasts 21 s.
  const short = workloadOf(
    Array.from({ length: 5 }, () => ({ t: 0, durationMs: 5, outcome: "timeout" as const })),
  );
  const timed = simulate(short, { ...fifo(1), failAtMs: D });
  for (let i = 0; i < short.n; i++) assert.equal(timed.end[i], (i + 1) * D);
});

test("Little's law: the time-averaged queue length equals arrival rate × mean wait", () => {
  for (const k of [1, 3]) {
    const w = generatePoissonMix({
      n: 200_000,
      seed: 7,
      meanInterarrivalMs: 4,
      deadFraction: 0.1,
      deadMs: 30,
      liveMs: 0.5,
    });
    const s = summarize(simulate(w, fifo(k)));
    const lambda = s.attempts / s.spanMs;
    const little = lambda * s.waits.meanMs;
    assert.ok(
      Math.abs(s.queue.meanLength - little) <= 1e-9 * Math.max(1, little),
      `k=${k}: L=${s.queue.meanLength}, λW=${little}`,
    );
    // Same for the slots: mean in flight = λ × mean duration (all attempts start).
    let busy = 0;
    const run = simulate(w, fifo(k));
    for (let i = 0; i < w.n; i++)
      if (run.fate[i] === FATE_STARTED) busy += (run.end[i] as number) - (run.start[i] as number);
    assert.ok(Math.abs(s.occupancy.meanInFlight - busy / s.spanMs) < 1e-9);
    // The timeline's buckets average to the same queue length.
    const tl = s.queue.timeline;
    const mean = tl.mean.reduce((a, b) => a + b, 0) / tl.mean.length;
    assert.ok(Math.abs(mean - s.queue.meanLength) < 1e-6 * Math.max(1, mean));
  }
});

/**
 * One measurement in its own process (so one implementation's garbage and
 * JIT state never tilt the other's): prints {events, ms, cpuMs, meanWaitMs}.
 * `ms` is the wall clock of the simulation alone, from a cold process (the
 * JIT warms up inside it); `cpuMs` the process's CPU time over the same span
 * (all its threads, the optimising compiler's included), which a busy
 * machine inflates less than the wall clock.
 */
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { simulate } from "../src/simulate/engine.js";
import { summarize } from "../src/simulate/summary.js";
import { generatePoissonMix } from "../src/simulate/workload.js";
import { simulateNaive } from "./simulate-naive.js";

const { values } = parseArgs({
  options: {
    impl: { type: "string" },
    n: { type: "string" },
    k: { type: "string" },
    seed: { type: "string", default: "1" },
  },
  strict: true,
});
const n = Number(values.n);
const k = Number(values.k);
// Load 0.6 per slot: a queue forms behind every dead attempt, as in the incident.
const deadFraction = 0.05;
const meanService = deadFraction * 100 + (1 - deadFraction) * 0.5;
const w = generatePoissonMix({
  n,
  seed: Number(values.seed),
  meanInterarrivalMs: meanService / (0.6 * k),
  deadFraction,
  deadMs: 100,
  liveMs: 0.5,
});
const cpu0 = process.cpuUsage();
const started = performance.now();
let events: number;
let ms: number;
let cpu: NodeJS.CpuUsage;
let meanWaitMs: number;
if (values.impl === "naive") {
  const r = simulateNaive(w, k);
  ms = performance.now() - started;
  cpu = process.cpuUsage(cpu0);
  events = r.events;
  meanWaitMs = r.waits.reduce((a, b) => a + b, 0) / r.waits.length;
} else {
  const run = simulate(w, {
    maxInFlight: k,
    scope: "process",
    policy: "queue",
    failAtMs: null,
    ratePerSecond: 1,
    workingSetSize: 0,
  });
  ms = performance.now() - started;
  cpu = process.cpuUsage(cpu0);
  events = run.events;
  meanWaitMs = summarize(run).waits.meanMs;
}
const cpuMs = (cpu.user + cpu.system) / 1000;
process.stdout.write(`${JSON.stringify({ events, ms, cpuMs, meanWaitMs })}\n`);

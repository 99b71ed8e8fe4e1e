/**
 * Reading a trace into the simulator's columns, in its own process: the
 * byte scanner (`loadWorkload`) or the straightforward reader
 * (bench/simulate-naive.ts: readline, JSON.parse and parseRecord per line).
 * Prints {attempts, ms, cpuMs, checksum}; the checksum must agree.
 */
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { loadWorkload } from "../src/simulate/workload.js";
import { loadWorkloadNaive } from "./simulate-naive.js";

const { values } = parseArgs({
  options: { impl: { type: "string" }, file: { type: "string" } },
  strict: true,
});
const file = values.file as string;
const cpu0 = process.cpuUsage();
const started = performance.now();
const w = values.impl === "naive" ? await loadWorkloadNaive(file) : await loadWorkload(file);
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
let checksum = 0;
for (let i = 0; i < w.n; i++)
  checksum += (w.t[i] as number) + (w.durationMs[i] as number) + (w.role[i] as number);
process.stdout.write(
  `${JSON.stringify({ attempts: w.n, ms, cpuMs: (cpu.user + cpu.system) / 1000, checksum })}\n`,
);

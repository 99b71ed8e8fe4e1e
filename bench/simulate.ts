/**
 * synlimit simulate, measured: the typed-array core against a straightforward
 * simulator (bench/simulate-naive.ts) on the same generated workloads, each
 * round in fresh processes, order rotated; then a 1 M-attempt trace end to
 * end through the CLI. `node dist/bench/simulate.js [--rounds N] [--n N]`
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { formatRecord } from "../src/record/trace.js";
import { generatePoissonMix } from "../src/simulate/workload.js";
import { median } from "./stats.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    n: { type: "string", default: "1000000" },
  },
  strict: true,
});
const rounds = Number(values.rounds);
const n = Number(values.n);
const child = fileURLToPath(new URL("./simulate-child.js", import.meta.url));
const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const log = (line: string) => process.stderr.write(`${line}\n`);

function measure(impl: string, k: number, seed: number) {
  const out = execFileSync(
    process.execPath,
    [child, "--impl", impl, "--n", String(n), "--k", String(k), "--seed", String(seed)],
    {
      encoding: "utf8",
    },
  );
  return JSON.parse(out) as { events: number; ms: number; meanWaitMs: number };
}

const lines: string[] = [];
lines.push(
  `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}, load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
  "",
);
lines.push(
  "| k | core M events/s (median) | naive M events/s (median) | core/naive per round: median (min–max) | lowest core round |",
  "| --- | --- | --- | --- | --- |",
);
for (const k of [1, 4]) {
  const core: number[] = [];
  const naive: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ["core", "naive"] : ["naive", "core"];
    const got: Record<string, { events: number; ms: number; meanWaitMs: number }> = {};
    for (const impl of order) got[impl] = measure(impl, k, r + 1);
    const c = got.core as { events: number; ms: number; meanWaitMs: number };
    const v = got.naive as { events: number; ms: number; meanWaitMs: number };
    if (Math.abs(c.meanWaitMs - v.meanWaitMs) > 1e-6 * Math.max(1, c.meanWaitMs)) {
      throw new Error(`core and naive disagree: mean wait ${c.meanWaitMs} vs ${v.meanWaitMs}`);
    }
    core.push(c.events / c.ms / 1000);
    naive.push(v.events / v.ms / 1000);
    ratios.push((core[r] as number) / (naive[r] as number));
    log(
      `k=${k} round ${r + 1}: core ${(core[r] as number).toFixed(2)}, naive ${(naive[r] as number).toFixed(2)} M events/s`,
    );
  }
  lines.push(
    `| ${k} | ${median(core).toFixed(2)} | ${median(naive).toFixed(2)} | ${median(ratios).toFixed(1)}× (${Math.min(...ratios).toFixed(1)}–${Math.max(...ratios).toFixed(1)}) | ${Math.min(...core).toFixed(2)} |`,
  );
}

// End to end: a 1 M-attempt trace file through `synlimit simulate --json`.
const dir = mkdtempSync(path.join(os.tmpdir(), "synlimit-bench-sim-"));
try {
  const file = path.join(dir, "1m.trace");
  const w = generatePoissonMix({
    n: 1_000_000,
    seed: 9,
    meanInterarrivalMs: 10,
    deadFraction: 0.05,
    deadMs: 100,
    liveMs: 0.5,
  });
  const chunks: string[] = [];
  for (let i = 0; i < w.n; i++) {
    chunks.push(
      formatRecord({
        id: i,
        t: w.t[i] as number,
        dest: w.destNames[w.dest[i] as number] as string,
        durationMs: w.durationMs[i] as number,
        outcome: w.outcome[i] === 0 ? "connected" : "timeout",
        role: w.roleNames[w.role[i] as number] as string,
      }),
    );
  }
  writeFileSync(file, chunks.join(""));
  const walls: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const res = spawnSync(
      process.execPath,
      [cli, "simulate", file, "--profile", "incident", "--timing", "none", "--json"],
      { encoding: "utf8", maxBuffer: 1 << 26 },
    );
    if (res.status !== 0) throw new Error(res.stderr);
    walls.push((performance.now() - t0) / 1000);
    log(`end to end round ${r + 1}: ${(walls[r] as number).toFixed(2)} s`);
  }
  lines.push(
    "",
    `1 M-attempt trace (${(Buffer.byteLength(chunks.join("")) / 1e6).toFixed(0)} MB) through \`synlimit simulate --json\`, wall clock per run including Node start-up: median ${median(walls).toFixed(2)} s (${Math.min(...walls).toFixed(2)}–${Math.max(...walls).toFixed(2)} s over ${rounds} runs).`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${lines.join("\n")}\n`);

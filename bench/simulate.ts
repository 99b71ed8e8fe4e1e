/**
 * synlimit simulate, measured: the typed-array core against a straightforward
 * simulator (bench/simulate-naive.ts) on the same generated workloads, each
 * measurement a fresh process, the order alternating between rounds; the
 * trace reader against the straightforward one the same way; then a
 * 1 M-attempt trace end to end through the CLI.
 * `node dist/bench/simulate.js [--rounds N] [--sizes 1000000,4000000]`
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
    sizes: { type: "string", default: "1000000,4000000" },
  },
  strict: true,
});
const rounds = Number(values.rounds);
const sizes = values.sizes.split(",").map(Number);
const child = fileURLToPath(new URL("./simulate-child.js", import.meta.url));
const readChild = fileURLToPath(new URL("./simulate-read-child.js", import.meta.url));
const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const log = (line: string) => process.stderr.write(`${line}\n`);
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
const f2 = (x: number) => x.toFixed(2);
const spread = (xs: number[], digits = 1, unit = "×") =>
  `${median(xs).toFixed(digits)}${unit} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;

interface Sim {
  events: number;
  ms: number;
  cpuMs: number;
  meanWaitMs: number;
}

function run<T>(script: string, args: string[]): T {
  return JSON.parse(
    execFileSync(process.execPath, [script, ...args], { encoding: "utf8", maxBuffer: 1 << 20 }),
  ) as T;
}

/** Runs `measure(impl, round)` for both implementations each round, alternating which goes first. */
function paired<T>(impls: [string, string], measure: (impl: string, round: number) => T) {
  const out: Array<Record<string, T>> = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? impls : ([impls[1], impls[0]] as const);
    const got: Record<string, T> = {};
    for (const impl of order) got[impl] = measure(impl, r);
    out.push(got);
  }
  return out;
}

const loadAtStart = load();
const lines: string[] = [];
lines.push(
  `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}; load average at start ${loadAtStart}`,
  "",
  "| arrivals | k | core M events/s, wall: median (lowest) | core M events/s per CPU-second: median | naive M events/s, wall: median | core/naive per round, wall: median (min–max) |",
  "| --- | --- | --- | --- | --- | --- |",
);
for (const n of sizes) {
  for (const k of [1, 4]) {
    const results = paired(["core", "naive"], (impl, r) =>
      run<Sim>(child, [
        "--impl",
        impl,
        "--n",
        String(n),
        "--k",
        String(k),
        "--seed",
        String(r + 1),
      ]),
    );
    const core: number[] = [];
    const coreCpu: number[] = [];
    const naive: number[] = [];
    const ratios: number[] = [];
    results.forEach((got, r) => {
      const c = got.core as Sim;
      const v = got.naive as Sim;
      if (Math.abs(c.meanWaitMs - v.meanWaitMs) > 1e-6 * Math.max(1, c.meanWaitMs)) {
        throw new Error(`core and naive disagree: mean wait ${c.meanWaitMs} vs ${v.meanWaitMs}`);
      }
      core.push(c.events / c.ms / 1000);
      coreCpu.push(c.events / c.cpuMs / 1000);
      naive.push(v.events / v.ms / 1000);
      ratios.push((core[r] as number) / (naive[r] as number));
      log(
        `n=${n} k=${k} round ${r + 1}: core ${f2(core[r] as number)} (cpu ${f2(coreCpu[r] as number)}), naive ${f2(naive[r] as number)} M events/s`,
      );
    });
    lines.push(
      `| ${n.toExponential(0).replace("e+", "·10^")} | ${k} | ${f2(median(core))} (${f2(Math.min(...core))}) | ${f2(median(coreCpu))} | ${f2(median(naive))} | ${spread(ratios)} |`,
    );
  }
}

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
  const text = chunks.join("");
  writeFileSync(file, text);
  const mb = (Buffer.byteLength(text) / 1e6).toFixed(0);

  // Reading alone: the byte scanner against readline + JSON.parse, same file.
  interface Read {
    attempts: number;
    ms: number;
    cpuMs: number;
    checksum: number;
  }
  const reads = paired(["fast", "naive"], (impl) =>
    run<Read>(readChild, ["--impl", impl, "--file", file]),
  );
  const fastS: number[] = [];
  const naiveS: number[] = [];
  const fastCpu: number[] = [];
  const naiveCpu: number[] = [];
  const readRatios: number[] = [];
  reads.forEach((got, r) => {
    const a = got.fast as Read;
    const b = got.naive as Read;
    if (a.attempts !== b.attempts || a.checksum !== b.checksum) {
      throw new Error(`readers disagree: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
    fastS.push(a.ms / 1000);
    naiveS.push(b.ms / 1000);
    fastCpu.push(a.cpuMs / 1000);
    naiveCpu.push(b.cpuMs / 1000);
    readRatios.push(b.ms / a.ms);
    log(`read round ${r + 1}: fast ${f2(a.ms / 1000)} s, naive ${f2(b.ms / 1000)} s`);
  });

  // End to end: the CLI, Node start-up included; the child reports its CPU time as it exits.
  const cpuAtExit = `data:text/javascript,process.on("exit",()=>{const u=process.cpuUsage();process.stderr.write("cpuMs "+(u.user+u.system)/1000+"\\n")})`;
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    const res = spawnSync(
      process.execPath,
      [
        "--import",
        cpuAtExit,
        cli,
        "simulate",
        file,
        "--profile",
        "incident",
        "--timing",
        "none",
        "--json",
      ],
      { encoding: "utf8", maxBuffer: 1 << 26 },
    );
    if (res.status !== 0) throw new Error(res.stderr);
    walls.push((performance.now() - t0) / 1000);
    cpus.push(Number(/cpuMs ([\d.]+)/.exec(res.stderr)?.[1]) / 1000);
    log(`end to end round ${r + 1}: ${f2(walls[r] as number)} s (cpu ${f2(cpus[r] as number)} s)`);
  }
  lines.push(
    "",
    `Reading the 1 M-attempt trace (${mb} MB) into columns, wall clock: byte scanner ${spread(fastS, 2, " s")}, readline + JSON.parse ${spread(naiveS, 2, " s")}; naive/scanner per round ${spread(readRatios)}. CPU time: scanner ${spread(fastCpu, 2, " s")}, readline + JSON.parse ${spread(naiveCpu, 2, " s")}.`,
    "",
    `The same trace through \`synlimit simulate --json --profile incident --timing none\`, per run including Node start-up (${rounds} runs): wall clock ${spread(walls, 2, " s")}, CPU time ${spread(cpus, 2, " s")}.`,
    "",
    `Load average at end ${load()}.`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${lines.join("\n")}\n`);

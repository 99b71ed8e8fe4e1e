// The in-process hook's cost, measured as a user would: the same client
// program run as separate processes, plain (`node client.js`) and hooked
// (`node --import synlimit/register client.js`) with no limit — Windows'
// timing (profile `windows`) and no timing at all — the order rotated every
// round; sequential connects (one at a time) and parallel ones (32 in
// flight); the ratios are paired per round. `--before DIR` adds the same two
// hooked runs with another build's register.js (DIR is that build's dist/),
// to compare a change in the same rounds.
//
//   node dist/bench/hook-overhead.js [--rounds 12] [--seq 2000] [--par 4000] [--before DIR]
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { stop } from "./proxy-common.js";
import { median } from "./stats.js";

const client = fileURLToPath(new URL("./hook-client.js", import.meta.url));
const register = new URL("../src/emulate/register.js", import.meta.url).href;

interface Sample {
  perSecond: number;
  cpuMicros: number;
  hooked: boolean;
}

/** How a run is started: plain, or hooked by `register` with these SYNLIMIT_* variables. */
interface Variant {
  readonly name: string;
  readonly env: Readonly<Record<string, string>> | null;
  readonly register: string;
}

function variantsOf(before: string | null): Variant[] {
  const hooked = (label: string, reg: string): Variant[] => [
    // No limit, Windows timing: every attempt gets a 21 s give-up deadline.
    { name: `${label}, \`windows\``, env: { SYNLIMIT_PROFILE: "windows" }, register: reg },
    // No limit and no emulated deadline: the hook has nothing to decide.
    {
      name: `${label}, unlimited`,
      env: { SYNLIMIT_PROFILE: "windows", SYNLIMIT_TIMING: "none" },
      register: reg,
    },
  ];
  return [
    { name: "plain", env: null, register },
    ...hooked("hooked", register),
    ...(before
      ? hooked("before", pathToFileURL(path.resolve(before, "src/emulate/register.js")).href)
      : []),
  ];
}

function runClient(variant: Variant, args: string[]): Promise<Sample> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("SYNLIMIT_")) delete env[k];
  Object.assign(env, variant.env);
  const hooked = variant.env !== null;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...(hooked ? ["--import", variant.register] : []), client, ...args],
      { env, encoding: "utf8", timeout: 120_000 },
      (error, stdout) => {
        if (error) return reject(error);
        const sample = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Sample;
        if (sample.hooked !== hooked)
          reject(new Error(`client hooked=${sample.hooked}, wanted ${hooked}`));
        else resolve(sample);
      },
    );
  });
}

export async function runHookOverhead(o: {
  rounds: number;
  seq: number;
  par: number;
  before?: string | null;
}) {
  const variants = variantsOf(o.before ?? null);
  const loadAtStart = os.loadavg()[0] ?? 0;
  const target = spawn(
    process.execPath,
    [fileURLToPath(new URL("./proxy-target.js", import.meta.url))],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  target.stdout?.setEncoding("utf8");
  while (!out.includes("\n"))
    out += (await once(target.stdout as NodeJS.ReadableStream, "data"))[0];
  const port = out.trim();
  const kinds = [
    { name: "sequential", args: [port, "seq", String(o.seq)] },
    { name: "parallel (32 in flight)", args: [port, "par", String(o.par), "32"] },
  ];
  // samples[kind][variant][round]
  const samples = kinds.map(() => variants.map(() => [] as Sample[]));
  try {
    for (let r = 0; r < o.rounds; r++) {
      // Rotated every round and reversed every other: each variant runs
      // first, middle and last equally often, before and after each other.
      const order = variants.map((_, i) => (i + r) % variants.length);
      if (Math.floor(r / variants.length) % 2 === 1) order.reverse();
      for (const [k, kind] of kinds.entries()) {
        for (const v of order) {
          const sample = await runClient(variants[v] as Variant, kind.args);
          samples[k]?.[v]?.push(sample);
        }
      }
    }
  } finally {
    await stop(target);
  }
  const loadAtEnd = os.loadavg()[0] ?? 0;
  const lines = [
    `Command: \`npm run build && node dist/bench/hook-overhead.js --rounds ${o.rounds} --seq ${o.seq} --par ${o.par}${o.before ? " --before <dist of the build before>" : ""}\`. Load average (1 min) at the start: ${loadAtStart.toFixed(1)}, at the end: ${loadAtEnd.toFixed(1)}.`,
    "",
    `Separate processes: the same client program (\`bench/hook-client.ts\`: \`net.connect\` to a loopback target process, destroy at \`'connect'\`) run plain, with \`--import synlimit/register\` under \`SYNLIMIT_PROFILE=windows\` (no limit, Windows timing: every attempt has a 21 s give-up deadline, none waits), and with \`SYNLIMIT_PROFILE=windows SYNLIMIT_TIMING=none\` (no limit, no emulated deadline)${o.before ? "; the `before` runs are the same with the build before this change" : ""}; ${o.rounds} rounds, the order of the ${variants.length} runs rotated every round; ${o.seq} sequential connects and ${o.par} with 32 in flight per run, after 1,000 unrecorded ones. Overhead is from the per-round ratios against the plain run of the same round: median (lowest–highest).`,
    "",
    "| connects | run | connects/s | rate overhead | CPU/connect | CPU overhead |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
  ];
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const spread = (xs: number[]) =>
    `${pct(median(xs))} (${pct(Math.min(...xs))} – ${pct(Math.max(...xs))})`;
  const goals: string[] = [];
  for (const [k, kind] of kinds.entries()) {
    const plain = samples[k]?.[0] ?? [];
    for (const [v, variant] of variants.entries()) {
      const runs = samples[k]?.[v] ?? [];
      // Rate overhead: extra time per connect = plain/hooked − 1; CPU: hooked/plain − 1.
      const rateOver = plain.map((p, i) => p.perSecond / (runs[i] as Sample).perSecond - 1);
      const cpuOver = plain.map((p, i) => (runs[i] as Sample).cpuMicros / p.cpuMicros - 1);
      const hooked = v > 0;
      lines.push(
        `| ${kind.name} | ${variant.name} | ${median(runs.map((s) => s.perSecond)).toFixed(0)} | ${hooked ? spread(rateOver) : "–"} | ${median(runs.map((s) => s.cpuMicros)).toFixed(1)} µs | ${hooked ? spread(cpuOver) : "–"} |`,
      );
      if (hooked) {
        const r = median(rateOver);
        const c = median(cpuOver);
        goals.push(
          `Goal, ${kind.name}, ${variant.name}: ≤ 5 % slower and ≤ 5 % more CPU per connect — rate ${r <= 0.05 ? "met" : "**not met**"} (${pct(r)}), CPU ${c <= 0.05 ? "met" : "**not met**"} (${pct(c)}).`,
        );
      }
    }
  }
  if (o.before) {
    // This build against the one before, paired in the same rounds.
    lines.push(
      "",
      "| connects | run | CPU/connect, this build / before | connects/s, this build / before |",
      "| --- | --- | ---: | ---: |",
    );
    for (const [k, kind] of kinds.entries()) {
      for (const v of [1, 2]) {
        const now = samples[k]?.[v] ?? [];
        const was = samples[k]?.[v + 2] ?? [];
        const cpu = now.map((s, i) => s.cpuMicros / (was[i] as Sample).cpuMicros);
        const rate = now.map((s, i) => s.perSecond / (was[i] as Sample).perSecond);
        const x = (xs: number[]) =>
          `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)} – ${Math.max(...xs).toFixed(2)})`;
        lines.push(`| ${kind.name} | ${variants[v]?.name} | ${x(cpu)} | ${x(rate)} |`);
      }
    }
  }
  lines.push("", ...goals.flatMap((g) => [g, ""]), hookAnalysis);
  return { markdown: lines.join("\n") };
}

/** What a profile of the hooked client shows, in words that hold from run to run. */
export const hookAnalysis = `What it costs (\`node --cpu-prof --import synlimit/register\` on the client, 30,000 sequential connects): with no limit and nobody subscribed to the attempt channels the hook keeps no \`Attempt\`: the connect goes straight to \`connect(2)\`, only its start and end are counted on the gate, and under a timing the connect request joins a line in start order with one timer for its head (one give-up time for all, so due order is start order; a connect that completes is only marked). Of the client's busy samples the frame that calls \`connect(2)\` — \`internalConnect\` plain, the hook's \`connectUntracked\` hooked — holds about 30 % either way; the hook's own JavaScript is what that frame gains hooked (a few points, within the profile's run-to-run spread) plus the \`close()\` wrapper every TCP handle passes through (about 1.5 %, most of it the native close it calls). A subscriber (a recorder, a test), a limit, the rate policy or a known-reachable window puts every attempt back on the tracked path: an \`Attempt\`, a slot and a deadline each.`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "12" },
      before: { type: "string" },
      seq: { type: "string", default: "2000" },
      par: { type: "string", default: "4000" },
    },
  });
  const { markdown } = await runHookOverhead({
    rounds: Number(values.rounds),
    seq: Number(values.seq),
    par: Number(values.par),
    before: values.before ?? null,
  });
  process.stdout.write(`${markdown}\n`);
}

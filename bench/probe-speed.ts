import { realpathSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { envWithout, runNode } from "../src/cli/child.js";
import type { ProbeResult } from "../src/probe/report.js";

const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const register = new URL("../src/emulate/register.js", import.meta.url).href;

/** The limits measured: the incident's 1, a small pool's 4, and 16 (still ≤ 3 s). */
const LIMITS = [1, 4, 16] as const;
const TARGET_S = 3;
/** The incident's two-thread program: a yes/no after Windows' 21 s connect timeout, and no k. */
const INCIDENT_PROGRAM_S = 21;

interface Run {
  wallS: number;
  probeS: number;
  k: number | null;
}

/**
 * Time to verdict: `synlimit probe` in a child process under synlimit/register
 * with k concurrent attempts per process (FIFO, no emulated deadline), from
 * spawn to exit — node start-up included, as a user waits for it.
 */
async function probeOnce(k: number): Promise<Run> {
  const env = {
    ...envWithout("SYNLIMIT_"),
    SYNLIMIT_PROFILE: "incident",
    SYNLIMIT_MAX_IN_FLIGHT: String(k),
    SYNLIMIT_TIMING: "none",
  };
  const started = performance.now();
  const {
    code,
    stdout: out,
    stderr: err,
  } = await runNode(["--import", register, cli, "probe", "--json", "--quiet"], env);
  const wallS = (performance.now() - started) / 1000;
  let result: ProbeResult;
  try {
    result = JSON.parse(out) as ProbeResult;
  } catch {
    throw new Error(`probe under k=${k} exited ${code} without a result: ${err.trim()}`);
  }
  return { wallS, probeS: result.durationMs / 1000, k: result.limit?.maxInFlight ?? null };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export async function runProbeBench(options: {
  quick: boolean;
}): Promise<{ rows: Array<Record<string, string | number>>; markdown: string }> {
  const runs = options.quick ? 1 : 5;
  const rows: Array<Record<string, string | number>> = [];
  for (const k of LIMITS) {
    const results: Run[] = [];
    // One at a time: concurrent probes would compete for the same two cores.
    for (let i = 0; i < runs; i++) results.push(await probeOnce(k));
    const wall = median(results.map((r) => r.wallS));
    const reported = [...new Set(results.map((r) => String(r.k)))].join(", ");
    rows.push({
      k,
      runs,
      "reported k": reported,
      "time to verdict, median (s)": wall.toFixed(2),
      "time to verdict, max (s)": Math.max(...results.map((r) => r.wallS)).toFixed(2),
      "of which probing, median (s)": median(results.map((r) => r.probeS)).toFixed(2),
      [`within ${TARGET_S} s`]: wall <= TARGET_S && reported === String(k) ? "yes" : "NO",
    });
  }
  return { rows, markdown: markdown(rows, runs) };
}

function markdown(rows: Array<Record<string, string | number>>, runs: number): string {
  const head = Object.keys(rows[0] ?? {});
  const line = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
  return [
    "## Probe: time to verdict",
    "",
    `\`synlimit probe\` in a child process under \`synlimit/register\` (incident profile, k attempts per process, FIFO, no emulated deadline), spawn to exit, median of ${runs} run(s) per k. Target: ≤ ${TARGET_S} s for k ≤ 16, k reported exactly. "Of which probing" is the probe's own \`durationMs\`; the rest is node and CLI start-up.`,
    "",
    line(head),
    line(head.map(() => "---")),
    ...rows.map((r) => line(head.map((h) => r[h] ?? ""))),
    "",
    `For comparison, the incident's test program answers only yes/no, after ${INCIDENT_PROGRAM_S} s (Windows' connect timeout), and never reports k.`,
    "",
  ].join("\n");
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  const { markdown: text } = await runProbeBench({ quick: process.argv.includes("--quick") });
  process.stdout.write(text);
}

/**
 * Time to verdict against real limiters: the Linux kernel's netfilter, one
 * network namespace per kind (loopback only, deleted at the end), the probe
 * CLI run inside it as a user would (`ip netns exec NS synlimit probe`),
 * spawn to exit. Rounds are interleaved and rotated across the kinds, so a
 * busy moment of the host does not land on one kind only. Needs root.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/probe-netfilter.js [--runs N]
 */
import { execFile, spawn } from "node:child_process";
import { realpathSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { envWithout } from "../src/cli/child.js";
import type { ProbeResult } from "../src/probe/report.js";

const run = promisify(execFile);
const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

interface Kind {
  readonly name: string;
  /** iptables rules, each appended to OUTPUT after `-o lo -p tcp --syn`. */
  readonly rules: readonly (readonly string[])[];
  readonly expected: string;
}

export const KINDS: readonly Kind[] = [
  { name: "no rule", rules: [], expected: "no-limit" },
  {
    name: "SYN rate 2/s (limit)",
    rules: [
      ["-m", "limit", "--limit", "2/sec", "--limit-burst", "2", "-j", "RETURN"],
      ["-j", "DROP"],
    ],
    expected: "limited rate-limited ~2/s",
  },
  {
    name: "SYN rate 5/s (hashlimit)",
    rules: [
      [
        "-m",
        "hashlimit",
        "--hashlimit-above",
        "5/sec",
        "--hashlimit-burst",
        "5",
        "--hashlimit-name",
        "b5",
        "-j",
        "DROP",
      ],
    ],
    expected: "limited rate-limited ~5/s",
  },
  {
    name: "connlimit 1, DROP",
    rules: [["-m", "connlimit", "--connlimit-above", "1", "--connlimit-mask", "0", "-j", "DROP"]],
    expected: "limited k=1 dropped",
  },
  {
    name: "connlimit 6, DROP",
    rules: [["-m", "connlimit", "--connlimit-above", "6", "--connlimit-mask", "0", "-j", "DROP"]],
    expected: "limited k=6 dropped",
  },
  {
    name: "connlimit 3, REJECT tcp-reset",
    rules: [
      [
        "-m",
        "connlimit",
        "--connlimit-above",
        "3",
        "--connlimit-mask",
        "0",
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
      ],
    ],
    expected: "limited k=3 refused",
  },
  {
    name: "30 % random SYN loss",
    rules: [["-m", "statistic", "--mode", "random", "--probability", "0.3", "-j", "DROP"]],
    expected: "no-limit, loss",
  },
];

function summarize(j: ProbeResult): string {
  const l = j.limit;
  if (!l) {
    const loss = j.loss.resent + j.loss.unanswered > 0 ? ", loss" : "";
    return `${j.verdict.kind}${loss}`;
  }
  if (l.behaviour === "rate-limited")
    return `limited rate-limited ~${(l.ratePerSecond ?? 0).toFixed(1)}/s`;
  return `limited k=${l.maxInFlight} ${l.behaviour}`;
}

async function probeIn(ns: string): Promise<{ wallS: number; verdict: string }> {
  const started = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      "ip",
      ["netns", "exec", ns, process.execPath, cli, "probe", "--json", "--quiet"],
      {
        env: envWithout("SYNLIMIT_"),
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let text = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      text += d;
    });
    child.once("error", reject);
    child.once("close", () => resolve(text));
  });
  const wallS = (performance.now() - started) / 1000;
  return { wallS, verdict: summarize(JSON.parse(out) as ProbeResult) };
}

const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2
    ? (s[s.length >> 1] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

export async function runNetfilterBench(runs: number): Promise<string> {
  const names = KINDS.map((_, i) => `synlimit-b${process.pid}-${i}`);
  const times: number[][] = KINDS.map(() => []);
  const verdicts: string[][] = KINDS.map(() => []);
  try {
    for (const [i, kind] of KINDS.entries()) {
      const ns = names[i] as string;
      await run("ip", ["netns", "add", ns]);
      await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      for (const rule of kind.rules) {
        await run("ip", [
          "netns",
          "exec",
          ns,
          "iptables",
          "-w",
          "-A",
          "OUTPUT",
          "-o",
          "lo",
          "-p",
          "tcp",
          "--syn",
          ...rule,
        ]);
      }
    }
    for (let round = 0; round < runs; round++) {
      // Rotated: each round starts with a different kind.
      for (let j = 0; j < KINDS.length; j++) {
        const i = (round + j) % KINDS.length;
        const r = await probeIn(names[i] as string);
        times[i]?.push(r.wallS);
        verdicts[i]?.push(r.verdict);
      }
    }
  } finally {
    for (const ns of names) await run("ip", ["netns", "del", ns]).catch(() => {});
  }
  const rows = KINDS.map((k, i) => {
    const t = times[i] ?? [];
    const seen = [...new Set(verdicts[i])].join("; ");
    return `| ${k.name} | ${k.expected} | ${seen} | ${median(t).toFixed(2)} | ${Math.min(...t).toFixed(2)} | ${Math.max(...t).toFixed(2)} |`;
  });
  return [
    `| limiter | expected | verdicts seen (${runs} runs) | time to verdict, median (s) | lowest (s) | highest (s) |`,
    "| --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url;
if (invokedDirectly) {
  const i = process.argv.indexOf("--runs");
  const runs = i > 0 ? Number(process.argv[i + 1]) : 5;
  process.stdout.write(await runNetfilterBench(Number.isInteger(runs) && runs > 0 ? runs : 5));
}

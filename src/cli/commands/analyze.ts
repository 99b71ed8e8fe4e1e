import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import {
  type AnalysisResult,
  analyzeFile,
  defaultAnalyzeOptions,
  toTrace,
} from "../../analyze/analyze.js";
import { usageError } from "../../errors.js";
import { RoleMap } from "../../record/roles.js";
import { formatRecord } from "../../record/trace.js";
import { loadOptional } from "../optional.js";
import { checkOutputFile, checkReportDir } from "../paths.js";

interface Flags {
  json?: boolean;
  trace?: string;
  report?: string;
  role: string[];
  windowMs?: string;
  holdMs?: string;
  giveUpMs?: string;
}

/** Exit codes: a script can branch on the verdict. */
export const analyzeExit = { "no-limit": 0, limit: 3, inconclusive: 2 } as const;

function ms(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(value) || !(Number(value) > 0) || Number(value) > 3_600_000) {
    throw usageError(
      `${name} must be a positive number of milliseconds up to 3600000, got ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

export function renderAnalysis(r: AnalysisResult): string {
  const head =
    r.verdict === "limit"
      ? `verdict: limit ${r.k} — at most ${r.k} outbound connect attempt(s) in flight from ${r.source}, the next SYN leaving as one ends`
      : r.verdict === "no-limit"
        ? `verdict: no-limit — SYNs from ${r.source} left without waiting for other attempts to end`
        : r.evidence[0]?.startsWith("unanswered attempts were followed")
          ? "verdict: inconclusive — the give-up time is only inferred and a shorter deadline shows: pass --give-up-ms"
          : r.sources[0] && r.sources[0].releasedSyns > 0
            ? `verdict: inconclusive — too few attempts to tell a limit from chance (p = ${r.sources[0].pValue.toExponential(1)})`
            : "verdict: inconclusive — no contention in the capture to reveal a limit";
  const s = r.schedule;
  const giveUp = s.giveUpMs === null ? "?" : `${+(s.giveUpMs / 1000).toFixed(3)} s`;
  const schedule = s.giveUpGiven
    ? `${s.from > 0 ? `SYN schedule of unanswered attempts: ${s.synAtMs.map((x) => `${+(x / 1000).toFixed(3)}`).join("/")} s (from ${s.from}), ` : "SYN schedule: none retransmitted, "}give up ${giveUp} (given with --give-up-ms)`
    : s.from > 0
      ? `SYN schedule of unanswered attempts: ${s.synAtMs.map((x) => `${+(x / 1000).toFixed(3)}`).join("/")} s, give up ${giveUp} (inferred from ${s.from})`
      : "SYN schedule: no unanswered attempt retransmitted, none inferred";
  const counts = new Map<string, number>();
  for (const a of r.attempts) counts.set(a.end, (counts.get(a.end) ?? 0) + 1);
  return [
    head,
    ...r.evidence.map((e) => `  - ${e}`),
    schedule,
    `${r.attempts.length} handshake attempts (${[...counts].map(([k, v]) => `${v} ${k}`).join(", ") || "none"}) from ${r.sources.length} source(s); ${r.packets} packets, ${r.duplicatesRemoved} duplicate(s) removed; ${r.format}${r.truncated ? ", truncated" : ""}`,
  ].join("\n");
}

export function registerAnalyze(program: Command): void {
  program
    .command("analyze")
    .description(
      "look for a connect-attempt limiter's fingerprint in a packet capture (tcpdump, Windows pktmon)",
    )
    .argument("<capture>", "pcap or pcapng file")
    .option("--json", "print the result as JSON")
    .option("--trace <file>", "write the attempts as a trace for synlimit simulate")
    .option("--report <dir>", "write the attempt timeline as DIR/index.html")
    .option(
      "--role <port=role>",
      "label attempts in the trace: 389=login (repeatable)",
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option(
      "--window-ms <ms>",
      `how close to another attempt's end a SYN counts as released (default ${defaultAnalyzeOptions.windowMs})`,
    )
    .option(
      "--hold-ms <ms>",
      `how long an attempt must have held the last slot to count (default ${defaultAnalyzeOptions.holdMs})`,
    )
    .option(
      "--give-up-ms <ms>",
      "when unanswered attempts gave up, from the first SYN (default: inferred from the retransmissions)",
    )
    .addHelpText(
      "after",
      `
Exit codes: 0 no-limit, 3 limit, 2 inconclusive or unreadable.

Capture on Linux:   tcpdump -i any -w syn.pcap 'tcp[tcpflags] & (tcp-syn|tcp-rst) != 0'
Capture on Windows: pktmon filter add SYNs -t TCP SYN ; pktmon filter add RSTs -t TCP RST
                    pktmon start --capture --pkt-size 0 -f syn.etl
                    ... reproduce ... ; pktmon stop ; pktmon etl2pcap syn.etl -o syn.pcapng
Then:               synlimit analyze syn.pcapng --report out/ --trace syn.trace
See docs/analyze.md.
`,
    )
    .action(async (capture: string, flags: Flags) => {
      const roles = RoleMap.parse(flags.role);
      const options = {
        windowMs: ms("--window-ms", flags.windowMs, defaultAnalyzeOptions.windowMs),
        holdMs: ms("--hold-ms", flags.holdMs, defaultAnalyzeOptions.holdMs),
        giveUpMs: flags.giveUpMs === undefined ? null : ms("--give-up-ms", flags.giveUpMs, 0),
        roles,
      };
      checkReportDir(flags.report);
      checkOutputFile(flags.trace, "--trace");
      const result = await analyzeFile(capture, options);
      const text = renderAnalysis(result);
      if (flags.trace) {
        try {
          writeFileSync(flags.trace, toTrace(result, roles).map(formatRecord).join(""));
        } catch (e) {
          throw usageError(
            `cannot write the trace to ${flags.trace}: ${(e as NodeJS.ErrnoException).code ?? e}`,
          );
        }
      }
      if (flags.report) {
        const { writeAnalysisReport } = await loadOptional(
          "analyze --report",
          () => import("../../analyze/report.js"),
        );
        const file = await writeAnalysisReport(
          flags.report,
          `synlimit analyze ${capture}`,
          result,
          text,
        );
        process.stderr.write(`synlimit: report written to ${file}\n`);
      }
      if (flags.json) {
        const { attempts, ...rest } = result;
        process.stdout.write(
          `${JSON.stringify({ ...rest, attempts: attempts.length, ends: attempts.map((a) => ({ dest: `${a.h.dst}:${a.h.dstPort}`, src: a.h.src, synAtMs: a.h.synAtMs.map((t) => t - result.captureStartMs), endMs: a.endMs - result.captureStartMs, end: a.end, inferred: a.inferred })) }, null, 2)}\n`,
        );
      } else process.stdout.write(`${text}\n`);
      process.exitCode = analyzeExit[result.verdict];
    });
}

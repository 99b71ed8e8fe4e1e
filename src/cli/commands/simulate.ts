import { availableParallelism } from "node:os";
import type { Command } from "commander";
import { profileNames } from "../../emulate/profiles.js";
import { usageError } from "../../errors.js";
import { RoleMap } from "../../record/roles.js";
import { simulate } from "../../simulate/engine.js";
import {
  checkSweepAxes,
  type LimiterSettings,
  parseMaxInFlight,
  parsePolicy,
  parseProfile,
  parseRate,
  parseScope,
  parseSweep,
  parseTiming,
  parseWorkers,
  parseWorkingSet,
  resolveLimiter,
  sweepPoints,
} from "../../simulate/options.js";
import { renderSummary, renderSweep, toJson } from "../../simulate/render.js";
import { summarize } from "../../simulate/summary.js";
import { runSweep } from "../../simulate/sweep.js";
import { loadWorkload } from "../../simulate/workload.js";
import { loadOptional } from "../optional.js";
import { checkReportDir } from "../paths.js";

interface Flags {
  profile?: string;
  maxInFlight?: string;
  scope?: string;
  policy?: string;
  timing?: string;
  rate?: string;
  workingSet?: string;
  role: string[];
  sweep: string[];
  workers?: string;
  json?: boolean;
  report?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function registerSimulate(program: Command): void {
  program
    .command("simulate")
    .description("replay a trace (synlimit record, synlimit analyze) under a hypothetical limiter")
    .argument("<trace>", "trace file (JSON lines, docs/trace.md)")
    .option("--profile <name>", `limiter profile: ${profileNames.join(", ")} (default incident)`)
    .option("--max-in-flight <n>", 'concurrent attempts per scope key, or "unlimited"')
    .option("--scope <scope>", "process or destination")
    .option("--policy <policy>", "queue, reject or rate")
    .option(
      "--timing <timing>",
      "none, windows, windows-2008, linux, a deadline in ms, or syn:MS,…;giveup:MS (as SYNLIMIT_TIMING): a timeout lasts until the give-up",
    )
    .option("--rate <n>", "rate policy: new destinations per second")
    .option("--working-set <n>", "rate policy: recent destinations that pass freely")
    .option(
      "--role <port=role>",
      "label attempts the trace left without a role (repeatable)",
      collect,
      [],
    )
    .option(
      "--sweep <name=values>",
      "run one simulation per value, e.g. max-in-flight=1..16 (repeatable: every combination)",
      collect,
      [],
    )
    .option("--workers <n>", "worker threads for --sweep (default: one per core)")
    .option("--json", "print the result as JSON")
    .option("--report <dir>", "write an HTML chart and results.json to DIR")
    .addHelpText(
      "after",
      `
Timing: attempts whose outcome is "timeout" last the simulated deadline when
the timing has one (its give-up time: windows and windows-2008: 21 s,
linux: 127 s, syn:…;giveup:MS: MS); the others keep their
recorded duration. An attempt with "after" starts gapMs after that attempt's
simulated end.

Examples:
  synlimit simulate app.trace --profile incident
  synlimit simulate app.trace --profile winxp-sp2 --json
  synlimit simulate app.trace --sweep max-in-flight=1..16 --report sweep/
`,
    )
    .action(async (tracePath: string, flags: Flags) => {
      const settings = settingsOf(flags);
      const roles = RoleMap.parse(flags.role);
      const axes = flags.sweep.map(parseSweep);
      checkSweepAxes(axes, settings);
      const workers =
        flags.workers === undefined ? availableParallelism() : parseWorkers(flags.workers);
      checkReportDir(flags.report);
      resolveLimiter(settings);
      const workload = await loadWorkload(tracePath, roles);
      if (workload.n === 0) throw usageError(`${tracePath} has no attempts`);

      if (axes.length > 0) {
        const points = sweepPoints(axes).map((p) => ({
          labels: p.labels,
          settings: { ...settings, ...p.settings },
        }));
        // Validate every point here: a bad combination is a user error, not a worker crash.
        for (const p of points) resolveLimiter(p.settings);
        const results = await runSweep(workload, points, workers);
        const swept = `${axes.map((a) => a.name).join(" × ")} over ${resolveLimiter(settings).label}`;
        if (flags.report) {
          const { writeSweepReport } = await loadOptional(
            "simulate --report",
            () => import("../../simulate/report.js"),
          );
          const file = await writeSweepReport(
            flags.report,
            `synlimit simulate ${tracePath}`,
            results,
            swept,
          );
          process.stderr.write(`synlimit: report written to ${file}\n`);
        }
        process.stdout.write(
          flags.json ? `${toJson(results)}\n` : `${renderSweep(results, swept)}\n`,
        );
        return;
      }
      const limiter = resolveLimiter(settings);
      const summary = summarize(simulate(workload, limiter.config));
      if (flags.report) {
        const { writeSimulationReport } = await loadOptional(
          "simulate --report",
          () => import("../../simulate/report.js"),
        );
        const file = await writeSimulationReport(
          flags.report,
          `synlimit simulate ${tracePath}`,
          summary,
          limiter.label,
        );
        process.stderr.write(`synlimit: report written to ${file}\n`);
      }
      process.stdout.write(
        flags.json
          ? `${toJson({ limiter: limiter.label, config: limiter.config, ...summary })}\n`
          : `${renderSummary(summary, limiter.label)}\n`,
      );
    });
}

function settingsOf(flags: Flags): LimiterSettings {
  const s: LimiterSettings = {};
  if (flags.profile !== undefined) s.profile = parseProfile(flags.profile);
  if (flags.maxInFlight !== undefined) s.maxInFlight = parseMaxInFlight(flags.maxInFlight);
  if (flags.scope !== undefined) s.scope = parseScope(flags.scope);
  if (flags.policy !== undefined) s.policy = parsePolicy(flags.policy);
  if (flags.timing !== undefined) s.timing = parseTiming(flags.timing);
  if (flags.rate !== undefined) s.rate = parseRate(flags.rate);
  if (flags.workingSet !== undefined) s.workingSet = parseWorkingSet(flags.workingSet);
  return s;
}

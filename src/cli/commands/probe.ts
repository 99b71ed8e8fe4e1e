import { fstatSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { currentEmulation, type Emulation, emulationSummary } from "../../emulate/install.js";
import { type Endpoint, isSynlimitError } from "../../errors.js";
import { describeHostSchedule, readHostSynSchedule } from "../../os/syn-schedule.js";
import { type ProxySpec, parseHostPort, parseProxyUrl } from "../../probe/address.js";
import {
  PROBE_DEFAULT_MAX,
  PROBE_MAX_LIMIT,
  PROBE_MAX_SETTLE_MS,
  probe,
} from "../../probe/probe.js";
import type { ProbeResult } from "../../probe/report.js";
import { formatProbe, ProgressDisplay } from "../render/probe.js";

interface Flags {
  max: number;
  blackhole?: Endpoint;
  live?: Endpoint[];
  via?: ProxySpec;
  settle?: number;
  holders?: boolean;
  measureGiveUp?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** Exit codes: 0 no limit up to --max, 3 limit found, 2 could not test. */
export const probeExit = { "no-limit": 0, limited: 3, "could-not-test": 2 } as const;

const signalExit: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export function registerProbe(program: Command): void {
  program
    .command("probe")
    .description(
      "tell in seconds whether this host (or a proxy) limits concurrent connect attempts: how many, per process or machine-wide, per destination or not, and what happens over the limit",
    )
    .option("--max <n>", "the most attempts to hold pending", count, PROBE_DEFAULT_MAX)
    .option(
      "--blackhole <host:port>",
      "where attempts stay pending (SYNs silently dropped; default: a local tarpit on 127.0.0.2 on Linux, 127.0.0.1 elsewhere)",
      (v: string) => usage(() => parseHostPort(v, "--blackhole"), "--blackhole"),
    )
    .option(
      "--live <host:port>",
      "a target that accepts at once (default: local listeners); repeat it to give new destinations for the rate test",
      (v: string, all: Endpoint[] | undefined) => [
        ...(all ?? []),
        usage(() => parseHostPort(v, "--live"), "--live"),
      ],
    )
    .option(
      "--via <url>",
      "probe through a proxy: socks5://HOST:PORT or http://HOST:PORT",
      (v: string) => usage(() => parseProxyUrl(v)),
    )
    .option(
      "--settle <ms>",
      "how long a connect may take before it counts as waiting, at most 60000 (default: 20× the baseline p99, from 50 ms to 10 s)",
      settle,
    )
    .option(
      "--holders",
      "also list the processes on this host with connect attempts pending (Linux /proc; Windows Get-NetTCPConnection or netstat -ano)",
    )
    .option(
      "--measure-give-up",
      "after the verdict, keep one attempt to the blackhole open until this host gives up on it (minutes: 131 s on a default Linux, 21 s on Windows), and print how long that took; a tarpit with --show-syns then sees the whole SYN schedule",
    )
    .option("--json", "print the result as JSON (schema: docs/probe.md)")
    .option("--quiet", "no progress on stderr")
    .addHelpText(
      "after",
      `
Exit codes: 0 no limit found up to --max, 3 limit found, 2 could not test (the reason is printed),
130 interrupted (every pending attempt is cancelled first).

The probe holds attempts pending against the blackhole and times a fresh connect to the live target
against its baseline; it never picks a non-loopback target by itself.

Examples:
  synlimit probe                                    # this process's host, loopback targets
  synlimit probe --via socks5://127.0.0.1:1080      # an egress proxy on this host
  npx synlimit probe --blackhole ADDRESS:9999      # Windows: no loopback tarpit there; ADDRESS runs
                                                    #   synlimit tarpit --host ADDRESS --port 9999 --allow-non-loopback
  synlimit probe --via http://proxy.internal:3128 --blackhole dead.internal:9 --live web.internal:80
  SYNLIMIT_PROFILE=incident node --import synlimit/register $(which synlimit) probe   # the incident, emulated
`,
    )
    .action(async (flags: Flags) => {
      const abort = new AbortController();
      let caught: NodeJS.Signals | null = null;
      const onSignal = (signal: NodeJS.Signals) => {
        caught ??= signal;
        abort.abort();
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const mode = flags.quiet ? "off" : process.stderr.isTTY ? "tty" : "lines";
      const progress = new ProgressDisplay(process.stderr, mode);
      const startedAt = new Date();
      const hostSchedule = readHostSynSchedule();
      let result: ProbeResult;
      try {
        result = await probe({
          max: flags.max,
          live: flags.live ?? [],
          holders: flags.holders === true,
          measureGiveUp: flags.measureGiveUp === true,
          signal: abort.signal,
          ...(flags.blackhole ? { blackhole: flags.blackhole } : {}),
          ...(flags.via ? { via: flags.via } : {}),
          ...(flags.settle !== undefined ? { settleMs: flags.settle } : {}),
        });
      } catch (error) {
        if (!abort.signal.aborted) throw error;
        progress.stop();
        process.stderr.write("synlimit: probe interrupted; every pending attempt was cancelled\n");
        process.exitCode = signalExit[caught ?? "SIGINT"] ?? 130;
        return;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        progress.stop();
      }
      const hostSynSchedule = await hostSchedule;
      const context = { startedAt, emulation: emulationSummary() };
      const emulatedTiming = emulatedTimingOf(currentEmulation());
      // Progress lines already on the same terminal or file (2>&1): the
      // result does not repeat them.
      const evidenceShown = mode === "lines" && sameFile(1, 2);
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({ ...result, ...context, hostSynSchedule, emulatedTiming })}\n`
          : `${formatProbe(result, context, { evidenceShown })}${describeHostSchedule(hostSynSchedule)}\n${result.giveUp ? `${result.giveUp.text}\n` : ""}${describeEmulatedTiming(emulatedTiming)}${knownReachableWarning(currentEmulation(), result)}`,
      );
      process.exitCode = probeExit[result.verdict.kind];
    });
}

/**
 * Library parse errors become commander's one-line "invalid argument"
 * errors. Commander already names the option and the value, so the
 * library's own "--blackhole must be …, got "X"" is cut to "expected …".
 */
function usage<T>(parse: () => T, option?: string): T {
  try {
    return parse();
  } catch (error) {
    if (!isSynlimitError(error)) throw error;
    let text = error.message;
    if (option) {
      text = text
        .replace(`${option} must be `, "expected ")
        .replace(`${option}: `, "")
        .replace(/, got "[^"]*"$/, "");
    }
    throw new InvalidArgumentError(`${text}.`);
  }
}

function count(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > PROBE_MAX_LIMIT) {
    throw new InvalidArgumentError(`expected an integer from 1 to ${PROBE_MAX_LIMIT}.`);
  }
  return n;
}

function settle(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0) || n > PROBE_MAX_SETTLE_MS) {
    throw new InvalidArgumentError(
      `expected a number of milliseconds above 0, at most ${PROBE_MAX_SETTLE_MS}.`,
    );
  }
  return n;
}

/** Whether two descriptors lead to the same terminal, pipe or file. */
function sameFile(a: number, b: number): boolean {
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.dev === y.dev && x.ino === y.ino && x.rdev === y.rdev;
  } catch {
    return false;
  }
}

/**
 * Under `synlimit/register` this process's attempts end at the emulated
 * timing, not at the host's SYN schedule: a blocked connect waits for that.
 */
function emulatedTimingOf(
  e: Emulation | null,
): { timing: string; giveUpMs: number | null; limited: boolean; timeScale: number } | null {
  if (!e) return null;
  const { timing, maxInFlight, policy } = e.gate.options;
  return {
    // A built-in schedule by its name (windows-2008), a custom one by its spec.
    timing: timing.kind === "fixed" || timing.kind === "schedule" ? timing.spec : timing.kind,
    giveUpMs: e.gate.giveUpAfterMs,
    limited: policy === "rate" || Number.isFinite(maxInFlight),
    timeScale: e.timeScale,
  };
}

function describeEmulatedTiming(t: ReturnType<typeof emulatedTimingOf>): string {
  if (!t) return "";
  const scaled = t.timeScale === 1 ? "" : " (scaled)";
  const what = t.limited
    ? `an emulated limiter (timing ${t.timing})`
    : `emulated ${t.timing === "none" ? "" : `${t.timing} `}timing, no limit`;
  const waits =
    t.giveUpMs === null
      ? "the emulation adds no deadline, so attempts end at the host's own give-up (the line above)"
      : `emulated attempts give up after ${Math.round(t.giveUpMs) / 1000} s${scaled}, so a connect queued behind one dead attempt waits up to that, not the host's time`;
  return `this process runs under ${what}: ${waits}\n`;
}

/**
 * Under an emulated limiter that exempts hosts reached recently (winxp-sp2),
 * a tarpit on the live target's host cannot show it: the baseline reached it.
 */
function knownReachableWarning(e: Emulation | null, result: ProbeResult): string {
  const windowMs = e?.gate.options.knownReachableMs;
  const { blackhole, live } = result.targets;
  // The tarpit's fillers are not emulated, so only a tarpit on the live
  // target's own host (127.0.0.1 where no other loopback address exists) is exempt.
  if (!windowMs || blackhole?.kind !== "tarpit" || blackhole.host !== live?.host) return "";
  return `this emulation does not count hosts reached in the last ${Math.round(windowMs / 60_000)} minutes, and the local tarpit is on ${blackhole.host}, which the baseline reached: such a limiter shows only with --blackhole on a host this process never reached (e.g. synlimit tarpit --host 127.0.0.5 --port 9999, then --blackhole 127.0.0.5:9999)\n`;
}

import type { HoldersReport } from "../os/linux/holders.js";

/** Bumped on any incompatible change to ProbeResult; documented in docs/probe.md. */
export const PROBE_SCHEMA_VERSION = 1;

export type ProbeVerdictKind = "limited" | "no-limit" | "could-not-test";
export type Behaviour = "queued" | "refused" | "rate-limited" | "dropped";
export type LimitScope = "process" | "machine" | "unknown";
/** "unknown": not tested (e.g. a limit found with every connect to one destination). */
export type AppliesTo = "all-destinations" | "each-destination" | "unknown";

export interface LimitFinding {
  /** k: concurrent attempts allowed; null for a pure rate limit. */
  readonly maxInFlight: number | null;
  /** Whether pending attempts to one destination delay connects to another. */
  readonly appliesTo: AppliesTo;
  readonly scope: LimitScope;
  readonly behaviour: Behaviour;
  /** queued: whether waiting connects went in arrival order (null: not observed). */
  readonly fifo: boolean | null;
  /**
   * queued: ms from ending a pending attempt to the waiting connect
   * completing (per destination: to the waiting attempt's SYN, an upper
   * bound set by how often the TCP table was read).
   */
  readonly handoffMs: number | null;
  /** refused: the error a connect over the limit got. */
  readonly errorCode: string | null;
  /** rate-limited: new destinations released per second, and the interval measured. */
  readonly ratePerSecond: number | null;
  readonly intervalMs: number | null;
  /**
   * Whether established connections count against k (seen by holding
   * established connections instead of pending ones); null: not measured,
   * or not a count (a rate).
   */
  readonly countsEstablished: boolean | null;
  /** Over the limit (or the rate), SYNs are dropped: connects get through only on a resend. */
  readonly excessDropped: boolean;
}

export type StepKind =
  | "targets"
  | "baseline"
  | "blackhole"
  | "trial"
  | "release"
  | "helper"
  | "destination"
  | "rate"
  | "established"
  | "drops"
  | "retransmit"
  | "giveup"
  | "note";

/** A connect that completed only on a SYN resend: its first SYN was dropped. */
export interface RetransmittedConnect {
  /** When the connect started, ms since the probe started. */
  readonly atMs: number;
  readonly target: { readonly host: string; readonly port: number };
  /** How long it took. */
  readonly ms: number;
  /** Which resend it completed on (1 = the first). */
  readonly resend: number;
  /** When that resend was due by this host's schedule, ms after the connect started. */
  readonly resentAtMs: number;
}

/** One line of evidence. `held` is how many attempts this process held pending then. */
export interface TimelineEntry {
  readonly atMs: number;
  readonly step: StepKind;
  readonly held: number;
  readonly result: string;
  readonly ms: number | null;
  readonly code?: string;
  readonly text: string;
}

export interface TargetsReport {
  readonly blackhole: {
    readonly host: string;
    readonly port: number;
    readonly kind: "tarpit" | "given";
    /** True when the kernel's TCP table showed the probe's attempt in SYN_SENT. */
    readonly verified: boolean;
    readonly how: string;
  } | null;
  readonly live: {
    readonly host: string;
    readonly port: number;
    readonly kind: "listener" | "given";
  } | null;
  /** Further destinations, each a new one for a rate limiter. */
  readonly destinations: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly via: { readonly protocol: string; readonly host: string; readonly port: number } | null;
}

export interface BaselineReport {
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  readonly p99Ms: number;
}

export interface ProbeResult {
  readonly schema: "synlimit.probe";
  readonly version: typeof PROBE_SCHEMA_VERSION;
  readonly verdict: { readonly kind: ProbeVerdictKind; readonly text: string };
  readonly limit: LimitFinding | null;
  /** could-not-test: why, and how to make it testable. */
  readonly reason: string | null;
  /** The most attempts the probe was allowed to hold pending (--max). */
  readonly max: number;
  readonly settleMs: number | null;
  readonly targets: TargetsReport;
  readonly baseline: BaselineReport | null;
  readonly timeline: readonly TimelineEntry[];
  /** What could not be tested, in words. */
  readonly notes: readonly string[];
  readonly advice: readonly string[];
  readonly holders: HoldersReport | null;
  readonly durationMs: number;
  /** This host's SYN resend schedule, as read. */
  readonly synSchedule: {
    readonly retransmitAtMs: readonly number[];
    readonly giveUpAtMs: number;
    readonly source: string;
  };
  /** Connects that completed only on a SYN resend, and when. */
  readonly retransmitted: readonly RetransmittedConnect[];
  /**
   * Of the connects that completed, how many only on a SYN resend (their
   * first SYN was dropped); and connects that got no answer while a fresh one
   * right after went straight through (lost SYNs, no limiter).
   */
  readonly loss: {
    readonly resent: number;
    readonly completed: number;
    readonly unanswered: number;
  };
  /** Where two explanations fit the evidence equally: both, in words. */
  readonly alternatives: readonly string[];
  /** With measureGiveUp (--measure-give-up): one attempt to the blackhole kept until it ended; null otherwise. */
  readonly giveUp: GiveUpReport | null;
}

/** How long one attempt to the blackhole stayed pending before it ended by itself. */
export interface GiveUpReport {
  readonly target: { readonly host: string; readonly port: number };
  /** "gave-up": ended with ETIMEDOUT (the OS's give-up, or an emulated deadline); "error": another error; "still-pending": not ended within limitMs, cancelled. */
  readonly outcome: "gave-up" | "error" | "connected" | "still-pending";
  readonly measuredMs: number;
  /** When this host's modelled SYN schedule gives up (synSchedule.giveUpAtMs). */
  readonly modelMs: number;
  readonly code: string | null;
  readonly text: string;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
const round = (n: number) => (n >= 10 ? n.toFixed(0) : n.toPrecision(2).replace(/\.?0+$/, ""));

function scopeWords(scope: LimitScope): string {
  if (scope === "machine") return "machine-wide (every process shares it)";
  if (scope === "process") return "per process";
  return "(process or machine-wide: not determined)";
}

/** The one-line verdict the CLI prints first. */
export function limitText(f: LimitFinding): string {
  const scope = scopeWords(f.scope);
  if (f.behaviour === "rate-limited" && f.excessDropped) {
    const rate = f.ratePerSecond === null ? "a few" : `about ${round(f.ratePerSecond)}`;
    return `limit: new connects are rate-limited to ${rate} per second${f.scope === "unknown" ? "" : ` ${scope}`}; SYNs over the rate are dropped, so those connects wait for a SYN resend (1 s or more)`;
  }
  if (f.behaviour === "rate-limited") {
    const rate =
      f.ratePerSecond === null ? "slowly" : `at about ${round(f.ratePerSecond)} per second`;
    return `limit: connects to new destinations are released ${rate} ${scope} (rate-limited); recently used destinations pass freely`;
  }
  const k = f.maxInFlight ?? 0;
  const each = f.appliesTo === "each-destination";
  const what =
    f.countsEstablished === true
      ? `${plural(k, "concurrent connection")} (established ones count, not only pending attempts)`
      : `${plural(k, "concurrent connect attempt")}${each ? " per destination (address:port)" : ""}`;
  if (f.behaviour === "dropped") {
    return `limit: ${what} ${scope}; over the limit SYNs are dropped, so a connect gets through only on a SYN resend after one ends`;
  }
  if (f.behaviour === "refused") {
    return `limit: ${what} ${scope}; over the limit a connect fails at once (${f.errorCode ?? "error"})`;
  }
  const holders = k === 1 ? "a pending attempt delays" : `${k} pending attempts delay`;
  const others = each ? "further connects to the same destination" : "others";
  return `limit: ${what} ${scope}, queued${f.fifo ? " FIFO" : ""}; ${holders} ${others} until ${k === 1 ? "it ends" : "one ends"}`;
}

export function noLimitText(max: number): string {
  return `no limit: with ${plural(max, "connect attempt")} pending, a new connect still went straight through`;
}

/** What to do about what was found. */
export function adviceFor(f: LimitFinding | null): string[] {
  if (!f) {
    return [
      "Nothing here limits connect attempts. If an application on this host still stalls behind a dead peer, probe under its conditions: a limiter may apply per executable or per user (run the probe the same way), or only to traffic through the egress proxy (--via).",
    ];
  }
  const advice: string[] = [];
  if (f.behaviour === "rate-limited" && f.excessDropped) {
    advice.push(
      "New connects over the rate lose their SYN and wait for a resend (1 s or more): reuse connections (keep-alive, pools) and spread new connects over time.",
      "Ask the owner of the rule for the rate and burst, or to exempt your service.",
    );
    return advice;
  }
  if (f.behaviour === "rate-limited") {
    advice.push(
      "Avoid fanning out to many new destinations at once: reuse connections (keep-alive, pools) and spread first contacts over time.",
      "Ask the owner of the throttle for the rate and working-set size, or to exempt your service.",
    );
    return advice;
  }
  if (f.countsEstablished === true) {
    advice.push(
      `Established connections count against this limit too: keep pools, keep-alive and idle connections (of every process it covers) well under ${f.maxInFlight ?? "k"} in total, and close idle ones.`,
    );
  }
  if (f.excessDropped) {
    advice.push(
      "Over the limit the SYN is dropped, so a connect waits for the OS's SYN resend (1 s or more): give connects a deadline, and retry with backoff rather than marking the peer down.",
    );
  }
  const who =
    f.scope === "machine"
      ? "every process on this host"
      : f.appliesTo === "each-destination"
        ? "every new connection to that destination"
        : "every new connection this process makes";
  advice.push(
    `Keep attempts short: give every connect its own deadline of a few seconds (not the OS's 21-127 s), so a dead peer cannot hold a slot that ${who} needs.`,
    "Check a peer is alive before connecting to it (e.g. a UDP echo preflight: synlimit echo), and back off from peers that keep failing.",
    "Reuse connections (pools, keep-alive) so the steady state makes no new attempts.",
  );
  if (f.scope !== "machine" && f.appliesTo === "all-destinations") {
    advice.push(
      "Move background clients (agents, retries to collectors) out of the process that serves users, so their pending attempts do not take its slots.",
    );
  }
  if (f.behaviour === "refused") {
    advice.push(
      `Treat ${f.errorCode ?? "the error"} on connect as possibly local: retry with backoff rather than marking the peer down.`,
    );
  }
  advice.push(
    "Ask the owner of the limiting product to raise or lift the limit (the numbers above are the evidence).",
  );
  return advice;
}

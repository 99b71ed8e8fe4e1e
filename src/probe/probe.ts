import { aborted, formatEndpoint } from "../errors.js";
import { describeProxy, type ProxySpec } from "./address.js";
import { type CrossFinding, crossScope, findCrossLimit } from "./cross.js";
import { type HoldersReport, listHolders } from "./holders.js";
import { normalize, type ProbeOptions } from "./options.js";
import { destinationScope, findDestinationLimit } from "./per-destination.js";
import { findRateLimit, rateScope } from "./rate.js";
import {
  adviceFor,
  type BaselineReport,
  type LimitFinding,
  limitText,
  noLimitText,
  PROBE_SCHEMA_VERSION,
  type ProbeResult,
  type TargetsReport,
} from "./report.js";
import { CannotTest, ms, ProbeSession } from "./session.js";
import { type ProbeTargets, setupTargets, TARGETS_HELP, verifyBlackhole } from "./targets.js";
import { dialerFor } from "./via.js";

const BASELINE_SAMPLES = 5;
/** A loopback connect takes ~0.1 ms; 50 ms is far beyond scheduling noise, and cheap. */
const MIN_SETTLE_MS = 50;
const SETTLE_BASELINE_FACTOR = 20;
const MAX_SETTLE_MS = 10_000;
/** How long the first connect to the live target may take before the probe gives up on it. */
const LIVE_TIMEOUT_MS = 5_000;

/**
 * Tells whether this host (or the proxy it goes through) limits concurrent
 * connect attempts: k, per process or machine-wide, across destinations or
 * per destination, and what happens over the limit. Every attempt it makes
 * is cancelled before it returns or throws. Throws only on bad options or
 * when aborted; "cannot test" is a result.
 */
export async function probe(options: ProbeOptions = {}): Promise<ProbeResult> {
  const o = normalize(options);
  if (o.signal?.aborted) throw aborted("probe", o.signal.reason);
  const started = o.clock.now();
  const holders = o.holders ? await listHolders() : null;
  const s = new ProbeSession(o.clock, dialerFor(o.via, o.clock), o.via, o.signal);
  let targets: ProbeTargets | null = null;
  let baseline: BaselineReport | null = null;
  const result = (
    fields: Pick<ProbeResult, "verdict" | "limit" | "reason">,
    targetsReport: TargetsReport,
  ): ProbeResult => ({
    schema: "synlimit.probe",
    version: PROBE_SCHEMA_VERSION,
    ...fields,
    max: o.max,
    settleMs: baseline ? s.settleMs : null,
    targets: targetsReport,
    baseline,
    timeline: s.timeline,
    notes: s.notes,
    advice: fields.verdict.kind === "could-not-test" ? [] : adviceFor(fields.limit),
    holders,
    durationMs: o.clock.now() - started,
  });
  try {
    try {
      targets = await setupTargets(o);
      s.checkAborted();
      s.blackhole = targets.blackhole;
      s.live = targets.live;
      s.record("targets", "ready", describeTargets(targets, o.via));
      baseline = await measureBaseline(s, o.settleMs);
      const proof = await verifyBlackhole(s, targets.report.blackhole?.kind === "tarpit");
      const report = {
        ...targets.report,
        blackhole: targets.report.blackhole && { ...targets.report.blackhole, ...proof },
      };
      const limit = await findLimit(s, targets, o.max);
      const verdict = limit
        ? { kind: "limited" as const, text: limitText(limit) }
        : { kind: "no-limit" as const, text: noLimitText(o.max) };
      return result({ verdict, limit, reason: null }, report);
    } catch (error) {
      if (!(error instanceof CannotTest) || o.signal?.aborted) throw error;
      return result(
        {
          verdict: { kind: "could-not-test", text: `could not test: ${error.message}` },
          limit: null,
          reason: error.message,
        },
        targets?.report ?? { blackhole: null, live: null, destinations: [], via: null },
      );
    }
  } finally {
    await s.close();
    await targets?.close();
  }
}

/** Across destinations first (the incident), then per destination, then a rate on new ones. */
async function findLimit(
  s: ProbeSession,
  targets: ProbeTargets,
  max: number,
): Promise<LimitFinding | null> {
  const cross = await findCrossLimit(s, max);
  if (cross) return crossFinding(cross, await crossScope(s, cross.k));
  const perDestination = await findDestinationLimit(s);
  if (perDestination) {
    s.warmHelper();
    const scope = await destinationScope(s, perDestination);
    return {
      maxInFlight: perDestination.k,
      appliesTo: "each-destination",
      scope,
      behaviour: perDestination.behaviour,
      fifo: null,
      handoffMs: perDestination.handoffMs,
      errorCode: perDestination.errorCode,
      ratePerSecond: null,
      intervalMs: null,
    };
  }
  const rate = await findRateLimit(s, targets.destinations);
  if (rate) {
    const scope = await rateScope(s, targets.destinations);
    return {
      maxInFlight: null,
      appliesTo: "all-destinations",
      scope,
      behaviour: "rate-limited",
      fifo: null,
      handoffMs: null,
      errorCode: null,
      ratePerSecond: rate.ratePerSecond,
      intervalMs: rate.intervalMs,
    };
  }
  return null;
}

function crossFinding(c: CrossFinding, scope: LimitFinding["scope"]): LimitFinding {
  const rate = c.behaviour === "rate-limited" && c.intervalMs ? 1000 / c.intervalMs : null;
  return {
    maxInFlight: c.k,
    appliesTo: "all-destinations",
    scope,
    behaviour: c.behaviour,
    fifo: c.fifo,
    handoffMs: c.handoffMs,
    errorCode: c.errorCode,
    ratePerSecond: rate,
    intervalMs: c.intervalMs,
  };
}

/**
 * Connects to the live target a few times with nothing held: what "goes
 * straight through" means on this path. The settle window follows from it.
 */
async function measureBaseline(s: ProbeSession, settleMs: number | null): Promise<BaselineReport> {
  s.progress(`baseline: connecting to ${formatEndpoint(s.live)} …`);
  const samples: number[] = [];
  // The first connect also warms up the path (a proxy's first dial, ARP);
  // it is not a sample.
  for (let i = 0; i <= BASELINE_SAMPLES; i++) {
    const d = s.dial(s.live);
    const o = await s.wait(d.done, LIVE_TIMEOUT_MS);
    d.cancel();
    if (o?.kind === "error" && o.stage === "proxy" && s.via) {
      // The first hop failed: nothing is known about the live target yet.
      const reached = o.code === "EPROTO" || o.code === "EACCES";
      throw new CannotTest(
        `the proxy ${describeProxy(s.via)} ${reached ? "answered but could not be used" : "is unreachable"} (${o.message}); check --via`,
      );
    }
    if (o?.kind !== "connected") {
      const why = !o
        ? `no answer within ${LIVE_TIMEOUT_MS} ms`
        : o.kind === "error"
          ? `${o.code}: ${o.message}`
          : o.kind;
      throw new CannotTest(
        `the live target ${formatEndpoint(s.live)} did not accept a connection (${why}); ${TARGETS_HELP}`,
      );
    }
    if (i > 0) samples.push(o.ms);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  const medianMs = sorted[sorted.length >> 1] ?? 0;
  const p99Ms = sorted[Math.ceil(0.99 * sorted.length) - 1] ?? 0;
  s.settleMs =
    settleMs ?? Math.min(MAX_SETTLE_MS, Math.max(MIN_SETTLE_MS, SETTLE_BASELINE_FACTOR * p99Ms));
  s.record(
    "baseline",
    "measured",
    `baseline: ${samples.length} connects to ${formatEndpoint(s.live)}, median ${ms(medianMs)} ms, p99 ${ms(p99Ms)} ms → settle window ${ms(s.settleMs)} ms`,
    { ms: p99Ms },
  );
  return { samplesMs: samples, medianMs, p99Ms };
}

function describeTargets(t: ProbeTargets, via: ProxySpec | null): string {
  const b = t.report.blackhole;
  const l = t.report.live;
  return [
    `blackhole ${formatEndpoint(t.blackhole)}${b?.kind === "tarpit" ? " (local tarpit)" : ""}`,
    `live ${formatEndpoint(t.live)}${l?.kind === "listener" ? " (local listener)" : ""}`,
    ...(t.destinations.length > 0
      ? [`new destinations ${t.destinations.map(formatEndpoint).join(", ")}`]
      : []),
    ...(via ? [`via ${describeProxy(via)}`] : []),
  ].join(", ");
}

export { PROBE_DEFAULT_MAX, PROBE_MAX_LIMIT, type ProbeOptions } from "./options.js";
export type { HoldersReport };

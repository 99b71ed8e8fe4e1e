import { aborted, formatEndpoint } from "../errors.js";
import { type HoldersReport, listHolders } from "../os/linux/holders.js";
import { describeProxy, type ProxySpec } from "./address.js";
import { type CrossFinding, crossScope, findCrossLimit } from "./cross.js";
import { analyzeDrops, type DropFinding } from "./drops.js";
import { type EstablishedFinding, findEstablishedLimit } from "./established.js";
import { measureGiveUp } from "./give-up.js";
import { normalize, type ProbeOptions } from "./options.js";
import { destinationScope, findDestinationLimit } from "./per-destination.js";
import { findRateLimit, rateScope } from "./rate.js";
import {
  adviceFor,
  type BaselineReport,
  type GiveUpReport,
  type LimitFinding,
  limitText,
  noLimitText,
  PROBE_SCHEMA_VERSION,
  type ProbeResult,
  type TargetsReport,
} from "./report.js";
import { CannotTest, ms, ProbeSession } from "./session.js";
import { RETRANSMIT_LATE_MS, readSynSchedule, retransmissionOf } from "./syn-schedule.js";
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
  let giveUp: GiveUpReport | null = null;
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
    synSchedule: s.schedule,
    retransmitted: s.retransmitted,
    loss: { ...s.connects },
    alternatives: s.alternatives,
    giveUp,
  });
  try {
    try {
      s.schedule = await readSynSchedule();
      targets = await setupTargets(o);
      s.checkAborted();
      s.live = targets.live;
      s.record("targets", "ready", describeTargets(targets, o.via));
      const measured = await measureBaseline(s, o.settleMs);
      baseline = measured.report;
      const limit = await findLimit(s, targets, o.max, measured.dropped > 0);
      const verdict = limit
        ? {
            kind: "limited" as const,
            text: `${limitText(limit)}${s.knownReachableAlternative ? "; or known-reachable hosts exempt (as Windows XP SP2), not per destination: see the alternatives" : ""}`,
          }
        : {
            kind: "no-limit" as const,
            text: `${noLimitText(o.max)}${lossText(s, o.max)}`,
          };
      if (o.measureGiveUp) giveUp = await giveUpAfterVerdict(s, targets);
      return result({ verdict, limit, reason: null }, targets.report);
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

/**
 * Dropped SYNs first (a rate limit, or loss), then a limit that counts
 * established connections (before the tarpit exists: its own established
 * connections would use such a limit up), then — with the blackhole —
 * pending attempts across destinations (the incident), per destination,
 * and a rate on new destinations.
 */
async function findLimit(
  s: ProbeSession,
  targets: ProbeTargets,
  max: number,
  baselineDrops: boolean,
): Promise<LimitFinding | null> {
  if (baselineDrops) {
    const drops = await analyzeDrops(s);
    const found = dropFinding(s, drops);
    if (found) return found;
  }
  let established = await findEstablishedLimit(s, max);
  // SYNs dropped while holding established connections that all went
  // through: loss, or a rate limit. Told apart now, with nothing held and no
  // tarpit yet — later drops (with the tarpit's connections and held
  // attempts) could be a limit above --max as well.
  const droppedSince = !baselineDrops && s.connects.resent + s.connects.unanswered > 0;
  if (established === "not-count" || (established === null && droppedSince)) {
    const found = dropFinding(s, await analyzeDrops(s));
    if (found) return found;
    // Loss: hold them again, now with more tries per connect.
    if (s.lossSeen && established === "not-count") established = await findEstablishedLimit(s, max);
  }
  if (established && established !== "not-count") {
    return establishedFinding(s, established, targets);
  }
  s.blackhole = await targets.startBlackhole();
  s.blackholeIsTarpit = targets.report.blackhole?.kind === "tarpit";
  if (targets.report.blackhole?.kind === "tarpit") {
    s.record(
      "targets",
      "blackhole",
      `blackhole ${formatEndpoint(s.blackhole)} (local tarpit), started now: no limit on established connections was found up to --max`,
    );
  }
  const proof = await verifyBlackhole(s, targets.report.blackhole?.kind === "tarpit");
  targets.report = {
    ...targets.report,
    blackhole: targets.report.blackhole && { ...targets.report.blackhole, ...proof },
  };
  // Established connections did not count (every one up to max went
  // through): whatever is found below counts pending attempts only.
  const pendingOnly = {
    countsEstablished: established === null ? false : null,
    excessDropped: false,
  };
  const cross = await findCrossLimit(s, max);
  if (cross) return { ...crossFinding(cross, await crossScope(s, cross.k)), ...pendingOnly };
  const perDestination = await findDestinationLimit(s);
  if (perDestination) {
    s.warmHelper();
    const scope = await destinationScope(s, perDestination);
    noteKnownReachable(s);
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
      ...pendingOnly,
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
      // A rate on new destinations is not a count; over it connects wait, no SYN is dropped.
      countsEstablished: null,
      excessDropped: false,
    };
  }
  return null;
}

/**
 * The verdict stands whatever happens here: a blackhole that cannot be
 * started now (a limit on established connections is found before the
 * tarpit exists) costs the measurement, noted, not the verdict.
 */
async function giveUpAfterVerdict(
  s: ProbeSession,
  targets: ProbeTargets,
): Promise<GiveUpReport | null> {
  try {
    if (s.blackhole.port === 0) {
      s.blackhole = await targets.startBlackhole();
      s.blackholeIsTarpit = targets.report.blackhole?.kind === "tarpit";
    }
    return await measureGiveUp(s);
  } catch (error) {
    if (!(error instanceof CannotTest)) throw error;
    s.notes.push(`the give-up was not measured: ${error.message}`);
    return null;
  }
}

/**
 * Attempts to the blackhole's host were held back while the live target's
 * host — reached by the baseline — went through: a limit per destination,
 * or one that counts every destination but exempts hosts reached recently
 * (Windows XP SP2). Both fit; the probe has no never-reached live host to
 * tell them apart.
 */
function noteKnownReachable(s: ProbeSession): void {
  if (hostOf(s.blackhole) === hostOf(s.live)) return;
  s.knownReachableAlternative = true;
  s.alternatives.push(
    `a limit per destination (address:port): attempts to ${formatEndpoint(s.blackhole)} wait for each other only`,
    `known-reachable hosts exempt (as Windows XP SP2): a limit on attempts to every destination that does not count hosts this host reached recently — the baseline reached ${s.live.host}, so connects to it were not counted; a live target on a host never reached before would tell them apart`,
  );
}

/** An address as a limiter keyed by host would see it (IPv4-mapped written plain). */
const hostOf = (e: { host: string }) => e.host.replace(/^::ffff:/i, "").toLowerCase();

/** A SYN rate limit becomes the finding; loss is noted and the search goes on. */
function dropFinding(s: ProbeSession, d: DropFinding): LimitFinding | null {
  if (d.kind === "all-dropped") {
    s.alternatives.push(
      "a limit on connections, used up by connections other processes on this host hold",
      `something (a firewall rule, the target going away) dropping every SYN to ${formatEndpoint(s.live)}`,
    );
    throw new CannotTest(
      `every SYN to the live target ${formatEndpoint(s.live)} was dropped, resends too, after it had accepted connections: either a limit on connections is used up by connections this probe does not hold (other processes on this host), or something started dropping all SYNs to it; the probe cannot tell these apart`,
    );
  }
  if (d.kind === "loss") {
    if (s.lossSeen) return null;
    s.lossSeen = true;
    s.notes.push(
      `SYNs are being lost (${d.dropped} of ${d.sent} first SYNs in two bursts got no answer, scattered): each connect that lost one waited for a resend (${s.schedule.retransmitAtMs.slice(0, 3).join(", ")} ms …); a count limit is still searched for below`,
    );
    return null;
  }
  if (d.kind !== "rate") return null;
  s.notes.push(
    "per process or machine-wide: not tested for a SYN rate limit (a second process's connects would draw on the same budget as the probe's)",
    "per destination or across destinations: not tested (every connect went to the live target)",
  );
  return {
    maxInFlight: null,
    // Every connect went to the live target: whether other destinations share the budget is not tested.
    appliesTo: "unknown",
    scope: "unknown",
    behaviour: "rate-limited",
    fifo: null,
    handoffMs: null,
    errorCode: null,
    ratePerSecond: d.ratePerSecond,
    intervalMs: d.ratePerSecond ? 1000 / d.ratePerSecond : null,
    countsEstablished: null,
    excessDropped: true,
  };
}

function establishedFinding(
  s: ProbeSession,
  e: EstablishedFinding,
  targets: ProbeTargets,
): LimitFinding {
  s.notes.push(
    `the limit counts established connections, so k is how many the probe could open: connections other processes${e.scope === "process" ? "" : " on this host"} hold count against it too`,
    `measured before starting a local tarpit: a tarpit holds ${targets.report.blackhole?.kind === "given" ? "no" : "established"} connections of its own (its full accept queue), which this limit would count and which could use it up`,
    "per destination or across destinations: not tested (the held connections and the waiting connect go to the same live target)",
  );
  return {
    maxInFlight: e.k,
    appliesTo: "unknown",
    scope: e.scope,
    behaviour: e.behaviour,
    fifo: null,
    handoffMs: e.handoffMs,
    errorCode: e.errorCode,
    ratePerSecond: null,
    intervalMs: null,
    countsEstablished: true,
    excessDropped: e.behaviour === "dropped",
  };
}

/**
 * Dropped SYNs beside a no-limit verdict. "Random loss" only when two bursts
 * with nothing held showed it; otherwise the drops came while the probe held
 * attempts and its tarpit's connections, which a limit above --max would
 * drop as well.
 */
function lossText(s: ProbeSession, max: number): string {
  const c = s.connects;
  if (c.resent + c.unanswered === 0) return "";
  const counts = `${c.resent} of ${plural(c.completed, "connect")} went through only on a SYN resend, and ${c.unanswered} more got no answer while a fresh connect right after went straight through`;
  if (s.lossSeen) return `; but SYNs were lost (random loss, not a limit): ${counts}`;
  return `; some SYNs were dropped (${counts}), while the probe held attempts and its tarpit's connections: a limit above --max ${max} (try a larger --max) or loss, not told apart`;
}

function crossFinding(
  c: CrossFinding,
  scope: LimitFinding["scope"],
): Omit<LimitFinding, "countsEstablished" | "excessDropped"> {
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
const BASELINE_SPACING_MS = 12;
/** How often a refused baseline connect is tried again before the live target is blamed. */
const REFUSED_RETRIES = 3;

/**
 * How long a baseline connect may go unanswered before a fresh one is tried
 * (doubled each time one is abandoned, up to the first SYN resend): a lost
 * SYN then costs a fraction of a second, not the OS's 1-s resend, and a slow
 * path (a distant proxy) still gets the time it needs.
 */
const BASELINE_NO_ANSWER_MS = 250;
/**
 * With SYNs seen dropped, how long after its first sample the baseline stops
 * collecting samples. Counted from the first sample, not the warm-up: until a
 * sample has set the no-answer window, a lost SYN may still cost the warm-up's
 * doubled window (up to the first resend), which alone could use the budget.
 */
const BASELINE_DROPS_BUDGET_MS = 1_000;

async function baselineConnect(s: ProbeSession, withinMs: number) {
  const d = s.dial(s.live);
  const o = await s.wait(d.done, withinMs);
  d.cancel();
  return o;
}

async function measureBaseline(
  s: ProbeSession,
  settleMs: number | null,
): Promise<{ report: BaselineReport; dropped: number }> {
  s.progress(`baseline: connecting to ${formatEndpoint(s.live)} …`);
  const samples: number[] = [];
  let resent = 0;
  let abandoned = 0;
  let warm = false;
  const firstResendMs = (s.schedule.retransmitAtMs[0] ?? 1_000) + RETRANSMIT_LATE_MS;
  let noAnswerMs = Math.min(BASELINE_NO_ANSWER_MS, firstResendMs);
  const startedAt = s.clock.now();
  // The first connect also warms up the path (a proxy's first dial, ARP);
  // it is not a sample. A connect that lands on the SYN resend schedule had
  // its SYN dropped, and one without an answer is abandoned for a fresh one:
  // evidence for a limiter or loss (the drop analysis follows), not samples
  // of how long a connect takes.
  let slowestMs = 0;
  let firstSampleAt = 0;
  while (samples.length < BASELINE_SAMPLES) {
    const now = s.clock.now();
    if (now - startedAt >= LIVE_TIMEOUT_MS && samples.length > 0) break;
    // A limiter that drops most SYNs (a rate limit) would stretch the
    // baseline for seconds; the drop analysis that follows needs no more.
    // Random loss costs a settle window per lost SYN and is done well before.
    const dropped = resent + abandoned > 0;
    if (dropped && samples.length > 0 && now - firstSampleAt >= BASELINE_DROPS_BUDGET_MS) break;
    // Spaced a little: netfilter's connlimit collects closed connections at
    // most once per jiffy (up to 10 ms) and would count the previous sample.
    if (warm) await s.wait(new Promise<never>(() => {}), BASELINE_SPACING_MS);
    let o = await baselineConnect(s, noAnswerMs);
    // Refused at once: a limiter that rejects over a count may still count
    // connections closed a moment ago; a target that refuses does so every time.
    for (
      let retry = 0;
      o?.kind === "error" && o.stage === "target" && retry < REFUSED_RETRIES;
      retry++
    ) {
      await s.wait(new Promise<never>(() => {}), MIN_SETTLE_MS);
      o = await baselineConnect(s, noAnswerMs);
    }
    if (o?.kind === "error" && o.stage === "proxy" && s.via) {
      // The first hop failed: nothing is known about the live target yet.
      const reached = o.code === "EPROTO" || o.code === "EACCES";
      throw new CannotTest(
        `the proxy ${describeProxy(s.via)} ${reached ? "answered but could not be used" : "is unreachable"} (${o.message}); check --via`,
      );
    }
    if (!o && s.clock.now() - startedAt < LIVE_TIMEOUT_MS) {
      abandoned++;
      // Until one answers, the path may just be slow; after that, its time is known.
      if (!warm) noAnswerMs = Math.min(2 * noAnswerMs, firstResendMs);
      continue;
    }
    if (!o && warm) {
      // It answered before: SYNs are being dropped, which the drop analysis takes on.
      abandoned++;
      break;
    }
    if (!o) {
      s.alternatives.push(
        `${formatEndpoint(s.live)} is down or something drops every SYN to it (a firewall rule)`,
        "a limit on connections, already used up by connections other processes on this host hold (the probe's own tarpit is not started yet)",
      );
    }
    if (o?.kind !== "connected") {
      const why = !o
        ? `no answer within ${LIVE_TIMEOUT_MS} ms from ${plural(abandoned + 1, "fresh connect")}, SYN resends included: it is down, or something drops SYNs to it (a firewall, or a limit on connections already used up by other processes)`
        : o.kind === "error"
          ? `${o.code}: ${o.message}`
          : o.kind;
      throw new CannotTest(
        `the live target ${formatEndpoint(s.live)} did not accept a connection (${why}); ${TARGETS_HELP}`,
      );
    }
    if ((retransmissionOf(s.schedule, o.ms) ?? 0) > 0) resent++;
    else if (warm) {
      if (samples.length === 0) firstSampleAt = s.clock.now();
      samples.push(o.ms);
      // A sample tells how long this path takes (the warm-up does not: a
      // first dial is slow): a lost SYN then costs what a trial's settle
      // window would, not more.
      slowestMs = Math.max(slowestMs, o.ms);
      noAnswerMs = Math.min(
        firstResendMs,
        Math.max(MIN_SETTLE_MS, SETTLE_BASELINE_FACTOR * slowestMs),
      );
    }
    warm = true;
  }
  // Each abandoned connect got no answer while a later fresh one went through.
  s.connects.unanswered += abandoned;
  const sorted = [...samples].sort((a, b) => a - b);
  const medianMs = sorted[sorted.length >> 1] ?? 0;
  const p99Ms = sorted[Math.ceil(0.99 * sorted.length) - 1] ?? 0;
  s.settleMs =
    settleMs ?? Math.min(MAX_SETTLE_MS, Math.max(MIN_SETTLE_MS, SETTLE_BASELINE_FACTOR * p99Ms));
  const drops = [
    ...(resent > 0 ? [`${resent} more went through only on a SYN resend`] : []),
    ...(abandoned > 0
      ? [
          `${plural(abandoned, "connect")} got no answer within ${ms(Math.min(BASELINE_NO_ANSWER_MS, noAnswerMs))} ms or more and ${abandoned === 1 ? "was" : "were"} replaced by a fresh one`,
        ]
      : []),
  ];
  s.record(
    "baseline",
    "measured",
    `baseline: ${plural(samples.length, "connect")} to ${formatEndpoint(s.live)}, median ${ms(medianMs)} ms, p99 ${ms(p99Ms)} ms → settle window ${ms(s.settleMs)} ms${drops.length > 0 ? ` (${drops.join("; ")}: not samples, evidence of dropped SYNs)` : ""}`,
    { ms: p99Ms },
  );
  return { report: { samplesMs: samples, medianMs, p99Ms }, dropped: resent + abandoned };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

function describeTargets(t: ProbeTargets, via: ProxySpec | null): string {
  const b = t.report.blackhole;
  const l = t.report.live;
  return [
    b ? `blackhole ${formatEndpoint(b)}` : "blackhole: a local tarpit, started when needed",
    `live ${formatEndpoint(t.live)}${l?.kind === "listener" ? " (local listener)" : ""}`,
    ...(t.destinations.length > 0
      ? [`new destinations ${t.destinations.map(formatEndpoint).join(", ")}`]
      : []),
    ...(via ? [`via ${describeProxy(via)}`] : []),
  ].join(", ");
}

export {
  PROBE_DEFAULT_MAX,
  PROBE_MAX_LIMIT,
  PROBE_MAX_SETTLE_MS,
  type ProbeOptions,
} from "./options.js";
export type { HoldersReport };

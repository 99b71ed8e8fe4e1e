import { formatEndpoint } from "../errors.js";
import type { Handshake } from "./handshakes.js";

export interface FingerprintOptions {
  /** "Within a few ms": how close a new SYN must leave to another attempt's end. */
  windowMs: number;
  /** An end counts as freeing a contended slot only after the attempt held it this long. */
  holdMs: number;
  /** Give-up time after the first SYN for unanswered attempts; null: infer from the retransmissions. */
  giveUpMs: number | null;
}

export type AttemptEnd = "connected" | "refused" | "cancelled" | "gave-up" | "open";

/** A handshake with its end, observed or inferred. */
export interface Attempt {
  h: Handshake;
  startMs: number;
  endMs: number;
  end: AttemptEnd;
  /** True when no packet shows the end: it comes from the SYN schedule. */
  inferred: boolean;
  /** How far off an inferred end may be: retransmission timers drift a few % (Linux: ~25 ms a second). */
  toleranceMs: number;
}

/** Timer drift allowed on an inferred give-up, as a share of the last retransmission interval. */
export const inferredEndTolerance = 0.05;

export interface Schedule {
  /** SYN times after the first, ms (e.g. 0, 3000, 9000). */
  synAtMs: number[];
  giveUpMs: number | null;
  /** True when giveUpMs is the user's --give-up-ms, not inferred. */
  giveUpGiven: boolean;
  /** Unanswered attempts the schedule was read from. */
  from: number;
}

export interface SourceVerdict {
  source: string;
  verdict: "limit" | "no-limit" | "inconclusive";
  /** The limit when verdict is "limit", else the most seen pending at once. */
  k: number;
  maxPending: number;
  attempts: number;
  /** Ends of attempts that held the last slot ≥ holdMs, and how many a new SYN followed. */
  contendedEnds: number;
  releasedSyns: number;
  expectedByChance: number;
  pValue: number;
  nearEndSyns: number;
  synsAfterContention: number;
  evidence: string[];
}

const round = (ms: number) => Math.round(ms);
const seconds = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

/** The retransmission schedule of unanswered attempts: median offsets of the most common SYN count. */
export function inferSchedule(handshakes: readonly Handshake[]): Schedule {
  const unanswered = handshakes.filter((h) => h.answer === null && h.synAtMs.length >= 2);
  const byCount = new Map<number, Handshake[]>();
  for (const h of unanswered) {
    const group = byCount.get(h.synAtMs.length);
    if (group) group.push(h);
    else byCount.set(h.synAtMs.length, [h]);
  }
  let best: Handshake[] = [];
  for (const group of byCount.values())
    if (
      group.length > best.length ||
      (group.length === best.length &&
        (group[0]?.synAtMs.length ?? 0) > (best[0]?.synAtMs.length ?? 0))
    )
      best = group;
  if (best.length === 0) return { synAtMs: [0], giveUpMs: null, giveUpGiven: false, from: 0 };
  const count = (best[0] as Handshake).synAtMs.length;
  const synAtMs: number[] = [];
  for (let i = 0; i < count; i++) {
    const offsets = best
      .map((h) => (h.synAtMs[i] as number) - (h.synAtMs[0] as number))
      .sort((a, b) => a - b);
    synAtMs.push(offsets[Math.floor(offsets.length / 2)] as number);
  }
  return { synAtMs, giveUpMs: nextAfter(synAtMs), giveUpGiven: false, from: best.length };
}

/**
 * When each attempt ended. Giving up sends no packet, so an unanswered
 * attempt ends where its own schedule says: TCP doubles the wait after every
 * SYN and gives up when the next one would be due (Windows 0/3/9 → 21 s,
 * Linux 0/1/3/…/63 → 127 s), i.e. last SYN + 2 × the last interval.
 */
export function endAttempts(
  handshakes: readonly Handshake[],
  schedule: Schedule,
  captureEndMs: number,
  options: FingerprintOptions,
): Attempt[] {
  const firstInterval = (schedule.synAtMs[1] ?? 1000) - (schedule.synAtMs[0] ?? 0);
  return handshakes.map((h) => {
    const startMs = h.synAtMs[0] as number;
    if (h.answer !== null && h.answeredAtMs !== null) {
      const end: AttemptEnd =
        h.answer === "syn-ack" ? "connected" : h.answer === "rst" ? "refused" : "cancelled";
      return { h, startMs, endMs: h.answeredAtMs, end, inferred: false, toleranceMs: 0 };
    }
    const n = h.synAtMs.length;
    const last = h.synAtMs[n - 1] as number;
    let endMs: number;
    if (options.giveUpMs !== null) endMs = startMs + options.giveUpMs;
    else if (n === schedule.synAtMs.length && schedule.giveUpMs !== null) {
      // The schedule's medians: one late retransmission timer does not move the estimate.
      endMs = last + schedule.giveUpMs - (schedule.synAtMs[schedule.synAtMs.length - 1] as number);
    } else if (n >= 2) endMs = nextAfter(h.synAtMs);
    else endMs = startMs + firstInterval;
    const toleranceMs = options.giveUpMs !== null ? 0 : inferredEndTolerance * (endMs - last);
    if (endMs > captureEndMs)
      return { h, startMs, endMs: captureEndMs, end: "open" as const, inferred: true, toleranceMs };
    return { h, startMs, endMs, end: "gave-up" as const, inferred: true, toleranceMs };
  });
}

/**
 * When the next SYN would have been due, which is when TCP gives up: the
 * wait doubles after every SYN (Windows 0/3/9 → 21 s; Linux 1, 2, 4 … s),
 * except that a Linux kernel with tcp_syn_linear_timeouts first retries at a constant 1 s
 * (tcp_syn_linear_timeouts): equal last intervals mean the next is equal too.
 */
export function nextAfter(synAtMs: readonly number[]): number {
  const n = synAtMs.length;
  const last = synAtMs[n - 1] as number;
  const interval = last - (synAtMs[n - 2] as number);
  const before = n >= 3 ? (synAtMs[n - 2] as number) - (synAtMs[n - 3] as number) : Number.NaN;
  const linear = Math.abs(interval - before) <= 0.1 * interval;
  return last + (linear ? interval : 2 * interval);
}

/** log of the binomial upper tail P(X ≥ r), X ~ Bin(n, p). */
function binomialTail(n: number, p: number, r: number): number {
  if (r <= 0) return 1;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  let logC = 0;
  for (let i = 1; i <= r; i++) logC += Math.log((n - i + 1) / i);
  let term = Math.exp(logC + r * Math.log(p) + (n - r) * Math.log(1 - p));
  let sum = term;
  for (let x = r; x < n; x++) {
    term *= ((n - x) / (x + 1)) * (p / (1 - p));
    sum += term;
    if (term < sum * 1e-15) break;
  }
  return Math.min(1, sum);
}

/**
 * The limiter's fingerprint for one source: pending handshakes never exceed
 * some k, and when an attempt that held the last slot ends, a new SYN leaves
 * within a few ms far more often than arrivals independent of it would.
 */
export function fingerprint(
  source: string,
  attempts: readonly Attempt[],
  captureStartMs: number,
  options: FingerprintOptions,
): SourceVerdict {
  const { windowMs, holdMs } = options;
  const n = attempts.length;
  // Pending count over time. An inferred end may be off by a few ms, so it
  // counts as ending a window early: a SYN released by it is not an excess.
  const events: Array<{ t: number; d: number; i: number }> = [];
  attempts.forEach((a, i) => {
    events.push({ t: a.startMs, d: 1, i });
    if (a.end !== "open")
      events.push({
        t: Math.max(a.startMs, a.inferred ? a.endMs - windowMs - a.toleranceMs : a.endMs),
        d: -1,
        i,
      });
  });
  events.sort((x, y) => x.t - y.t || x.d - y.d);
  let count = 0;
  let maxPending = 0;
  let contentionStart = Number.POSITIVE_INFINITY;
  const countBeforeEnd = new Int32Array(n);
  for (const e of events) {
    if (e.d < 0) countBeforeEnd[e.i] = count;
    count += e.d;
    if (count > maxPending) {
      maxPending = count;
      contentionStart = e.t;
    }
  }
  if (contentionStart === Number.POSITIVE_INFINITY) contentionStart = 0;
  const starts = attempts.map((a) => a.startMs);
  // The first SYN in [from, to], other than attempt `self`'s; -1 if none.
  const synIn = (from: number, to: number, self: number): number => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((starts[mid] as number) < from) lo = mid + 1;
      else hi = mid;
    }
    for (let j = lo; j < n && (starts[j] as number) <= to; j++) if (j !== self) return j;
    return -1;
  };
  const windowOf = (a: Attempt): [number, number] =>
    a.inferred ? [a.endMs - windowMs, a.endMs + windowMs] : [a.endMs, a.endMs + windowMs];

  const spanMs = Math.max(1, Math.max(...attempts.map((a) => a.endMs)) - (starts[0] ?? 0));
  const synRatePerMs = n / spanMs;
  let contendedEnds = 0;
  let released = 0;
  let expected = 0;
  let pSum = 0;
  let example: { a: Attempt; next: Attempt } | null = null;
  // Ends that freed a slot of a full set: the count was at its peak just
  // before, or the end came within the window of such an end (several
  // attempts giving up together free several slots).
  const byEnd = attempts.map((_a, i) => i).filter((i) => (attempts[i] as Attempt).end !== "open");
  byEnd.sort((x, y) => (attempts[x] as Attempt).endMs - (attempts[y] as Attempt).endMs);
  const used = new Uint8Array(n);
  let groupUntil = Number.NEGATIVE_INFINITY;
  for (const i of byEnd) {
    const a = attempts[i] as Attempt;
    const atPeak = countBeforeEnd[i] === maxPending;
    if (!atPeak && a.endMs > groupUntil) continue;
    groupUntil = a.endMs + windowMs;
    if (a.endMs - a.startMs < holdMs) continue;
    contendedEnds++;
    const [from, to] = windowOf(a);
    const p = 1 - Math.exp(-synRatePerMs * (to - from));
    expected += p;
    pSum += p;
    // One new SYN answers one end: the first not yet matched.
    let j = synIn(from, to, i);
    while (j >= 0 && (used[j] || j === i))
      j = j + 1 < n && (starts[j + 1] as number) <= to ? j + 1 : -1;
    if (j >= 0) {
      used[j] = 1;
      released++;
      const next = attempts[j] as Attempt;
      // The field report's kind of example: a dead attempt giving up, preferably.
      if (!example || (a.end === "gave-up" && example.a.end !== "gave-up")) example = { a, next };
    }
  }
  const pValue = binomialTail(contendedEnds, contendedEnds ? pSum / contendedEnds : 0, released);

  // Of the SYNs after contention began, how many left near another attempt's end.
  const ends = attempts
    .filter((a) => a.end !== "open")
    .map(windowOf)
    .sort((x, y) => x[0] - y[0]);
  let nearEnd = 0;
  let after = 0;
  let e = 0;
  let reach = Number.NEGATIVE_INFINITY;
  attempts.forEach((a) => {
    if (a.startMs < contentionStart) return;
    after++;
    // The furthest-reaching window among those opened by now.
    while (e < ends.length && (ends[e] as [number, number])[0] <= a.startMs)
      reach = Math.max(reach, (ends[e++] as [number, number])[1]);
    if (reach >= a.startMs) nearEnd++;
  });

  const limit = released >= 2 && released >= 0.5 * contendedEnds && pValue < 1e-3;
  const verdict = limit ? "limit" : maxPending >= 2 ? "no-limit" : "inconclusive";
  const evidence: string[] = [];
  const rel = (ms: number) => seconds(ms - captureStartMs);
  const pendingText =
    maxPending === 1
      ? "never more than one pending"
      : `never more than ${maxPending} pending at once`;
  if (limit && example) {
    const { a, next } = example as { a: Attempt; next: Attempt };
    const gap = round(next.startMs - a.endMs);
    const how =
      a.end === "gave-up"
        ? options.giveUpMs !== null
          ? `gave up (--give-up-ms ${options.giveUpMs} after its first SYN)`
          : "gave up (inferred from its SYN schedule)"
        : a.end === "connected"
          ? "was answered"
          : a.end === "refused"
            ? "was refused"
            : "was abandoned";
    evidence.push(
      `the SYN to ${formatEndpoint({ host: next.h.dst, port: next.h.dstPort })} at ${rel(next.startMs)} left ${Math.abs(gap)} ms ${gap >= 0 ? "after" : "before"} the pending attempt to ${formatEndpoint({ host: a.h.dst, port: a.h.dstPort })} ${how} at ${rel(a.endMs)}`,
    );
  }
  if (after > 0)
    evidence.push(
      `${nearEnd} of ${after} new SYNs left within ${windowMs} ms of another attempt's end`,
    );
  evidence.push(
    `${released} of ${contendedEnds} attempts that held the last slot for ≥ ${holdMs} ms were followed within ${windowMs} ms by a new SYN (an inferred end ± ${inferredEndTolerance * 100} % of its last retransmission interval; about ${expected.toFixed(1)} by chance; p = ${pValue.toExponential(1)})`,
  );
  evidence.push(`${pendingText} from ${source} (${n} attempts)`);
  if (verdict === "limit" && maxPending === 1) {
    evidence.push(
      "caveat: a program that connects strictly one at a time looks the same; the host must have had concurrent work for this to be a limit",
    );
  }
  if (verdict === "inconclusive") {
    evidence.push(
      released > 0
        ? `too few attempts to tell: ${released} of ${contendedEnds} followed by a new SYN (p = ${pValue.toExponential(1)}); a limit needs at least 2, most of them, and p < 1e-3 — capture longer or with more concurrent work`
        : "no contention: never more than one handshake pending and none waited for another to end, so a limit could not show",
    );
  }
  return {
    source,
    verdict,
    k: maxPending,
    maxPending,
    attempts: n,
    contendedEnds,
    releasedSyns: released,
    expectedByChance: expected,
    pValue,
    nearEndSyns: nearEnd,
    synsAfterContention: after,
    evidence,
  };
}

/**
 * Evidence of a deadline shorter than the inferred give-up (an application
 * timeout, an emulated limiter): unanswered attempts whose last SYN is
 * followed by silence and then a new SYN, each a different one, at one
 * constant offset from their first SYN before their inferred end. Returns
 * that offset (ms), or null. An unlimited burst does not match: its dead
 * attempts start together, so distinct next SYNs lie at spread offsets.
 */
export function deadlineHint(attempts: readonly Attempt[], windowMs: number): number | null {
  const starts = attempts.map((a) => a.startMs);
  const used = new Set<number>();
  const offsets: number[] = [];
  const dead = attempts.filter((a) => a.inferred && a.end === "gave-up");
  for (const a of dead) {
    const last = a.h.synAtMs[a.h.synAtMs.length - 1] as number;
    const j = starts.findIndex(
      (t, i) =>
        t > last &&
        t < a.endMs - windowMs &&
        !used.has(i) &&
        (attempts[i] as Attempt).h.dst + (attempts[i] as Attempt).h.dstPort !==
          a.h.dst + a.h.dstPort,
    );
    if (j < 0) continue;
    used.add(j);
    offsets.push((starts[j] as number) - a.startMs);
  }
  if (offsets.length < 3) return null;
  offsets.sort((x, y) => x - y);
  const median = offsets[Math.floor(offsets.length / 2)] as number;
  const near = offsets.filter((o) => Math.abs(o - median) <= windowMs + 0.01 * median).length;
  return near >= 3 && near >= 0.5 * dead.length ? median : null;
}

import { outcomes } from "../record/trace.js";
import { FATE_GAVE_UP, FATE_REJECTED, type SimRun } from "./engine.js";
import { selectKth } from "./select.js";

export interface WaitStats {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface RoleSummary extends WaitStats {
  /** Attempts that did not connect (recorded failures, rejections, give-ups while waiting). */
  failures: number;
}

export interface QueueTimeline {
  startMs: number;
  bucketMs: number;
  /** Longest queue in each bucket. */
  max: number[];
  /** Time-averaged queue length in each bucket. */
  mean: number[];
}

export interface SimSummary {
  attempts: number;
  spanMs: number;
  waits: WaitStats;
  byRole: Record<string, RoleSummary>;
  occupancy: {
    /** Time-averaged attempts in flight over the run. */
    meanInFlight: number;
    maxInFlight: number;
    /** Share of the run with every slot busy (process scope with a finite limit), else null. */
    saturatedFraction: number | null;
  };
  queue: { meanLength: number; maxLength: number; timeline: QueueTimeline };
  /** Final outcome counts: the recorded ones, plus `rejected` and `gaveUp` (cancelled while waiting). */
  outcomes: Record<string, number>;
  failures: number;
  events: number;
}

/** Nearest-rank percentile of a sorted array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Nearest rank of p among n values, 0-based. */
function rankOf(n: number, p: number): number {
  return Math.min(n, Math.max(1, Math.ceil(p * n))) - 1;
}

function waitStats(waits: Float64Array): WaitStats {
  const n = waits.length;
  let sum = 0;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const x = waits[i] as number;
    sum += x;
    if (x > max) max = x;
  }
  let p50Ms = 0;
  let p99Ms = 0;
  if (n > 0 && Number.isNaN(sum)) {
    // Not expected (every attempt starts, gives up or is rejected); sorting puts NaN last.
    waits.sort();
    p50Ms = percentile(waits, 0.5);
    p99Ms = percentile(waits, 0.99);
    max = waits[n - 1] as number;
  } else if (n > 0) {
    // Selecting the higher rank first leaves the lower one's candidates to its left.
    const r99 = rankOf(n, 0.99);
    p99Ms = selectKth(waits, r99);
    p50Ms = selectKth(waits, rankOf(n, 0.5), 0, r99);
  }
  return {
    count: n,
    meanMs: n ? sum / n : 0,
    p50Ms,
    p99Ms,
    maxMs: n ? max : 0,
  };
}

/**
 * The wait for a slot of every attempt: until it started, or until the
 * program gave up waiting; a rejected attempt waited 0.
 */
export function waitOf(run: SimRun, i: number): number {
  const fate = run.fate[i];
  if (fate === FATE_REJECTED) return 0;
  if (fate === FATE_GAVE_UP) return (run.end[i] as number) - (run.arrival[i] as number);
  return (run.start[i] as number) - (run.arrival[i] as number);
}

export function summarize(run: SimRun, timelineBuckets = 60): SimSummary {
  const w = run.workload;
  const n = w.n;
  const all = new Float64Array(n);
  const roleCount = new Int32Array(w.roleNames.length);
  const roleFailures = new Int32Array(w.roleNames.length);
  // Final outcomes by code: the recorded outcomes' indices, then rejected and gave up.
  const finalNames = [...outcomes, "rejected", "gaveUp"];
  const rejectedCode = outcomes.length;
  const gaveUpCode = outcomes.length + 1;
  const connectedCode = outcomes.indexOf("connected");
  const counts = new Int32Array(finalNames.length);
  const outcome = w.outcome;
  const fateArr = run.fate;
  let failures = 0;
  for (let i = 0; i < n; i++) {
    all[i] = waitOf(run, i);
    const r = w.role[i] as number;
    roleCount[r] = (roleCount[r] as number) + 1;
    const fate = fateArr[i];
    const code =
      fate === FATE_REJECTED
        ? rejectedCode
        : fate === FATE_GAVE_UP
          ? gaveUpCode
          : (outcome[i] as number);
    counts[code] = (counts[code] as number) + 1;
    if (code !== connectedCode) {
      failures++;
      roleFailures[r] = (roleFailures[r] as number) + 1;
    }
  }
  const perRole = Array.from(roleCount, (c) => new Float64Array(c));
  const fill = new Int32Array(roleCount.length);
  for (let i = 0; i < n; i++) {
    const r = w.role[i] as number;
    (perRole[r] as Float64Array)[fill[r] as number] = all[i] as number;
    fill[r] = (fill[r] as number) + 1;
  }
  const byRole: Record<string, RoleSummary> = {};
  w.roleNames.forEach((name, r) => {
    if ((roleCount[r] as number) === 0) return;
    byRole[name] = {
      ...waitStats(perRole[r] as Float64Array),
      failures: roleFailures[r] as number,
    };
  });
  const spanMs = Math.max(0, run.lastEndMs - run.firstArrivalMs);
  const finite = Number.isFinite(run.config.maxInFlight);
  return {
    attempts: n,
    spanMs,
    waits: waitStats(all),
    byRole,
    occupancy: {
      meanInFlight: spanMs > 0 ? run.inFlightArea / spanMs : 0,
      maxInFlight: run.maxInFlightSeen,
      saturatedFraction:
        run.config.scope === "process" && finite && spanMs > 0 ? run.saturatedMs / spanMs : null,
    },
    queue: {
      meanLength: spanMs > 0 ? run.queueArea / spanMs : 0,
      maxLength: run.maxQueued,
      timeline: queueTimeline(run, timelineBuckets),
    },
    outcomes: Object.fromEntries(finalNames.map((name, code) => [name, counts[code] as number])),
    failures,
    events: run.events,
  };
}

/** The queue length over the run, in equal buckets (max and time-average of each). */
export function queueTimeline(run: SimRun, buckets: number): QueueTimeline {
  const startMs = run.firstArrivalMs;
  const spanMs = Math.max(run.lastEndMs - startMs, 1e-9);
  const bucketMs = spanMs / buckets;
  const max = new Array<number>(buckets).fill(0);
  const area = new Array<number>(buckets).fill(0);
  let value = 0;
  let t = startMs;
  let b = 0;
  const touch = () => {
    if (value > (max[b] as number)) max[b] = value;
  };
  // Spreads the current length over [t, until), bucket by bucket.
  const add = (until: number) => {
    for (;;) {
      const boundary = b === buckets - 1 ? Number.POSITIVE_INFINITY : startMs + (b + 1) * bucketMs;
      if (until <= boundary) break;
      area[b] = (area[b] as number) + value * (boundary - t);
      touch();
      t = boundary;
      b++;
    }
    if (until > t) {
      area[b] = (area[b] as number) + value * (until - t);
      touch();
      t = until;
    }
  };
  for (let i = 0; i < run.queueLogLength; i++) {
    add(run.queueLogTimes[i] as number);
    value = run.queueLogValues[i] as number;
    touch();
  }
  add(run.lastEndMs);
  return { startMs, bucketMs, max, mean: area.map((a) => a / bucketMs) };
}

import { REACHABLE_HOSTS_KEPT } from "../gate/gate.js";
import { EventHeap, heapPush } from "./heap.js";
import {
  OUTCOME_CANCELLED,
  OUTCOME_CONNECTED,
  OUTCOME_TIMEOUT,
  type Workload,
} from "./workload.js";

export interface SimConfig {
  /** Slots per scope key: a positive integer or Infinity. */
  readonly maxInFlight: number;
  readonly scope: "process" | "destination";
  readonly policy: "queue" | "reject" | "rate";
  /** The simulated OS deadline: `timeout` attempts last this long; null keeps recorded durations. */
  readonly failAtMs: number | null;
  /** Rate policy: new hosts released per second, and recent hosts that pass freely. */
  readonly ratePerSecond: number;
  readonly workingSetSize: number;
  /**
   * winxp-sp2: a host (port ignored) whose connect succeeded at most this
   * long ago is known reachable, and an attempt to it neither waits nor takes
   * a slot — the gate's rule (src/gate/gate.ts), checked when the attempt
   * arrives. Absent or null: every attempt counts.
   */
  readonly knownReachableMs?: number | null;
  /**
   * The gate's queue order. `round-robin` serves per-process buckets in
   * turn; a trace is one process, so it is one bucket: plain FIFO. Kept so
   * the configuration says what was modelled.
   */
  readonly fairness?: "fifo" | "round-robin";
}

/** What became of an attempt under the simulated limiter. */
export const FATE_STARTED = 0;
export const FATE_REJECTED = 1;
/** A `cancelled` attempt whose program gave up while it still waited for a slot. */
export const FATE_GAVE_UP = 2;
const FATE_QUEUED = 3;

export interface SimRun {
  readonly workload: Workload;
  readonly config: SimConfig;
  readonly arrival: Float64Array;
  /** NaN when never started. */
  readonly start: Float64Array;
  readonly end: Float64Array;
  readonly fate: Uint8Array;
  /** Events processed (arrivals, ends, give-ups, releases). */
  readonly events: number;
  readonly firstArrivalMs: number;
  readonly lastEndMs: number;
  /** ∫ attempts in flight dt, ∫ queued dt, and time with every slot busy (process scope). */
  readonly inFlightArea: number;
  readonly queueArea: number;
  readonly saturatedMs: number;
  readonly maxInFlightSeen: number;
  readonly maxQueued: number;
  /** Queue length after each change: `queueLogLength` (time, length) pairs. */
  readonly queueLogTimes: Float64Array;
  readonly queueLogValues: Int32Array;
  readonly queueLogLength: number;
}

const ARRIVE = 0;
const END = 1;
const GIVE_UP = 2;
const RELEASE = 3;

/**
 * Replays a workload under one limiter: a discrete-event simulation whose
 * state is all typed arrays (queues are linked lists through `next`), so an
 * event costs a heap operation and a few array writes, never an object.
 */
export function simulateGeneral(w: Workload, config: SimConfig): SimRun {
  const n = w.n;
  const k = config.maxInFlight;
  const byDest = config.scope === "destination";
  const keys = byDest ? Math.max(1, w.destNames.length) : 1;
  const arrival = new Float64Array(n).fill(Number.NaN);
  const start = new Float64Array(n).fill(Number.NaN);
  const end = new Float64Array(n).fill(Number.NaN);
  const fate = new Uint8Array(n).fill(FATE_QUEUED);
  const next = new Int32Array(n).fill(-1);
  const inFlight = new Int32Array(keys);
  const qHead = new Int32Array(keys).fill(-1);
  const qTail = new Int32Array(keys).fill(-1);
  const qLive = new Int32Array(keys);
  const heap = new EventHeap(1024);

  // Children lists (attempts that follow an attempt's end), and the others in request order.
  const firstChild = new Int32Array(n).fill(-1);
  const sibling = new Int32Array(n).fill(-1);
  let roots = 0;
  for (let i = n - 1; i >= 0; i--) {
    const p = w.parent[i] as number;
    if (p >= 0) {
      sibling[i] = firstChild[p] as number;
      firstChild[p] = i;
    } else roots++;
  }
  const order = new Int32Array(roots);
  let sorted = true;
  for (let i = 0, j = 0; i < n; i++) {
    if ((w.parent[i] as number) >= 0) continue;
    if (j > 0 && (w.t[i] as number) < (w.t[order[j - 1] as number] as number)) sorted = false;
    order[j++] = i;
  }
  if (!sorted) order.sort((a, b) => (w.t[a] as number) - (w.t[b] as number) || a - b);

  // Rate policy state.
  const wsSize = Math.max(0, config.workingSetSize);
  const workingSet = new Int32Array(keys * Math.max(1, wsSize)).fill(-1);
  const lastRelease = new Float64Array(keys).fill(Number.NEGATIVE_INFINITY);
  const releasePending = new Uint8Array(keys);
  const releaseIntervalMs = 1000 / config.ratePerSecond;

  // Known-reachable hosts: host → time its last connect succeeded, oldest
  // first, forgotten as the gate forgets them (window, then REACHABLE_HOSTS_KEPT).
  const reachableWindowMs = config.knownReachableMs ?? null;
  const reachedAt = new Map<number, number>();
  /** Attempts that went ahead uncounted: their end frees no slot. */
  const uncounted = new Uint8Array(reachableWindowMs === null ? 0 : n);
  const reached = (host: number) => {
    if (reachableWindowMs === null) return;
    reachedAt.delete(host);
    reachedAt.set(host, now);
    const oldest = now - reachableWindowMs;
    for (const [h, at] of reachedAt) {
      if (at >= oldest && reachedAt.size <= REACHABLE_HOSTS_KEPT) break;
      reachedAt.delete(h);
    }
  };
  const knownReachable = (host: number): boolean => {
    if (reachableWindowMs === null) return false;
    const at = reachedAt.get(host);
    return at !== undefined && now - at <= reachableWindowMs;
  };

  let events = 0;
  let now = Number.NEGATIVE_INFINITY;
  let firstArrival = Number.NaN;
  let totalInFlight = 0;
  let totalQueued = 0;
  let inFlightArea = 0;
  let queueArea = 0;
  let saturatedMs = 0;
  let maxInFlightSeen = 0;
  let maxQueued = 0;
  let logTimes = new Float64Array(1024);
  let logValues = new Int32Array(1024);
  let logLength = 0;

  const advance = (t: number) => {
    if (now !== Number.NEGATIVE_INFINITY && t > now) {
      const dt = t - now;
      inFlightArea += totalInFlight * dt;
      queueArea += totalQueued * dt;
      if (!byDest && totalInFlight >= k) saturatedMs += dt;
    }
    now = t;
  };
  const logQueue = () => {
    if (totalQueued > maxQueued) maxQueued = totalQueued;
    if (logLength === logTimes.length) {
      const t2 = new Float64Array(logLength * 2);
      t2.set(logTimes);
      logTimes = t2;
      const v2 = new Int32Array(logLength * 2);
      v2.set(logValues);
      logValues = v2;
    }
    if (logLength > 0 && logTimes[logLength - 1] === now) logValues[logLength - 1] = totalQueued;
    else {
      logTimes[logLength] = now;
      logValues[logLength++] = totalQueued;
    }
  };
  const keyOf = (a: number) => (byDest ? (w.dest[a] as number) : 0);

  const follow = (a: number) => {
    for (let c = firstChild[a] as number; c >= 0; c = sibling[c] as number) {
      heap.push(now + (w.gapMs[c] as number), (c << 2) | ARRIVE);
    }
  };
  const begin = (a: number, key: number, counted = true) => {
    fate[a] = FATE_STARTED;
    start[a] = now;
    if (counted) {
      inFlight[key] = (inFlight[key] as number) + 1;
      if (++totalInFlight > maxInFlightSeen) maxInFlightSeen = totalInFlight;
    } else uncounted[a] = 1;
    const outcome = w.outcome[a] as number;
    let until: number;
    if (outcome === OUTCOME_CANCELLED)
      until = Math.max(now, (arrival[a] as number) + (w.patienceMs[a] as number));
    else if (outcome === OUTCOME_TIMEOUT && config.failAtMs !== null) until = now + config.failAtMs;
    else until = now + (w.durationMs[a] as number);
    heap.push(until, (a << 2) | END);
  };
  const enqueue = (a: number, key: number) => {
    const tail = qTail[key] as number;
    if (tail < 0) qHead[key] = a;
    else next[tail] = a;
    qTail[key] = a;
    qLive[key] = (qLive[key] as number) + 1;
    totalQueued++;
    logQueue();
    if ((w.outcome[a] as number) === OUTCOME_CANCELLED) {
      heap.push((arrival[a] as number) + (w.patienceMs[a] as number), (a << 2) | GIVE_UP);
    }
  };
  /** Unlinks the queue's head, skipping attempts that gave up; -1 when empty. */
  const dequeue = (key: number): number => {
    for (;;) {
      const a = qHead[key] as number;
      if (a < 0) return -1;
      qHead[key] = next[a] as number;
      if (qHead[key] === -1) qTail[key] = -1;
      next[a] = -1;
      if (fate[a] === FATE_QUEUED) {
        qLive[key] = (qLive[key] as number) - 1;
        totalQueued--;
        logQueue();
        return a;
      }
    }
  };
  const inWorkingSet = (key: number, host: number): boolean => {
    const base = key * wsSize;
    for (let j = 0; j < wsSize; j++) {
      if (workingSet[base + j] === host) {
        // Most recent last.
        for (let m = j; m < wsSize - 1; m++)
          workingSet[base + m] = workingSet[base + m + 1] as number;
        workingSet[base + wsSize - 1] = host;
        return true;
      }
    }
    return false;
  };
  const admit = (key: number, host: number) => {
    lastRelease[key] = now;
    if (wsSize === 0) return;
    const base = key * wsSize;
    for (let m = 0; m < wsSize - 1; m++) workingSet[base + m] = workingSet[base + m + 1] as number;
    workingSet[base + wsSize - 1] = host;
  };
  const scheduleRelease = (key: number) => {
    if (releasePending[key] || (qLive[key] as number) === 0) return;
    releasePending[key] = 1;
    heap.push(
      Math.max(now, (lastRelease[key] as number) + releaseIntervalMs),
      (key << 2) | RELEASE,
    );
  };

  const arrive = (a: number) => {
    arrival[a] = now;
    if (Number.isNaN(firstArrival)) firstArrival = now;
    const key = keyOf(a);
    if (knownReachable(w.host[a] as number)) {
      // XP SP2: not counted, so it neither waits nor takes a slot; the OS deadline still applies.
      begin(a, key, false);
    } else if (config.policy === "rate") {
      const host = w.host[a] as number;
      if (inWorkingSet(key, host)) begin(a, key);
      else if (
        (qLive[key] as number) === 0 &&
        now - (lastRelease[key] as number) >= releaseIntervalMs
      ) {
        admit(key, host);
        begin(a, key);
      } else {
        enqueue(a, key);
        scheduleRelease(key);
      }
    } else if ((inFlight[key] as number) < k && (qLive[key] as number) === 0) begin(a, key);
    else if (config.policy === "reject") {
      fate[a] = FATE_REJECTED;
      end[a] = now;
      follow(a);
    } else enqueue(a, key);
  };
  const finish = (a: number) => {
    const key = keyOf(a);
    end[a] = now;
    if ((w.outcome[a] as number) === OUTCOME_CONNECTED) reached(w.host[a] as number);
    if (reachableWindowMs !== null && uncounted[a] === 1) {
      follow(a);
      return;
    }
    inFlight[key] = (inFlight[key] as number) - 1;
    totalInFlight--;
    follow(a);
    if (config.policy !== "queue") return;
    while ((inFlight[key] as number) < k) {
      const b = dequeue(key);
      if (b < 0) break;
      begin(b, key);
    }
  };
  const giveUp = (a: number) => {
    if (fate[a] !== FATE_QUEUED) return;
    fate[a] = FATE_GAVE_UP;
    end[a] = now;
    const key = keyOf(a);
    qLive[key] = (qLive[key] as number) - 1;
    totalQueued--;
    logQueue();
    follow(a);
  };
  const release = (key: number) => {
    releasePending[key] = 0;
    const head = dequeue(key);
    if (head < 0) return;
    const host = w.host[head] as number;
    admit(key, host);
    begin(head, key);
    // Every queued attempt to the admitted host goes with it.
    let prev = -1;
    for (let a = qHead[key] as number; a >= 0; ) {
      const after = next[a] as number;
      if (fate[a] === FATE_QUEUED && (w.host[a] as number) === host) {
        if (prev < 0) qHead[key] = after;
        else next[prev] = after;
        if (qTail[key] === a) qTail[key] = prev;
        next[a] = -1;
        qLive[key] = (qLive[key] as number) - 1;
        totalQueued--;
        logQueue();
        begin(a, key);
      } else prev = a;
      a = after;
    }
    scheduleRelease(key);
  };

  let i = 0;
  for (;;) {
    const heapTime = heap.peekTime();
    const nextRoot = i < roots ? (order[i] as number) : -1;
    const rootTime = nextRoot >= 0 ? (w.t[nextRoot] as number) : Number.POSITIVE_INFINITY;
    if (heapTime === Number.POSITIVE_INFINITY && nextRoot < 0) break;
    events++;
    if (heapTime <= rootTime) {
      const item = heap.peekItem();
      heap.pop();
      advance(heapTime);
      const a = item >> 2;
      switch (item & 3) {
        case ARRIVE:
          arrive(a);
          break;
        case END:
          finish(a);
          break;
        case GIVE_UP:
          giveUp(a);
          break;
        default:
          release(a);
      }
    } else {
      advance(rootTime);
      i++;
      arrive(nextRoot);
    }
  }
  return {
    workload: w,
    config,
    arrival,
    start,
    end,
    fate,
    events,
    firstArrivalMs: Number.isNaN(firstArrival) ? 0 : firstArrival,
    lastEndMs: now === Number.NEGATIVE_INFINITY ? 0 : now,
    inFlightArea,
    queueArea,
    saturatedMs,
    maxInFlightSeen,
    maxQueued,
    queueLogTimes: logTimes,
    queueLogValues: logValues,
    queueLogLength: logLength,
  };
}

/** Slots of the fast loop's `acc`: the doubles carried from one event to the next. */
const NOW = 0;
const IN_FLIGHT_AREA = 1;
const QUEUE_AREA = 2;
const SATURATED_MS = 3;
/** Slots of the fast loop's `counts`: the integers carried from one batch to the next. */
const EVENTS = 0;
const TOTAL_IN_FLIGHT = 1;
const TOTAL_QUEUED = 2;
const MAX_IN_FLIGHT_SEEN = 3;
const MAX_QUEUED = 4;
const LOG_LENGTH = 5;
const HEAP_SIZE = 6;
const NEXT_ROOT = 7;

/**
 * Events per call of `runBatch`. Small, because V8 decides to optimise a
 * function while one of its calls is running, and (1) it compiles from the
 * type feedback gathered so far: with long calls, the first one, which ran
 * its prologue before V8 had allocated the function's feedback vector, could
 * be the only one before the decision, and the optimised code then deopted
 * on entry ("insufficient type feedback", bytecode offset 0) and fell back to
 * a 45 ms OSR compile; (2) a call still running in baseline code once the
 * optimised code is installed makes V8 compile the function a second time
 * for on-stack replacement, another TurboFan job competing for the second
 * core. A call of 32 events (about 1 µs optimised, 25 µs in baseline code)
 * avoids both; reloading the state per call costs nothing measurable.
 */
const BATCH_EVENTS = 32;

/** Everything the fast loop reads or writes, one shape for every run. */
class FastRun {
  readonly acc = new Float64Array(4);
  readonly counts = new Int32Array(8);
  readonly arrival: Float64Array;
  readonly start: Float64Array;
  readonly end: Float64Array;
  readonly fate: Uint8Array;
  readonly next: Int32Array;
  readonly inFlight: Int32Array;
  readonly qHead: Int32Array;
  readonly qTail: Int32Array;
  readonly qLive: Int32Array;
  readonly hTimes: Float64Array;
  readonly hItems: Int32Array;
  readonly logTimes: Float64Array;
  readonly logValues: Int32Array;
  /** Slots per key, the deadline of `timeout` attempts (0 when none), in a typed array: see `runBatch`. */
  readonly params: Float64Array;
  constructor(
    readonly w: Workload,
    readonly reject: boolean,
    readonly byDest: boolean,
    readonly hasDeadline: boolean,
    readonly roots: number,
    readonly identity: boolean,
    readonly order: Int32Array,
    readonly firstChild: Int32Array,
    readonly sibling: Int32Array,
    k: number,
    failAtMs: number,
    keys: number,
  ) {
    const n = w.n;
    // Every attempt arrives and ends, so those two need no initial value;
    // `start` is set to NaN where an attempt never starts.
    this.arrival = new Float64Array(n);
    this.start = new Float64Array(n);
    this.end = new Float64Array(n);
    this.fate = new Uint8Array(n).fill(FATE_QUEUED);
    this.next = new Int32Array(n);
    this.inFlight = new Int32Array(keys);
    this.qHead = new Int32Array(keys).fill(-1);
    this.qTail = new Int32Array(keys).fill(-1);
    this.qLive = new Int32Array(keys);
    this.hTimes = new Float64Array(2 * n + 2);
    this.hItems = new Int32Array(2 * n + 2);
    this.logTimes = new Float64Array(2 * n + 2);
    this.logValues = new Int32Array(2 * n + 2);
    this.params = Float64Array.of(k, failAtMs);
    this.acc[NOW] = Number.NEGATIVE_INFINITY;
  }
}

/**
 * Replays a workload under one limiter. Queue and reject policies take the
 * fast path: a loop whose state lives in local variables and typed arrays
 * (closures would keep it in heap-allocated contexts, several times slower);
 * the rate policy, rarer and timer-driven, and the known-reachable exemption
 * (winxp-sp2) take `simulateGeneral`. Tests
 * check that both give identical runs.
 *
 * The loop is `runBatch`, called once per `BATCH_EVENTS` events, not one
 * loop run to the end: a function called once can only be optimised by
 * on-stack replacement, and V8's OSR of the whole of `simulate` took
 * ~45 ms to compile, started late, and kept loop-carried doubles boxed; a
 * small function called again and again is optimised like any other, from
 * its own type feedback, and its next call runs the optimised code.
 *
 * The loop touches no object property and calls only the heap's push: a path
 * first taken late in a run (a growth, a method with no type feedback yet)
 * would throw the optimised loop back to the interpreter for the time of a
 * recompilation. So every array is sized up front for the worst case (an
 * attempt has at most two pending events and makes at most two queue
 * changes); untouched pages of a large typed array cost no memory.
 */
export function simulate(w: Workload, config: SimConfig): SimRun {
  if (config.policy === "rate" || (config.knownReachableMs ?? null) !== null)
    return simulateGeneral(w, config);
  const byDest = config.scope === "destination";
  const keys = byDest ? Math.max(1, w.destNames.length) : 1;
  const { roots, identity, order, firstChild, sibling } = rootsOf(w);
  const s = new FastRun(
    w,
    config.policy === "reject",
    byDest,
    config.failAtMs !== null,
    roots,
    identity,
    order,
    firstChild,
    sibling,
    config.maxInFlight,
    config.failAtMs ?? 0,
    keys,
  );
  while (runBatch(s, BATCH_EVENTS)) {}
  const c = s.counts;
  const acc = s.acc;
  return {
    workload: w,
    config,
    arrival: s.arrival,
    start: s.start,
    end: s.end,
    fate: s.fate,
    events: c[EVENTS] as number,
    // The first event is the first root's arrival: the heap starts empty.
    firstArrivalMs: roots > 0 ? (w.t[identity ? 0 : (order[0] as number)] as number) : 0,
    lastEndMs: roots > 0 ? (acc[NOW] as number) : 0,
    inFlightArea: acc[IN_FLIGHT_AREA] as number,
    queueArea: acc[QUEUE_AREA] as number,
    saturatedMs: acc[SATURATED_MS] as number,
    maxInFlightSeen: c[MAX_IN_FLIGHT_SEEN] as number,
    maxQueued: c[MAX_QUEUED] as number,
    queueLogTimes: s.logTimes,
    queueLogValues: s.logValues,
    queueLogLength: c[LOG_LENGTH] as number,
  };
}

/** Processes up to `budget` events of the run; false once no event is left. */
function runBatch(s: FastRun, budget: number): boolean {
  const w = s.w;
  const tArr = w.t;
  const durationMs = w.durationMs;
  const outcomeArr = w.outcome;
  const patienceMs = w.patienceMs;
  const destArr = w.dest;
  const gapMs = w.gapMs;
  const reject = s.reject;
  const byDest = s.byDest;
  const hasDeadline = s.hasDeadline;
  const roots = s.roots;
  const identity = s.identity;
  const order = s.order;
  const firstChild = s.firstChild;
  const sibling = s.sibling;
  const hasChildren = firstChild.length > 0;
  const arrival = s.arrival;
  const start = s.start;
  const end = s.end;
  const fate = s.fate;
  const next = s.next;
  const inFlight = s.inFlight;
  const qHead = s.qHead;
  const qTail = s.qTail;
  const qLive = s.qLive;
  const hTimes = s.hTimes;
  const hItems = s.hItems;
  const logTimes = s.logTimes;
  const logValues = s.logValues;
  const acc = s.acc;
  const counts = s.counts;
  const k = s.params[0] as number;
  const failAtMs = s.params[1] as number;
  let totalInFlight = counts[TOTAL_IN_FLIGHT] as number;
  let totalQueued = counts[TOTAL_QUEUED] as number;
  let maxInFlightSeen = counts[MAX_IN_FLIGHT_SEEN] as number;
  let maxQueued = counts[MAX_QUEUED] as number;
  let logLength = counts[LOG_LENGTH] as number;
  let hSize = counts[HEAP_SIZE] as number;
  let ri = counts[NEXT_ROOT] as number;
  let done = 0;
  let more = true;

  for (; done < budget; done++) {
    const root = ri < roots ? (identity ? ri : (order[ri] as number)) : -1;
    let a: number;
    let kind: number;
    let t: number;
    if (hSize > 0 && (root < 0 || (hTimes[0] as number) <= (tArr[root] as number))) {
      t = hTimes[0] as number;
      const item = hItems[0] as number;
      // heapPop, by hand: see the END push below.
      const last = --hSize;
      if (last > 0) {
        const lt = hTimes[last] as number;
        const li = hItems[last] as number;
        let h = 0;
        for (;;) {
          const first = 4 * h + 1;
          if (first >= last) break;
          let child = first;
          let ct = hTimes[first] as number;
          let ci = hItems[first] as number;
          const stop = first + 3 < last ? first + 3 : last - 1;
          for (let c = first + 1; c <= stop; c++) {
            const tc = hTimes[c] as number;
            if (tc < ct || (tc === ct && (hItems[c] as number) < ci)) {
              child = c;
              ct = tc;
              ci = hItems[c] as number;
            }
          }
          if (lt < ct || (lt === ct && li <= ci)) break;
          hTimes[h] = ct;
          hItems[h] = ci;
          h = child;
        }
        hTimes[h] = lt;
        hItems[h] = li;
      }
      a = item >> 2;
      kind = item & 3;
    } else if (root >= 0) {
      a = root;
      kind = ARRIVE;
      t = tArr[root] as number;
      ri++;
    } else {
      more = false;
      break;
    }
    // Advance the clock: integrate slots and queue over [previous event, t).
    const before = acc[NOW] as number;
    if (t > before && before !== Number.NEGATIVE_INFINITY) {
      const dt = t - before;
      acc[IN_FLIGHT_AREA] = (acc[IN_FLIGHT_AREA] as number) + totalInFlight * dt;
      acc[QUEUE_AREA] = (acc[QUEUE_AREA] as number) + totalQueued * dt;
      if (!byDest && totalInFlight >= k) acc[SATURATED_MS] = (acc[SATURATED_MS] as number) + dt;
    }
    acc[NOW] = t;
    const now = t;
    const key = byDest ? (destArr[a] as number) : 0;
    let follow = false;
    let drain = false;
    let queueChanged = false;
    // The attempt to start now: an arrival that found a slot, or queue heads after an end.
    let b = -1;

    if (kind === ARRIVE) {
      arrival[a] = now;
      if ((inFlight[key] as number) < k && (qLive[key] as number) === 0) b = a;
      else if (reject) {
        fate[a] = FATE_REJECTED;
        start[a] = Number.NaN;
        end[a] = now;
        follow = true;
      } else {
        const tail = qTail[key] as number;
        if (tail < 0) qHead[key] = a;
        else next[tail] = a;
        next[a] = -1;
        qTail[key] = a;
        qLive[key] = (qLive[key] as number) + 1;
        totalQueued++;
        queueChanged = true;
        if ((outcomeArr[a] as number) === OUTCOME_CANCELLED) {
          heapPush(hTimes, hItems, hSize++, now + (patienceMs[a] as number), (a << 2) | GIVE_UP);
        }
      }
    } else if (kind === END) {
      end[a] = now;
      inFlight[key] = (inFlight[key] as number) - 1;
      totalInFlight--;
      follow = true;
      drain = !reject;
    } else if (fate[a] === FATE_QUEUED) {
      // GIVE_UP while still queued: the node stays linked and is skipped later.
      fate[a] = FATE_GAVE_UP;
      start[a] = Number.NaN;
      end[a] = now;
      qLive[key] = (qLive[key] as number) - 1;
      totalQueued--;
      queueChanged = true;
      follow = true;
    }

    if (follow && hasChildren) {
      for (let c = firstChild[a] as number; c >= 0; c = sibling[c] as number) {
        heapPush(hTimes, hItems, hSize++, now + (gapMs[c] as number), (c << 2) | ARRIVE);
      }
    }
    for (;;) {
      if (b < 0 && drain && (inFlight[key] as number) < k) {
        // Dequeue the first attempt still waiting.
        for (;;) {
          const h = qHead[key] as number;
          if (h < 0) break;
          const after = next[h] as number;
          qHead[key] = after;
          if (after < 0) qTail[key] = -1;
          if (fate[h] === FATE_QUEUED) {
            qLive[key] = (qLive[key] as number) - 1;
            totalQueued--;
            queueChanged = true;
            b = h;
            break;
          }
        }
      }
      if (b < 0) break;
      fate[b] = FATE_STARTED;
      start[b] = now;
      inFlight[key] = (inFlight[key] as number) + 1;
      if (++totalInFlight > maxInFlightSeen) maxInFlightSeen = totalInFlight;
      const outcome = outcomeArr[b] as number;
      let until: number;
      if (outcome === OUTCOME_CANCELLED) {
        until = Math.max(now, (arrival[b] as number) + (patienceMs[b] as number));
      } else if (outcome === OUTCOME_TIMEOUT && hasDeadline) until = now + failAtMs;
      else until = now + (durationMs[b] as number);
      // heapPush, by hand: V8's inlining budget does not reach every call
      // site, and a double passed to a call that is not inlined is boxed, an
      // allocation per event. The rarer pushes (give-ups, follow-ups) call it.
      const item = (b << 2) | END;
      let h = hSize++;
      while (h > 0) {
        const parent = (h - 1) >> 2;
        const pt = hTimes[parent] as number;
        if (pt < until || (pt === until && (hItems[parent] as number) <= item)) break;
        hTimes[h] = pt;
        hItems[h] = hItems[parent] as number;
        h = parent;
      }
      hTimes[h] = until;
      hItems[h] = item;
      b = -1;
    }
    if (queueChanged) {
      if (totalQueued > maxQueued) maxQueued = totalQueued;
      if (logLength > 0 && logTimes[logLength - 1] === now) logValues[logLength - 1] = totalQueued;
      else {
        logTimes[logLength] = now;
        logValues[logLength++] = totalQueued;
      }
    }
  }
  counts[EVENTS] = (counts[EVENTS] as number) + done;
  counts[TOTAL_IN_FLIGHT] = totalInFlight;
  counts[TOTAL_QUEUED] = totalQueued;
  counts[MAX_IN_FLIGHT_SEEN] = maxInFlightSeen;
  counts[MAX_QUEUED] = maxQueued;
  counts[LOG_LENGTH] = logLength;
  counts[HEAP_SIZE] = hSize;
  counts[NEXT_ROOT] = ri;
  return more;
}

/**
 * Requests that follow no earlier attempt (roots), in time order; in the
 * common case (no follow-ups, lines in time order) they are 0..n-1 and need
 * neither an index nor child lists. A function of its own: its loop is
 * optimised on its own, and the simulation loop's first optimisation does
 * not start from here with no type feedback for the rest of `simulate`.
 */
function rootsOf(w: Workload) {
  const n = w.n;
  const parentArr = w.parent;
  const tArr = w.t;
  let roots = 0;
  let hasChildren = false;
  let sorted = true;
  // The previous root by index, not its time: a double carried across
  // iterations of a loop optimised on entry is boxed (see `acc` above).
  let lastRoot = -1;
  for (let i = 0; i < n; i++) {
    if ((parentArr[i] as number) >= 0) {
      hasChildren = true;
      continue;
    }
    roots++;
    if (lastRoot >= 0 && (tArr[i] as number) < (tArr[lastRoot] as number)) sorted = false;
    lastRoot = i;
  }
  const identity = sorted && !hasChildren;
  const order = new Int32Array(identity ? 0 : roots);
  const firstChild = new Int32Array(hasChildren ? n : 0).fill(-1);
  const sibling = new Int32Array(hasChildren ? n : 0).fill(-1);
  if (!identity) {
    for (let i = n - 1; i >= 0; i--) {
      const p = parentArr[i] as number;
      if (p >= 0) {
        sibling[i] = firstChild[p] as number;
        firstChild[p] = i;
      }
    }
    for (let i = 0, j = 0; i < n; i++) if ((parentArr[i] as number) < 0) order[j++] = i;
    if (!sorted) order.sort((a, b) => (tArr[a] as number) - (tArr[b] as number) || a - b);
  }
  return { roots, identity, order, firstChild, sibling };
}

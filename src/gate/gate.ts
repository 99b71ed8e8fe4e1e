import { type Clock, isClock, systemClock, type Timer } from "../clock.js";
import { FifoDeadlines } from "../deadlines.js";
import { defaults } from "../defaults.js";
import {
  attemptRejected,
  type EmulatedOsError,
  emulatedTimeout,
  formatEndpoint,
  invalidOption,
} from "../errors.js";
import { type AttemptChannel, attemptChannels, limitReachedChannel } from "./channels.js";
import { isWindowsTiming, resolveTiming, type Timing } from "./timing.js";
import type {
  AttemptEvent,
  AttemptState,
  Destination,
  Fairness,
  GateOptions,
  LimitReachedEvent,
  Policy,
} from "./types.js";
import {
  checkDurationMs,
  checkMaxInFlight,
  checkPolicy,
  checkRate,
  checkTimeScale,
  checkTiming,
  type Fail,
} from "./validate.js";

/** Who an attempt belongs to when the caller does not say: the one owner of an in-process gate. */
export const DEFAULT_OWNER = "process";

/** What the owner of an attempt must do when the gate decides. */
export interface AttemptHandlers {
  /** The slot is granted: send the SYN now. May run before `request()` returns. */
  onStart(attempt: Attempt): void;
  /** The emulated OS deadline passed: end the socket with `error`. */
  onTimeout(attempt: Attempt, error: EmulatedOsError): void;
}

export const EVENT_4226_TEXT =
  "TCP/IP has reached the security limit imposed on the number of concurrent TCP connect attempts.";

interface KeyState {
  readonly key: string;
  inFlight: number;
  /** Every waiting attempt, in arrival order. */
  readonly queue: Attempt[];
  /**
   * round-robin fairness: the same attempts, one FIFO bucket per owner; the
   * Map's order is the turn order (a served owner moves to the back).
   */
  readonly buckets: Map<string, Attempt[]>;
  draining: boolean;
  limitReported: boolean;
  // Williamson throttle: most recently used last.
  readonly workingSet: string[];
  lastReleaseAt: number;
  releaseTimer: Timer | null;
}

const terminal: ReadonlySet<AttemptState> = new Set([
  "connected",
  "failed",
  "timed-out",
  "cancelled",
  "rejected",
]);

/**
 * One outbound connect attempt as the gate sees it: from the moment the SYN
 * would be sent until connected, failed, timed out or cancelled. Only a
 * `pending` attempt holds a slot; every way out of `pending` releases it once.
 */
export class Attempt {
  readonly id: number;
  readonly destination: Destination;
  readonly key: string;
  /** Who made the attempt (a process, for a machine-wide gate); buckets are per owner. */
  readonly owner: string;
  readonly queuedAt: number;
  startedAt: number | null = null;
  endedAt: number | null = null;
  error: unknown;
  #state: AttemptState = "queued";
  #holdsSlot = false;
  /** A known-reachable destination: pending without counting toward the limit. */
  #exempt = false;
  readonly #gate: AttemptGate;
  readonly #handlers: AttemptHandlers;

  /** @internal */
  constructor(
    gate: AttemptGate,
    id: number,
    destination: Destination,
    key: string,
    handlers: AttemptHandlers,
    now: number,
    owner: string,
  ) {
    this.#gate = gate;
    this.id = id;
    this.destination = destination;
    this.key = key;
    this.owner = owner;
    this.#handlers = handlers;
    this.queuedAt = now;
  }

  get state(): AttemptState {
    return this.#state;
  }

  get settled(): boolean {
    return terminal.has(this.#state);
  }

  /** True when it went ahead uncounted, its destination known to be reachable. */
  get exempt(): boolean {
    return this.#exempt;
  }

  /**
   * Clock times at which the emulated OS sends (or sent) the SYN and its
   * retransmissions, from the gate's timing; empty until started.
   */
  get synTimes(): readonly number[] {
    const start = this.startedAt;
    return start === null ? [] : this.#gate.synOffsetsMs.map((t) => start + t);
  }

  /** Clock time at which the emulated OS gives up; null when not started or no deadline. */
  get giveUpAt(): number | null {
    const g = this.#gate.giveUpAfterMs;
    return this.startedAt === null || g === null ? null : this.startedAt + g;
  }

  /** The handshake completed. Returns false if the attempt had already ended. */
  connected(): boolean {
    return this.#end("connected", "connected", undefined);
  }

  /** The connect failed (refused, unreachable, any OS error). */
  failed(error?: unknown): boolean {
    return this.#end("failed", "failed", error);
  }

  /**
   * The owner gave up (socket destroyed, aborted). A queued attempt leaves
   * the line and frees nothing it did not hold.
   */
  cancel(): boolean {
    return this.#end("cancelled", "cancelled", undefined);
  }

  /** @internal the gate grants the slot (and starts the deadline, if the timing has one). */
  _start(now: number, exempt = false): void {
    this.#state = "pending";
    this.#holdsSlot = !exempt;
    this.#exempt = exempt;
    this.startedAt = now;
    this.#gate._publish("start", this);
    try {
      this.#handlers.onStart(this);
    } catch (error) {
      // A throwing owner must not keep the slot; the bug still surfaces.
      this.failed(error);
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** @internal the emulated OS deadline passed. */
  _timeout(timing: Timing, afterMs: number): void {
    const error = emulatedTimeout(this.destination, timeoutKind(timing), afterMs);
    // The owner ends the socket before the slot passes on, as the OS
    // closes the failed attempt before the next queued SYN goes out.
    this.#end("timed-out", "timeout", error, () => this.#handlers.onTimeout(this, error));
  }

  /** @internal the `reject` policy refused it. */
  _reject(error: EmulatedOsError): void {
    this.#end("rejected", "rejected", error);
  }

  #end(
    state: AttemptState,
    channel: AttemptChannel,
    error: unknown,
    beforeRelease?: () => void,
  ): boolean {
    if (this.settled) return false;
    const wasQueued = this.#state === "queued";
    if (wasQueued && state === "connected") {
      throw new Error(`attempt ${this.id} reported connected before it was started`);
    }
    this.#state = state;
    this.error = error;
    const holdsSlot = this.#holdsSlot;
    if (holdsSlot || this.#exempt) this.#gate._deadlines?.delete(this);
    if (state === "connected") this.#gate._reached(this.destination.host);
    this.#holdsSlot = false;
    this.endedAt = this.#gate._now();
    this.#gate._settled(this, wasQueued, holdsSlot, channel, beforeRelease);
    return true;
  }
}

interface NormalizedOptions {
  readonly name: string;
  readonly maxInFlight: number;
  readonly policy: Policy;
  readonly fairness: Fairness;
  /** Unscaled; null: every attempt counts. */
  readonly knownReachableMs: number | null;
  readonly timing: Timing;
  readonly timeScale: number;
  readonly keyOf: (destination: Destination) => string;
  readonly ratePerSecond: number;
  readonly workingSetSize: number;
  readonly clock: Clock;
  readonly onLimitReached: ((event: LimitReachedEvent) => void) | null;
}

export interface GateStats {
  readonly inFlight: number;
  readonly queued: number;
  readonly byKey: ReadonlyArray<{ key: string; inFlight: number; queued: number }>;
  readonly totals: Readonly<Record<AttemptState, number>>;
}

/**
 * The attempt gate: how many outbound connect attempts are in flight per
 * scope key, and who waits. It never touches a socket; its owner (the
 * in-process hook, the proxy) sends the SYN when told to and reports back.
 */
export class AttemptGate {
  readonly options: NormalizedOptions;
  #nextId = 1;
  readonly #keys = new Map<string, KeyState>();
  readonly #totals: Record<AttemptState, number> = {
    queued: 0,
    pending: 0,
    connected: 0,
    failed: 0,
    "timed-out": 0,
    cancelled: 0,
    rejected: 0,
  };

  /**
   * @internal every pending attempt's emulated OS deadline. One duration per
   * gate, so they fall due in start order and one timer serves them all.
   */
  readonly _deadlines: FifoDeadlines<Attempt> | null;
  /** The timing's SYN times, scaled: milliseconds after an attempt's start. */
  readonly synOffsetsMs: readonly number[];
  /** The timing's give-up time, scaled; null: no emulated deadline. */
  readonly giveUpAfterMs: number | null;
  /** Host → clock time it last accepted a connection (knownReachableMs only). */
  readonly #reachedAt = new Map<string, number>();
  /**
   * @internal what the gate can decide about an attempt when there is no
   * limit, no rate policy, no known-reachable window and one key: nothing
   * (`pass`), or only when it gives up (`deadline`); null otherwise. Its owner
   * may then let a connect through without an `Attempt` (see `_passStarted`)
   * while nobody listens on the attempt channels.
   */
  readonly _passMode: "pass" | "deadline" | null;
  /** Attempts let through untracked that have not ended yet (all under the process key). */
  #passedInFlight = 0;

  constructor(options: GateOptions = {}) {
    this.options = normalize(options);
    const { timing, timeScale, clock } = this.options;
    const failAtMs = timing.failAtMs;
    // Capped after scaling: a finite product of two finite numbers may still overflow.
    const afterMs = failAtMs === null ? 0 : Math.min(failAtMs * timeScale, MAX_DEADLINE_MS);
    this.synOffsetsMs = timing.synAtMs.map((t) => Math.min(t * timeScale, MAX_DEADLINE_MS));
    this.giveUpAfterMs = failAtMs === null ? null : afterMs;
    this._deadlines =
      failAtMs === null
        ? null
        : new FifoDeadlines(clock, afterMs, (a: Attempt) => a._timeout(timing, afterMs));
    const o = this.options;
    const unlimited =
      o.maxInFlight === Number.POSITIVE_INFINITY &&
      o.policy !== "rate" &&
      o.knownReachableMs === null &&
      o.keyOf === processKeyOf;
    this._passMode = !unlimited ? null : failAtMs === null ? "pass" : "deadline";
  }

  /**
   * @internal an attempt goes ahead untracked (only with a `_passMode`):
   * counted as started and in flight, as `request()` would, without an
   * `Attempt`. Its owner ends it exactly once: `_passEnded` or `_passTimedOut`.
   */
  _passStarted(): void {
    this.#passedInFlight++;
    this.#totals.pending++;
  }

  /** @internal an untracked attempt ended. */
  _passEnded(state: "connected" | "failed" | "cancelled"): void {
    this.#passedInFlight--;
    this.#totals[state]++;
  }

  /**
   * @internal an untracked attempt reached the emulated deadline (`deadline`
   * mode): counted as timed out; returns the error its owner ends it with.
   */
  _passTimedOut(destination: Destination): EmulatedOsError {
    this.#passedInFlight--;
    this.#totals["timed-out"]++;
    const { timing } = this.options;
    return emulatedTimeout(destination, timeoutKind(timing), this.giveUpAfterMs ?? 0);
  }

  /**
   * Asks for a slot for one attempt. `handlers.onStart` runs once the slot is
   * granted, which may be before this returns. Under the `reject` policy the
   * returned attempt may already be `rejected`, with the error in `error`.
   */
  request(
    destination: Destination,
    handlers: AttemptHandlers,
    owner: string = DEFAULT_OWNER,
  ): Attempt {
    const { keyOf, policy, maxInFlight, clock } = this.options;
    const key = keyOf(destination);
    const state = this.#keyState(key);
    const now = clock.now();
    const attempt = new Attempt(this, this.#nextId++, destination, key, handlers, now, owner);

    if (this.#knownReachable(destination.host, now)) {
      // XP SP2: a destination known to be reachable is not counted, so it
      // neither waits nor takes a slot; the OS deadline still applies.
      this.#totals.pending++;
      this._deadlines?.add(attempt);
      attempt._start(now, true);
    } else if (policy === "rate") {
      this.#requestRate(state, attempt);
    } else if (state.inFlight < maxInFlight && state.queue.length === 0) {
      this.#start(state, attempt, now);
    } else {
      this.#reportLimit(state);
      if (policy === "reject") {
        attempt._reject(attemptRejected(destination, maxInFlight, key));
      } else {
        this.#enqueue(state, attempt);
      }
    }
    return attempt;
  }

  stats(): GateStats {
    let inFlight = 0;
    let queued = 0;
    let passed = this.#passedInFlight;
    const byKey: Array<{ key: string; inFlight: number; queued: number }> = [];
    for (const s of this.#keys.values()) {
      let keyInFlight = s.inFlight;
      if (s.key === PROCESS_KEY) {
        keyInFlight += passed;
        passed = 0;
      }
      inFlight += keyInFlight;
      queued += s.queue.length;
      if (keyInFlight > 0 || s.queue.length > 0) {
        byKey.push({ key: s.key, inFlight: keyInFlight, queued: s.queue.length });
      }
    }
    if (passed > 0) {
      inFlight += passed;
      byKey.push({ key: PROCESS_KEY, inFlight: passed, queued: 0 });
    }
    return { inFlight, queued, byKey, totals: { ...this.#totals } };
  }

  /** @internal */
  _now(): number {
    return this.options.clock.now();
  }

  /** @internal a connection to `host` completed: it is known reachable for a while. */
  _reached(host: string): void {
    const window = this.options.knownReachableMs;
    if (window === null) return;
    const now = this.options.clock.now();
    // Most recent last, so expired entries are found at the front.
    this.#reachedAt.delete(host);
    this.#reachedAt.set(host, now);
    const oldest = now - window * this.options.timeScale;
    for (const [h, at] of this.#reachedAt) {
      if (at >= oldest && this.#reachedAt.size <= REACHABLE_HOSTS_KEPT) break;
      this.#reachedAt.delete(h);
    }
  }

  #knownReachable(host: string, now: number): boolean {
    const window = this.options.knownReachableMs;
    if (window === null) return false;
    const at = this.#reachedAt.get(host);
    return at !== undefined && now - at <= window * this.options.timeScale;
  }

  /** @internal an attempt reached a terminal state. */
  _settled(
    attempt: Attempt,
    wasQueued: boolean,
    heldSlot: boolean,
    channel: AttemptChannel,
    beforeRelease?: () => void,
  ): void {
    const state = this.#keys.get(attempt.key);
    this.#totals[attempt.state]++;
    if (state) {
      if (wasQueued) {
        const i = state.queue.indexOf(attempt);
        if (i >= 0) state.queue.splice(i, 1);
        const bucket = state.buckets.get(attempt.owner);
        if (bucket) {
          const j = bucket.indexOf(attempt);
          if (j >= 0) bucket.splice(j, 1);
          if (bucket.length === 0) state.buckets.delete(attempt.owner);
        }
      }
      if (heldSlot) state.inFlight--;
    }
    // Published before the owner reacts (an emulated timeout destroys the socket):
    // code the owner schedules then runs in the end's async context, so a recorder
    // subscribed here links a retry from the socket's 'error' handler to this attempt.
    this._publish(channel, attempt);
    try {
      beforeRelease?.();
    } finally {
      if (state) {
        if (heldSlot) this.#drain(state);
        this.#maybeForget(state);
      }
    }
  }

  /** @internal */
  _publish(channel: AttemptChannel, attempt: Attempt): void {
    const ch = attemptChannels[channel];
    if (!ch.hasSubscribers) return;
    const now = this.options.clock.now();
    const state = this.#keys.get(attempt.key);
    const event: AttemptEvent = {
      gate: this.options.name,
      id: attempt.id,
      key: attempt.key,
      owner: attempt.owner,
      host: attempt.destination.host,
      port: attempt.destination.port,
      state: attempt.state,
      at: now,
      waitMs: (attempt.startedAt ?? now) - attempt.queuedAt,
      pendingMs: attempt.startedAt === null ? 0 : now - attempt.startedAt,
      inFlight: state?.inFlight ?? 0,
      queued: state?.queue.length ?? 0,
      error: attempt.error,
      exempt: attempt.exempt,
      synAtMs: this.synOffsetsMs,
      giveUpMs: this.giveUpAfterMs,
    };
    ch.publish(event);
  }

  #keyState(key: string): KeyState {
    let state = this.#keys.get(key);
    if (!state) {
      state = {
        key,
        inFlight: 0,
        queue: [],
        buckets: new Map(),
        draining: false,
        limitReported: false,
        workingSet: [],
        lastReleaseAt: Number.NEGATIVE_INFINITY,
        releaseTimer: null,
      };
      this.#keys.set(key, state);
    }
    return state;
  }

  #start(state: KeyState, attempt: Attempt, now = this.options.clock.now()): void {
    state.inFlight++;
    this.#totals.pending++;
    // Armed before the owner hears of it: an owner that ends the attempt at
    // once (a synchronous connect error) disarms it again.
    this._deadlines?.add(attempt);
    attempt._start(now);
  }

  #enqueue(state: KeyState, attempt: Attempt): void {
    state.queue.push(attempt);
    if (this.options.fairness === "round-robin") {
      const bucket = state.buckets.get(attempt.owner);
      if (bucket) bucket.push(attempt);
      else state.buckets.set(attempt.owner, [attempt]);
    }
    this.#totals.queued++;
    this._publish("queued", attempt);
  }

  #drain(state: KeyState): void {
    if (this.options.policy !== "queue" || state.draining) return;
    // Starting an attempt can end it at once (a synchronous connect error),
    // which re-enters here; the flag keeps one loop in charge, in FIFO order.
    state.draining = true;
    try {
      while (state.inFlight < this.options.maxInFlight) {
        const next =
          this.options.fairness === "round-robin" ? nextInTurn(state) : state.queue.shift();
        if (!next) break;
        this.#start(state, next);
      }
    } finally {
      state.draining = false;
    }
  }

  #reportLimit(state: KeyState): void {
    if (state.limitReported) return;
    state.limitReported = true;
    const { onLimitReached } = this.options;
    if (!limitReachedChannel.hasSubscribers && !onLimitReached) return;
    const event: LimitReachedEvent = {
      gate: this.options.name,
      key: state.key,
      maxInFlight: this.options.maxInFlight,
      policy: this.options.policy,
      at: this.options.clock.now(),
      message: EVENT_4226_TEXT,
      eventId: 4226,
    };
    if (limitReachedChannel.hasSubscribers) limitReachedChannel.publish(event);
    onLimitReached?.(event);
  }

  // Williamson's throttle: a destination in the working set passes; a new
  // one waits for the next release tick, which admits it to the working set
  // together with every queued attempt to the same host.
  #requestRate(state: KeyState, attempt: Attempt): void {
    const host = attempt.destination.host;
    const known = state.workingSet.indexOf(host);
    if (known >= 0) {
      state.workingSet.splice(known, 1);
      state.workingSet.push(host);
      this.#start(state, attempt);
      return;
    }
    const now = this.options.clock.now();
    if (state.queue.length === 0 && now - state.lastReleaseAt >= this.#releaseIntervalMs()) {
      this.#admit(state, host, now);
      this.#start(state, attempt);
      return;
    }
    this.#reportLimit(state);
    this.#enqueue(state, attempt);
    this.#scheduleRelease(state);
  }

  #releaseIntervalMs(): number {
    return (1000 / this.options.ratePerSecond) * this.options.timeScale;
  }

  #admit(state: KeyState, host: string, now: number): void {
    state.lastReleaseAt = now;
    state.workingSet.push(host);
    while (state.workingSet.length > this.options.workingSetSize) state.workingSet.shift();
  }

  #scheduleRelease(state: KeyState): void {
    if (state.releaseTimer || state.queue.length === 0) return;
    const { clock } = this.options;
    const delay = Math.max(0, state.lastReleaseAt + this.#releaseIntervalMs() - clock.now());
    state.releaseTimer = clock.setTimer(() => {
      state.releaseTimer = null;
      const head = state.queue[0];
      if (!head) return;
      const host = head.destination.host;
      this.#admit(state, host, clock.now());
      const released = state.queue.filter((a) => a.destination.host === host);
      for (const a of released) state.queue.splice(state.queue.indexOf(a), 1);
      for (const a of released) this.#start(state, a);
      this.#scheduleRelease(state);
      this.#maybeForget(state);
    }, delay);
  }

  #maybeForget(state: KeyState): void {
    // Rate state (working set, last release) must outlive idle periods.
    if (this.options.policy === "rate") {
      if (state.queue.length === 0) {
        state.releaseTimer?.cancel();
        state.releaseTimer = null;
      }
      // Bounded all the same: past the mark, idle keys forget their working
      // set (the next connect of each waits at most one release tick).
      if (this.#keys.size > IDLE_KEYS_KEPT) {
        for (const [key, s] of this.#keys) {
          if (s.inFlight === 0 && s.queue.length === 0 && s !== state) this.#keys.delete(key);
        }
      }
      return;
    }
    if (state.inFlight > 0 || state.queue.length > 0) return;
    // Idle: the congestion episode is over. The state is kept for reuse (one
    // allocation per key, not per connect) until many keys pile up.
    state.limitReported = false;
    if (this.#keys.size > IDLE_KEYS_KEPT) {
      for (const [key, s] of this.#keys) {
        if (s.inFlight === 0 && s.queue.length === 0) this.#keys.delete(key);
      }
    }
  }
}

/** The longest scaled deadline (about 285,000 years): any longer is the same in practice. */
export const MAX_DEADLINE_MS = Number.MAX_SAFE_INTEGER;

/** How an emulated timeout's message names its timing. */
function timeoutKind(timing: Timing): "windows" | "linux" | "schedule" | "fixed" {
  if (isWindowsTiming(timing)) return "windows";
  return timing.kind === "linux" || timing.kind === "schedule" ? timing.kind : "fixed";
}

/** The one key of a `process`-scoped gate. */
const PROCESS_KEY = "process";
const processKeyOf = (): string => PROCESS_KEY;

/** Idle per-key states kept before a sweep (destination scope can see many keys). */
const IDLE_KEYS_KEPT = 1024;
/** Known-reachable hosts remembered at most (oldest forgotten first). */
export const REACHABLE_HOSTS_KEPT = 4096;

/** The head of the next owner's bucket; that owner goes to the back of the turn. */
function nextInTurn(state: KeyState): Attempt | undefined {
  for (const [owner, bucket] of state.buckets) {
    state.buckets.delete(owner);
    const next = bucket.shift();
    if (bucket.length > 0) state.buckets.set(owner, bucket);
    if (!next) continue;
    const i = state.queue.indexOf(next);
    if (i >= 0) state.queue.splice(i, 1);
    return next;
  }
  return undefined;
}

const optionFail: Fail = (name, expected, got) => {
  throw invalidOption(name, expected, got);
};

function normalize(options: GateOptions): NormalizedOptions {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", "an object", options);
  }
  const maxInFlight = checkMaxInFlight(
    options.maxInFlight ?? defaults.maxInFlight,
    "maxInFlight",
    optionFail,
  );
  const policy = checkPolicy(options.policy ?? "queue", "policy", optionFail);
  const timeScale = checkTimeScale(
    options.timeScale ?? defaults.timeScale,
    "timeScale",
    optionFail,
  );
  const timing =
    options.timing === undefined ? undefined : checkTiming(options.timing, "timing", optionFail);
  const fairness = options.fairness ?? "fifo";
  if (fairness !== "fifo" && fairness !== "round-robin") {
    throw invalidOption("fairness", "fifo or round-robin", fairness);
  }
  const knownReachableMs =
    options.knownReachableMs === undefined || options.knownReachableMs === null
      ? null
      : checkDurationMs(options.knownReachableMs, "knownReachableMs", optionFail);
  const scope = options.scope ?? "process";
  let keyOf: (d: Destination) => string;
  if (scope === "process") keyOf = processKeyOf;
  else if (scope === "destination") keyOf = (d) => formatEndpoint(d);
  else if (typeof scope === "function") {
    keyOf = (d) => {
      const key = scope(d);
      if (typeof key !== "string") throw invalidOption("scope()", "to return a string", key);
      return key;
    };
  } else throw invalidOption("scope", "process, destination or a function", scope);

  const rate = options.rate === undefined ? {} : checkRate(options.rate, "rate", optionFail);
  const ratePerSecond = rate.newDestinationsPerSecond ?? defaults.rateNewDestinationsPerSecond;
  const workingSetSize = rate.workingSetSize ?? defaults.rateWorkingSetSize;
  const clock = options.clock ?? systemClock;
  if (!isClock(clock)) throw invalidOption("clock", "an object with now() and setTimer()", clock);
  const name = options.name ?? "gate";
  if (typeof name !== "string") throw invalidOption("name", "a string", name);
  const onLimitReached = options.onLimitReached ?? null;
  if (onLimitReached !== null && typeof onLimitReached !== "function") {
    throw invalidOption("onLimitReached", "a function", onLimitReached);
  }
  return {
    name,
    maxInFlight,
    policy,
    fairness,
    knownReachableMs,
    timing: resolveTiming(timing),
    timeScale,
    keyOf,
    ratePerSecond,
    workingSetSize,
    clock,
    onLimitReached,
  };
}

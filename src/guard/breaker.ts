import type { Backoff } from "./backoff.js";

export type BreakerState = "closed" | "open" | "half-open";

export type BreakerDecision =
  | { kind: "closed" }
  /** The open period is over and this caller holds the one half-open trial. */
  | { kind: "trial"; trial: Trial }
  /** Another caller's trial is in flight: wait for its result, then decide again. */
  | { kind: "wait"; settled: Promise<void> }
  | { kind: "open"; retryAfterMs: number };

/** The token of one half-open trial. */
export interface Trial {
  readonly settled: Promise<void>;
  settle(): void;
}

export interface BreakerHooks {
  onChange(from: BreakerState, to: BreakerState, retryAfterMs: number): void;
}

/**
 * One destination's circuit breaker, in cockatiel's manner: open after
 * `threshold` consecutive failures for the backoff's next delay; then
 * half-open, where exactly one caller (the trial) may test the peer while
 * every other caller waits for the trial's result.
 */
export class Breaker {
  #state: BreakerState = "closed";
  #failures = 0;
  #openUntil = 0;
  #trial: Trial | null = null;
  readonly #threshold: number;
  readonly #backoff: Backoff;
  readonly #scale: () => number;
  readonly #hooks: BreakerHooks;

  constructor(threshold: number, backoff: Backoff, scale: () => number, hooks: BreakerHooks) {
    this.#threshold = threshold;
    this.#backoff = backoff;
    this.#scale = scale;
    this.#hooks = hooks;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Consecutive failures since the last success. */
  get failures(): number {
    return this.#failures;
  }

  /** True while a half-open trial is in flight. */
  get trialInFlight(): boolean {
    return this.#trial !== null;
  }

  decide(now: number): BreakerDecision {
    if (this.#state === "closed") return { kind: "closed" };
    if (this.#state === "half-open") {
      // The trial is always set in half-open: it is created with the state.
      return { kind: "wait", settled: (this.#trial as Trial).settled };
    }
    if (now < this.#openUntil) return { kind: "open", retryAfterMs: this.#openUntil - now };
    let settle = () => {};
    const settled = new Promise<void>((resolve) => {
      settle = resolve;
    });
    const trial: Trial = { settled, settle };
    this.#trial = trial;
    this.#set("half-open", 0);
    return { kind: "trial", trial };
  }

  retryAfterMs(now: number): number {
    return this.#state === "open" ? Math.max(0, this.#openUntil - now) : 0;
  }

  /** A TCP connect succeeded: close and start the schedule over. */
  success(): void {
    this.#failures = 0;
    this.#backoff.reset();
    this.#set("closed", 0);
    this.#endTrial();
  }

  /**
   * A connect or a half-open test failed. `minDelayMs` (real ms) lets the
   * caller keep the open period long enough for its duty-cycle bound.
   * Returns the delay until the next try (real ms), or 0 if still closed.
   */
  failure(now: number, minDelayMs = 0): number {
    this.#failures++;
    if (this.#state === "closed" && this.#failures < this.#threshold) return 0;
    const delay = Math.max(this.#backoff.next() * this.#scale(), minDelayMs);
    this.#openUntil = now + delay;
    this.#set("open", delay);
    this.#endTrial();
    return delay;
  }

  /**
   * Not a failure, but no attempt may be made for `delayMs` (real ms): the
   * slot budget has no room for one. Opens (or keeps open) the breaker that
   * long without counting a failure or advancing the backoff.
   */
  postpone(now: number, delayMs: number): void {
    this.#openUntil = now + delayMs;
    this.#set("open", delayMs);
    this.#endTrial();
  }

  /**
   * The trial ended without a verdict (aborted by its caller): back to open
   * with the period already over, so the next caller becomes the new trial.
   */
  abandonTrial(trial: Trial, now: number): void {
    if (this.#trial !== trial) return;
    this.#openUntil = now;
    this.#set("open", 0);
    this.#endTrial();
  }

  #endTrial(): void {
    const trial = this.#trial;
    this.#trial = null;
    trial?.settle();
  }

  #set(to: BreakerState, retryAfterMs: number): void {
    const from = this.#state;
    this.#state = to;
    if (from !== to || to === "open") this.#hooks.onChange(from, to, retryAfterMs);
  }
}

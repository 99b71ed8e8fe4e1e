import type { Backoff } from "./backoff.js";

export type BreakerState = "closed" | "open" | "half-open";

export type BreakerDecision =
  | { kind: "closed" }
  /** The open period is over: test the peer (by preflight) before any TCP attempt. */
  | { kind: "half-open" }
  | { kind: "open"; retryAfterMs: number };

/**
 * One destination's circuit breaker. Open after `failureThreshold`
 * consecutive failures, for the backoff's next delay; then half-open, where
 * the guard tests the peer by preflight rather than by a TCP attempt.
 */
export class Breaker {
  #state: BreakerState = "closed";
  #failures = 0;
  #openUntil = 0;
  readonly #threshold: number;
  readonly #backoff: Backoff;
  readonly #onChange: (from: BreakerState, to: BreakerState, retryAfterMs: number) => void;

  constructor(
    threshold: number,
    backoff: Backoff,
    onChange: (from: BreakerState, to: BreakerState, retryAfterMs: number) => void,
  ) {
    this.#threshold = threshold;
    this.#backoff = backoff;
    this.#onChange = onChange;
  }

  get state(): BreakerState {
    return this.#state;
  }

  decide(now: number): BreakerDecision {
    if (this.#state === "closed") return { kind: "closed" };
    if (this.#state === "open" && now < this.#openUntil) {
      return { kind: "open", retryAfterMs: this.#openUntil - now };
    }
    this.#set("half-open", 0);
    return { kind: "half-open" };
  }

  retryAfterMs(now: number): number {
    return this.#state === "open" ? Math.max(0, this.#openUntil - now) : 0;
  }

  /** A TCP connect succeeded: close and start the schedule over. */
  success(): void {
    this.#failures = 0;
    this.#backoff.reset();
    this.#set("closed", 0);
  }

  /** A connect or a half-open test failed. Returns the delay until the next try, or 0 if still closed. */
  failure(now: number): number {
    this.#failures++;
    if (this.#state === "closed" && this.#failures < this.#threshold) return 0;
    const delay = this.#backoff.next();
    this.#openUntil = now + delay;
    this.#set("open", delay);
    return delay;
  }

  #set(to: BreakerState, retryAfterMs: number): void {
    const from = this.#state;
    this.#state = to;
    if (from !== to || to === "open") this.#onChange(from, to, retryAfterMs);
  }
}

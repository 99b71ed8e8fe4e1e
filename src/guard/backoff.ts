import { defaults } from "../defaults.js";
import { invalidOption } from "../errors.js";
import { rejectUnknownKeys } from "./options.js";

/** Every key of BackoffOptions, for strict validation. */
export const backoffKeys = ["initialMs", "multiplier", "jitter", "maxMs", "random"] as const;

export interface BackoffOptions {
  initialMs?: number;
  multiplier?: number;
  /** ±fraction: 0.2 spreads each delay over 80–120 %. */
  jitter?: number;
  maxMs?: number;
  /** [0, 1) source, injectable for deterministic schedules. */
  random?: () => number;
}

/**
 * gRPC's connection backoff (doc/connection-backoff.md): the first retry
 * after `initialMs`, each next one `multiplier` times longer up to `maxMs`,
 * every delay jittered so a fleet of clients does not retry in step.
 */
export class Backoff {
  readonly initialMs: number;
  readonly multiplier: number;
  readonly jitter: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #currentMs: number | null = null;

  constructor(options: BackoffOptions = {}) {
    if (typeof options !== "object" || options === null)
      throw invalidOption("backoff", "an object", options);
    rejectUnknownKeys("a backoff", "backoff.", options, backoffKeys);
    this.initialMs = positive("backoff.initialMs", options.initialMs ?? defaults.backoffInitialMs);
    this.multiplier = options.multiplier ?? defaults.backoffMultiplier;
    if (!(Number.isFinite(this.multiplier) && this.multiplier >= 1)) {
      throw invalidOption("backoff.multiplier", "a number ≥ 1", this.multiplier);
    }
    this.jitter = options.jitter ?? defaults.backoffJitter;
    if (!(Number.isFinite(this.jitter) && this.jitter >= 0 && this.jitter < 1)) {
      throw invalidOption("backoff.jitter", "a fraction from 0 to below 1", this.jitter);
    }
    this.maxMs = positive("backoff.maxMs", options.maxMs ?? defaults.backoffMaxMs);
    if (this.maxMs < this.initialMs) {
      throw invalidOption("backoff.maxMs", `at least initialMs (${this.initialMs})`, this.maxMs);
    }
    this.#random = options.random ?? Math.random;
    if (typeof this.#random !== "function")
      throw invalidOption("backoff.random", "a function", this.#random);
  }

  /** The delay before the next retry; each call moves one step along the schedule. */
  next(): number {
    this.#currentMs =
      this.#currentMs === null
        ? this.initialMs
        : Math.min(this.#currentMs * this.multiplier, this.maxMs);
    const spread = this.jitter * (2 * this.#random() - 1);
    return this.#currentMs * (1 + spread);
  }

  reset(): void {
    this.#currentMs = null;
  }
}

function positive(name: string, value: number): number {
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw invalidOption(name, "a positive number of milliseconds", value);
  }
  return value;
}

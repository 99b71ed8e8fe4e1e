import { performance } from "node:perf_hooks";

/** A cancellable timer as returned by a {@link Clock}. */
export interface Timer {
  cancel(): void;
}

/**
 * Time, injected wherever logic depends on it, so tests can drive schedules
 * deterministically instead of sleeping.
 */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

/**
 * The system clock with unref'd timers: a background client's retry timers
 * must never keep the host process alive.
 */
export const backgroundClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

export function isClock(value: unknown): value is Clock {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Clock).now === "function" &&
    typeof (value as Clock).setTimer === "function"
  );
}

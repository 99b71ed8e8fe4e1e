import { performance } from "node:perf_hooks";

/** A cancellable timer as returned by a {@link Clock}. */
export interface Timer {
  cancel(): void;
  /**
   * Optional: let the timer keep (`ref`) or not keep (`unref`) the process
   * alive. Owners that re-use one timer across idle spells park it with
   * `unref()` instead of cancelling and re-creating it.
   */
  ref?(): void;
  unref?(): void;
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

/** The longest delay a Node timer keeps; past it Node fires after 1 ms (and warns). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * setTimeout that honours any delay: a long one is re-armed in chunks Node
 * can hold (otherwise a 2^31 ms deadline fires every millisecond, a busy
 * loop), Infinity never fires, and a negative or NaN delay is 0.
 */
function longTimer(fn: () => void, ms: number, unref: boolean): Timer {
  let handle: NodeJS.Timeout | null = null;
  let parked = unref;
  const arm = (remaining: number): void => {
    if (remaining > MAX_TIMER_MS) {
      handle = setTimeout(() => arm(remaining - MAX_TIMER_MS), MAX_TIMER_MS);
    } else {
      handle = setTimeout(fn, remaining);
    }
    if (parked) handle.unref();
  };
  // biome-ignore lint/complexity/useMathMinMax: Math.max(0, NaN) is NaN; this is 0
  const delay = ms >= 0 ? ms : 0;
  if (delay !== Number.POSITIVE_INFINITY) arm(delay);
  return {
    cancel: () => {
      if (handle) clearTimeout(handle);
      handle = null;
    },
    ref: () => {
      if (unref) return;
      parked = false;
      handle?.ref();
    },
    unref: () => {
      parked = true;
      handle?.unref();
    },
  };
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    // The common, short case stays one setTimeout.
    if (ms >= 0 && ms <= MAX_TIMER_MS) {
      const handle = setTimeout(fn, ms);
      return {
        cancel: () => clearTimeout(handle),
        ref: () => handle.ref(),
        unref: () => handle.unref(),
      };
    }
    return longTimer(fn, ms, false);
  },
};

/**
 * The system clock with unref'd timers: a background client's retry timers
 * must never keep the host process alive.
 */
export const backgroundClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    return longTimer(fn, ms, true);
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

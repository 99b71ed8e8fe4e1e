import { type Clock, MAX_TIMER_MS, type Timer } from "./clock.js";

/**
 * Deadlines that all run the same duration fall due in the order they were
 * set, so one timer serves all of them: the head's. This is the
 * per-connection and per-attempt case, where a timer each would cost an
 * allocation and a timer-list insert on every setup.
 */
export class FifoDeadlines<T> {
  readonly #clock: Clock;
  readonly #durationMs: number;
  readonly #onExpire: (item: T) => void;
  // Insertion order is due order; the value is when it falls due.
  readonly #due = new Map<T, number>();
  #timer: Timer | null = null;

  constructor(clock: Clock, durationMs: number, onExpire: (item: T) => void) {
    this.#clock = clock;
    this.#durationMs = durationMs;
    this.#onExpire = onExpire;
  }

  get size(): number {
    return this.#due.size;
  }

  get durationMs(): number {
    return this.#durationMs;
  }

  /** Starts `item`'s deadline now (again, if it had one). */
  add(item: T): void {
    this.#due.delete(item);
    this.#due.set(item, this.#clock.now() + this.#durationMs);
    if (this.#timer === null) this.#arm(this.#durationMs);
    else if (this.#parked) {
      // A parked timer falls due no later than this item (one duration for
      // all): it only has to keep the process alive again.
      this.#parked = false;
      this.#timer.ref?.();
    }
  }

  /** Ends `item`'s deadline; false when it had none (already expired or deleted). */
  delete(item: T): boolean {
    const had = this.#due.delete(item);
    if (this.#due.size === 0 && this.#timer !== null) {
      if (this.#timer.unref) {
        // Parked, not cancelled: one connect after another would otherwise
        // create and cancel a timer each (a timer-list insert and removal
        // per attempt). Unref'd, it never keeps the process alive; when it
        // fires with nothing due it simply ends.
        this.#timer.unref();
        this.#parked = true;
      } else {
        this.#timer.cancel();
        this.#timer = null;
      }
    }
    return had;
  }

  #parked = false;

  // Never longer than a Node timer holds, whatever the clock: a longer
  // deadline wakes early, finds nothing due and re-arms for the rest.
  #arm(afterMs: number): void {
    this.#timer = this.#clock.setTimer(
      () => this.#fire(),
      Math.min(MAX_TIMER_MS, Math.max(0, afterMs)),
    );
  }

  #fire(): void {
    this.#timer = null;
    this.#parked = false;
    const now = this.#clock.now();
    try {
      for (const [item, at] of this.#due) {
        if (at > now) break;
        this.#due.delete(item);
        this.#onExpire(item);
      }
    } finally {
      // An expiry may have added entries and so armed a timer for the
      // newest, a whole duration away: the oldest still waiting decides.
      (this.#timer as Timer | null)?.cancel();
      this.#timer = null;
      this.#parked = false;
      for (const at of this.#due.values()) {
        // A real timer may fire a fraction of a millisecond early: the
        // remainder is armed again (Node rounds it up to 1 ms).
        this.#arm(at - this.#clock.now());
        break;
      }
    }
  }
}

import { aborted } from "../errors.js";

interface Waiter {
  readonly destination: string;
  readonly grant: (release: () => void) => void;
}

/**
 * A client's own connect-attempt budget: at most `maxOverall` attempts in
 * flight, at most `maxPerDestination` to any one destination, the rest in
 * FIFO order (a waiter whose destination is full does not block others).
 */
export class AttemptBudget {
  readonly #perDestination = new Map<string, number>();
  readonly #waiters: Waiter[] = [];
  #inFlight = 0;

  constructor(
    readonly maxOverall: number,
    readonly maxPerDestination: number,
  ) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Resolves with a release function once a slot is free; call it exactly once (extra calls are ignored). */
  acquire(destination: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted)
      return Promise.reject(aborted("waiting for a connect slot", signal.reason));
    if (this.#fits(destination)) return Promise.resolve(this.#take(destination));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        destination,
        grant: (release) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(aborted("waiting for a connect slot", signal?.reason));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #fits(destination: string): boolean {
    return (
      this.#inFlight < this.maxOverall &&
      (this.#perDestination.get(destination) ?? 0) < this.maxPerDestination
    );
  }

  #take(destination: string): () => void {
    this.#inFlight++;
    this.#perDestination.set(destination, (this.#perDestination.get(destination) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      const left = (this.#perDestination.get(destination) ?? 1) - 1;
      if (left === 0) this.#perDestination.delete(destination);
      else this.#perDestination.set(destination, left);
      this.#grant();
    };
  }

  #grant(): void {
    for (let i = 0; i < this.#waiters.length && this.#inFlight < this.maxOverall; ) {
      const w = this.#waiters[i] as Waiter;
      if (this.#fits(w.destination)) {
        this.#waiters.splice(i, 1);
        w.grant(this.#take(w.destination));
      } else {
        i++;
      }
    }
  }
}

// Every copy of synlimit loaded in the process shares one budget per name,
// so two agents bundling their own copy still cannot queue two SYNs.
const registrySlot = Symbol.for("synlimit.guard.budgets");
const globals = globalThis as Record<symbol, unknown>;
if (!globals[registrySlot]) globals[registrySlot] = new Map<string, AttemptBudget>();
const registry = globals[registrySlot] as Map<string, AttemptBudget>;

/** The process-wide budget called `name`; the first caller's limits stand. */
export function sharedBudget(
  name: string,
  maxOverall: number,
  maxPerDestination: number,
): AttemptBudget {
  let budget = registry.get(name);
  if (!budget) {
    budget = new AttemptBudget(maxOverall, maxPerDestination);
    registry.set(name, budget);
  }
  return budget;
}

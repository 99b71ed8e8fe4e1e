import diagnostics from "node:diagnostics_channel";
import type net from "node:net";
import type { Clock } from "../clock.js";
import { aborted } from "../errors.js";

/**
 * Watches the host application's outbound connects through Node's
 * `net.client.socket` channel, so a background client can hold its own
 * connect while the app has one in flight and never sits in front of the
 * app in a FIFO limiter. The guard's own sockets are excluded.
 */
class HostActivity {
  #inFlight = 0;
  #own = 0;
  #idleWaiters: Array<() => void> = [];
  #subscribed = false;

  /** Runs `create` so that the socket it makes is not counted as the app's. */
  own<T>(create: () => T): T {
    this.#own++;
    try {
      return create();
    } finally {
      this.#own--;
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  #onSocket = (message: unknown) => {
    if (this.#own > 0) return;
    const socket = (message as { socket: net.Socket }).socket;
    this.#inFlight++;
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      this.#inFlight--;
      if (this.#inFlight === 0) for (const w of this.#idleWaiters.splice(0)) w();
    };
    socket.once("connect", end);
    socket.once("close", end);
  };

  /** Resolves when the app has no connect in flight, or after `maxWaitMs`. */
  waitIdle(maxWaitMs: number, clock: Clock, signal?: AbortSignal): Promise<void> {
    this.#subscribe();
    if (this.#inFlight === 0) return Promise.resolve();
    if (signal?.aborted)
      return Promise.reject(aborted("waiting for the host's connects", signal.reason));
    return new Promise((resolve, reject) => {
      const done = () => {
        timer.cancel();
        signal?.removeEventListener("abort", onAbort);
        const i = this.#idleWaiters.indexOf(done);
        if (i >= 0) this.#idleWaiters.splice(i, 1);
      };
      const timer = clock.setTimer(() => {
        done();
        resolve();
      }, maxWaitMs);
      const onAbort = () => {
        done();
        reject(aborted("waiting for the host's connects", signal?.reason));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#idleWaiters.push(() => {
        done();
        resolve();
      });
    });
  }

  /** Starts watching; the first guard that yields turns it on for the process. */
  #subscribe(): void {
    if (this.#subscribed) return;
    this.#subscribed = true;
    diagnostics.subscribe("net.client.socket", this.#onSocket);
  }

  start(): void {
    this.#subscribe();
  }
}

// One watcher per process, whichever copy of synlimit created it.
const slot = Symbol.for("synlimit.guard.hostActivity");
const globals = globalThis as Record<symbol, unknown>;
if (!globals[slot]) globals[slot] = new HostActivity();
export const hostActivity = globals[slot] as HostActivity;

import net from "node:net";
import type { Clock } from "../clock.js";
import type { Endpoint } from "../errors.js";

/** Where an error came from: the proxy hop or the helper process (the probe could not test), or the target. */
export type DialStage = "proxy" | "helper" | "target";

/**
 * How one connect attempt ended.
 */
export type DialOutcome =
  | { readonly kind: "connected"; readonly ms: number }
  | {
      readonly kind: "error";
      readonly ms: number;
      readonly code: string;
      readonly message: string;
      readonly stage: DialStage;
    }
  | { readonly kind: "cancelled"; readonly ms: number };

/** One connect attempt the probe owns: it can always be cancelled, and ends exactly once. */
export interface Dial {
  readonly target: Endpoint;
  readonly startedAt: number;
  /**
   * Resolves once the attempt has left this process's hands — the connect
   * issued, or the proxy's CONNECT request written — so attempts started
   * one after another reach a limiter in that order.
   */
  readonly sent: Promise<void>;
  readonly done: Promise<DialOutcome>;
  /** Null while the attempt is pending. */
  readonly outcome: DialOutcome | null;
  /** Clock time at which it ended. */
  readonly endedAt: number | null;
  cancel(): void;
}

export interface DialOptions {
  /**
   * Keep the connection once established (the probe holds established
   * connections to see whether a limiter counts them); `cancel()` resets it.
   */
  readonly keep?: boolean;
}

export type DialFn = (target: Endpoint, options?: DialOptions) => Dial;

/**
 * A dial over one socket. A connected socket is reset rather than closed:
 * the probe makes hundreds of throwaway connections and must not leave them
 * in TIME_WAIT.
 */
export class SocketDial implements Dial {
  readonly startedAt: number;
  readonly done: Promise<DialOutcome>;
  readonly sent: Promise<void>;
  outcome: DialOutcome | null = null;
  endedAt: number | null = null;
  #resolve!: (outcome: DialOutcome) => void;
  #markSent!: () => void;
  #reachedProxy = false;

  constructor(
    readonly target: Endpoint,
    readonly socket: net.Socket,
    private readonly clock: Clock,
    private readonly viaProxy: boolean,
    private readonly keep = false,
  ) {
    this.startedAt = clock.now();
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    this.sent = new Promise((resolve) => {
      this.#markSent = resolve;
    });
    socket.on("error", (error: NodeJS.ErrnoException) =>
      this.fail(error.code ?? "ERROR", error.message),
    );
    socket.once("close", () =>
      this.fail("ECONNRESET", "the connection closed before the attempt completed"),
    );
    if (viaProxy) socket.once("connect", () => (this.#reachedProxy = true));
  }

  markSent(): void {
    this.#markSent();
  }

  succeed(): void {
    if (this.#finish({ kind: "connected", ms: this.#elapsed() }) && !this.keep) {
      this.socket.resetAndDestroy();
    }
  }

  fail(code: string, message: string, stage?: DialStage): void {
    const where = stage ?? (this.viaProxy && !this.#reachedProxy ? "proxy" : "target");
    if (this.#finish({ kind: "error", ms: this.#elapsed(), code, message, stage: where })) {
      this.socket.destroy();
    }
  }

  cancel(): void {
    if (this.#finish({ kind: "cancelled", ms: this.#elapsed() })) this.socket.destroy();
    // A kept connection ends with a reset: no TIME_WAIT, and a limiter that
    // tracks connections (netfilter's conntrack) sees it closed at once.
    else if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  #elapsed(): number {
    return this.clock.now() - this.startedAt;
  }

  #finish(outcome: DialOutcome): boolean {
    if (this.outcome) return false;
    this.outcome = outcome;
    this.endedAt = this.clock.now();
    // A failure before the request went out must not leave waiters hanging.
    this.#markSent();
    this.#resolve(outcome);
    return true;
  }
}

/** A plain TCP connect from this process: the SYN goes out from here. */
export function directDial(target: Endpoint, clock: Clock, options: DialOptions = {}): Dial {
  const socket = net.connect({ host: target.host, port: target.port });
  const dial = new SocketDial(target, socket, clock, false, options.keep === true);
  socket.once("connect", () => dial.succeed());
  // Node issues connect(2) for an IP address on the next tick; by the next
  // turn of the event loop the attempt is in the kernel (or in a limiter's line).
  setImmediate(() => dial.markSent());
  return dial;
}

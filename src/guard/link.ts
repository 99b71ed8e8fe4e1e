import { EventEmitter } from "node:events";
import type net from "node:net";
import type tls from "node:tls";
import { backgroundClock, type Clock, type Timer } from "../clock.js";
import { defaults } from "../defaults.js";
import { invalidOption } from "../errors.js";
import { guardChannels, publish } from "./channels.js";
import { Guard, type GuardOptions } from "./guard.js";

export interface ReconnectingLinkOptions {
  host: string;
  port: number;
  /** The collector's UDP echo port: every reconnect is preflighted, so a dead collector costs no TCP attempt. */
  udpEchoPort?: number;
  /** A guard of your own (shared breakers), or options for the link's own. */
  guard?: Guard | GuardOptions;
  /** Records kept while disconnected; past it the oldest are dropped, and counted. */
  queueLimit?: number;
  tls?: tls.ConnectionOptions;
  clock?: Clock;
}

export type LinkState = "connecting" | "connected" | "waiting" | "closed";

export interface LinkStats {
  state: LinkState;
  queued: number;
  dropped: number;
  written: number;
  connects: number;
  failures: number;
}

/**
 * A long-lived link to a collector, as an APM agent keeps. `send()` never
 * blocks and never throws: records wait in a bounded queue (drop-oldest)
 * while the link reconnects through the guard. Records already written to a
 * connection that then dies may be lost with it (TCP gives no receipt);
 * records queued while disconnected are lost only past `queueLimit`.
 *
 * Events: `connected`, `disconnected` (error?), `dropped` (count so far).
 */
export class ReconnectingLink extends EventEmitter {
  readonly host: string;
  readonly port: number;
  readonly guard: Guard;
  readonly queueLimit: number;
  readonly #tls: tls.ConnectionOptions | undefined;
  readonly #clock: Clock;
  readonly #queue: Array<Buffer | string> = [];
  readonly #abort = new AbortController();
  #state: LinkState = "connecting";
  #socket: net.Socket | null = null;
  #timer: Timer | null = null;
  #draining = false;
  #dropped = 0;
  #written = 0;
  #connects = 0;
  #failures = 0;

  constructor(options: ReconnectingLinkOptions) {
    super();
    if (typeof options !== "object" || options === null)
      throw invalidOption("options", "an object", options);
    const { host, port } = options;
    if (typeof host !== "string" || host === "")
      throw invalidOption("host", "a host name or address", host);
    if (!(Number.isInteger(port) && port > 0 && port < 65536))
      throw invalidOption("port", "a port from 1 to 65535", port);
    this.host = host;
    this.port = port;
    this.queueLimit = options.queueLimit ?? defaults.linkQueueLimit;
    if (!(Number.isInteger(this.queueLimit) && this.queueLimit >= 0)) {
      throw invalidOption("queueLimit", "a non-negative integer", this.queueLimit);
    }
    this.#clock = options.clock ?? backgroundClock;
    this.#tls = options.tls;
    if (options.guard instanceof Guard) {
      this.guard = options.guard;
    } else {
      const own: GuardOptions = { clock: this.#clock, ...options.guard };
      if (options.udpEchoPort !== undefined) {
        own.preflight = { udpEchoPort: options.udpEchoPort, when: "always", ...own.preflight };
      }
      this.guard = new Guard(own);
    }
    this.#connect();
  }

  get state(): LinkState {
    return this.#state;
  }

  stats(): LinkStats {
    return {
      state: this.#state,
      queued: this.#queue.length,
      dropped: this.#dropped,
      written: this.#written,
      connects: this.#connects,
      failures: this.#failures,
    };
  }

  /** Queues a record for the collector. Returns false only once the link is closed. */
  send(record: Buffer | string): boolean {
    if (this.#state === "closed") return false;
    this.#queue.push(record);
    if (this.#queue.length > this.queueLimit) {
      this.#queue.shift();
      this.#dropped++;
      this.emit("dropped", this.#dropped);
    }
    this.#flush();
    return true;
  }

  /** Writes what is queued if connected, then closes the link for good. */
  async close(): Promise<void> {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#timer?.cancel();
    this.#abort.abort();
    const socket = this.#socket;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.end();
    });
  }

  #connect(): void {
    if (this.#state === "closed") return;
    this.#set("connecting");
    this.guard
      .connect({
        host: this.host,
        port: this.port,
        signal: this.#abort.signal,
        ...(this.#tls ? { tls: this.#tls } : {}),
      })
      .then(
        (socket) => this.#connected(socket),
        (error: Error) => this.#retryLater(error),
      );
  }

  #connected(socket: net.Socket): void {
    if (this.#state === "closed") {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    this.#connects++;
    this.#set("connected");
    this.emit("connected");
    socket.on("error", () => {}); // the 'close' that follows carries the news
    socket.on("data", () => {}); // a collector may answer; the link does not read replies
    socket.once("close", () => {
      this.#socket = null;
      this.#draining = false;
      if (this.#state === "closed") return;
      this.#failures++;
      this.emit("disconnected");
      this.#connect();
    });
    this.#flush();
  }

  #retryLater(error: Error): void {
    if (this.#state === "closed") return;
    this.#failures++;
    this.#set("waiting", error);
    // The guard knows when its breaker will let the next try through.
    const delay = Math.max(this.guard.nextTryInMs(this.host, this.port), 1);
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = null;
      this.#connect();
    }, delay);
  }

  #flush(): void {
    const socket = this.#socket;
    if (!socket || this.#draining || this.#state !== "connected") return;
    while (this.#queue.length > 0) {
      const record = this.#queue.shift() as Buffer | string;
      this.#written++;
      if (!socket.write(record)) {
        this.#draining = true;
        socket.once("drain", () => {
          this.#draining = false;
          this.#flush();
        });
        return;
      }
    }
  }

  #set(state: LinkState, error?: Error): void {
    this.#state = state;
    publish(guardChannels.link, {
      host: this.host,
      port: this.port,
      state,
      queued: this.#queue.length,
      dropped: this.#dropped,
      ...(error ? { error } : {}),
    });
  }
}

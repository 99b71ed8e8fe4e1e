import { EventEmitter } from "node:events";
import type net from "node:net";
import type tls from "node:tls";
import { backgroundClock, type Clock, type Timer } from "../clock.js";
import { defaults } from "../defaults.js";
import {
  invalidOption,
  linkPeerSilent,
  linkStalled,
  linkUnacknowledged,
  type SynlimitError,
} from "../errors.js";
import { guardChannels, publish } from "./channels.js";
import {
  Guard,
  type GuardOptions,
  guardOptionKeys,
  type PreflightOptions,
  preflightOptionKeys,
} from "./guard.js";
import { rejectUnknownKeys } from "./options.js";
import {
  type SendQueueSample,
  sampleSendQueueNow,
  sendQueueWatchAvailable,
  tcpTableKey,
  watchSendQueue,
} from "./send-queue.js";
import { tcpUnder } from "./tcp-under.js";

const linkOptionKeys = [
  "host",
  "port",
  "udpEchoPort",
  "preflight",
  "guard",
  "queueLimit",
  "queueLimitBytes",
  "writeTimeoutMs",
  "keepAliveMs",
  "closeTimeoutMs",
  "echoIntervalMs",
  "echoMisses",
  "tls",
  "clock",
] as const;

export interface ReconnectingLinkOptions {
  host: string;
  port: number;
  /** The collector's UDP echo port: every reconnect is preflighted, so a dead collector costs no TCP attempt. */
  udpEchoPort?: number;
  /**
   * Preflight options for the link's own guard, as in GuardOptions
   * (`preflight: { udpEchoPort }` means the same as `udpEchoPort`).
   */
  preflight?: PreflightOptions;
  /** A guard of your own (shared breakers), or options for the link's own. */
  guard?: Guard | GuardOptions;
  /** Records kept while disconnected, at least 1; past it the oldest are dropped, and counted (default 1000). */
  queueLimit?: number;
  /** Bytes kept while disconnected; past it the oldest are dropped, and counted (default 4 MiB). */
  queueLimitBytes?: number;
  /**
   * A dead peer is taken as dead after this long without progress: written
   * bytes that do not drain, or (Linux) sent bytes the kernel keeps
   * retransmitting without an acknowledgement; then reconnect (default 10 s;
   * scaled by the guard's time scale).
   */
  writeTimeoutMs?: number;
  /** TCP keep-alive idle time on the connection (default 10 s); 0 turns it off. Kernel time: not scaled. */
  keepAliveMs?: number;
  /** Default for close(): how long queued bytes may take to leave (default 2 s; scaled by the guard's time scale). */
  closeTimeoutMs?: number;
  /**
   * With a preflight (UDP echo): how often the connected peer's host is
   * probed (default 1 s; scaled by the guard's time scale), and how many
   * probes in a row without an answer mean it is gone (default 3).
   */
  echoIntervalMs?: number;
  echoMisses?: number;
  tls?: tls.ConnectionOptions;
  clock?: Clock;
}

export type LinkState = "connecting" | "connected" | "waiting" | "closed";

export interface LinkStats {
  state: LinkState;
  queued: number;
  queuedBytes: number;
  dropped: number;
  written: number;
  connects: number;
  /** Connect tries that failed (a TCP attempt or a preflight); fast skips by an open breaker are not counted. */
  failures: number;
  /** Established connections that ended (peer closed, reset, or found dead). */
  disconnects: number;
  /**
   * Records written to a connection the link then found dead, put back in
   * the queue because the kernel had not seen them acknowledged (they may
   * reach the collector twice).
   */
  requeued: number;
}

/**
 * A long-lived link to a collector, as an APM agent keeps. `send()` never
 * blocks and never throws: records wait in a queue bounded by records and by
 * bytes (drop-oldest) while the link reconnects through the guard. A
 * silently dead connection (the peer's host switched off: no FIN, no RST)
 * is found and replaced: on Linux from the kernel's unacknowledged bytes
 * however little the link writes, with a preflight from missed echoes, and
 * everywhere from written bytes that do not drain; keep-alive finds an idle
 * one. Records the kernel had not shown acknowledged go back in the queue
 * when the link finds its connection dead (at-least-once); queued records
 * are lost only past the queue's bounds, counted.
 *
 * Events: `connected`, `disconnected` (error?), `dropped` (count so far).
 */
export class ReconnectingLink extends EventEmitter {
  readonly host: string;
  readonly port: number;
  readonly guard: Guard;
  readonly queueLimit: number;
  readonly queueLimitBytes: number;
  readonly #writeTimeoutMs: number;
  readonly #keepAliveMs: number;
  readonly #closeTimeoutMs: number;
  readonly #echoIntervalMs: number;
  readonly #echoMisses: number;
  readonly #tls: tls.ConnectionOptions | undefined;
  readonly #clock: Clock;
  readonly #queue: Array<Buffer | string> = [];
  #queuedBytes = 0;
  readonly #abort = new AbortController();
  #state: LinkState = "connecting";
  #socket: net.Socket | null = null;
  #timer: Timer | null = null;
  #writeTimer: Timer | null = null;
  #echoTimer: Timer | null = null;
  #unwatch: (() => void) | null = null;
  /** Records written to the current connection the kernel has not yet shown acknowledged (Linux). */
  #inFlight: Array<Buffer | string> = [];
  #inFlightBytes = 0;
  /** In-flight records forgotten past the queue's bounds before they were shown acknowledged. */
  #forgotten = 0;
  /** Records ever removed from the front of #inFlight on this connection: snapshots count from it. */
  #inFlightShifted = 0;
  #requeued = 0;
  #wroteAt: number | null = null;
  #draining = false;
  #closing: Promise<void> | null = null;
  #dropped = 0;
  #written = 0;
  #connects = 0;
  #failures = 0;
  #disconnects = 0;

  constructor(options: ReconnectingLinkOptions) {
    super();
    if (typeof options !== "object" || options === null)
      throw invalidOption("options", "an object", options);
    const hints: Record<string, string> = {};
    for (const key of guardOptionKeys) if (key !== "preflight") hints[key] = `guard.${key}`;
    for (const key of preflightOptionKeys) hints[key] ??= `preflight.${key}`;
    hints.udpEchoPort = "udpEchoPort";
    rejectUnknownKeys("a ReconnectingLink", "", options, linkOptionKeys, hints);
    const { host, port } = options;
    if (typeof host !== "string" || host === "")
      throw invalidOption("host", "a host name or address", host);
    if (!(Number.isInteger(port) && port > 0 && port < 65536))
      throw invalidOption("port", "a port from 1 to 65535", port);
    this.host = host;
    this.port = port;
    this.queueLimit = options.queueLimit ?? defaults.linkQueueLimit;
    // 0 would drop every record: refused rather than a silent black hole.
    if (!(Number.isInteger(this.queueLimit) && this.queueLimit >= 1)) {
      throw invalidOption("queueLimit", "an integer of at least 1", this.queueLimit);
    }
    this.queueLimitBytes = options.queueLimitBytes ?? defaults.linkQueueLimitBytes;
    if (!(Number.isInteger(this.queueLimitBytes) && this.queueLimitBytes >= 1)) {
      throw invalidOption("queueLimitBytes", "an integer of at least 1", this.queueLimitBytes);
    }
    this.#writeTimeoutMs = positiveMs(
      "writeTimeoutMs",
      options.writeTimeoutMs ?? defaults.linkWriteTimeoutMs,
    );
    this.#keepAliveMs = options.keepAliveMs ?? defaults.linkKeepAliveMs;
    if (!(Number.isFinite(this.#keepAliveMs) && this.#keepAliveMs >= 0)) {
      throw invalidOption(
        "keepAliveMs",
        "a non-negative number of milliseconds",
        this.#keepAliveMs,
      );
    }
    this.#closeTimeoutMs = positiveMs(
      "closeTimeoutMs",
      options.closeTimeoutMs ?? defaults.linkCloseTimeoutMs,
    );
    this.#echoIntervalMs = positiveMs(
      "echoIntervalMs",
      options.echoIntervalMs ?? defaults.linkEchoIntervalMs,
    );
    this.#echoMisses = options.echoMisses ?? defaults.linkEchoMisses;
    if (!(Number.isInteger(this.#echoMisses) && this.#echoMisses >= 1)) {
      throw invalidOption("echoMisses", "an integer of at least 1", this.#echoMisses);
    }
    this.#clock = options.clock ?? backgroundClock;
    this.#tls = options.tls;
    const preflight = options.preflight;
    if (preflight !== undefined && (typeof preflight !== "object" || preflight === null)) {
      throw invalidOption("preflight", "an object", preflight);
    }
    if (
      options.udpEchoPort !== undefined &&
      preflight?.udpEchoPort !== undefined &&
      options.udpEchoPort !== preflight.udpEchoPort
    ) {
      throw invalidOption(
        "udpEchoPort",
        `the same as preflight.udpEchoPort (${preflight.udpEchoPort}) when both are given`,
        options.udpEchoPort,
      );
    }
    if (options.guard instanceof Guard) {
      // A guard of your own keeps its own preflight: ignoring these would drop the protection silently.
      if (options.udpEchoPort !== undefined || preflight !== undefined) {
        throw invalidOption(
          options.udpEchoPort !== undefined ? "udpEchoPort" : "preflight",
          "left out when guard is a Guard instance (give the Guard its preflight)",
          options.udpEchoPort ?? preflight,
        );
      }
      this.guard = options.guard;
    } else {
      const given = options.guard ?? {};
      if (typeof given !== "object" || given === null)
        throw invalidOption("guard", "a Guard or GuardOptions", given);
      const own: GuardOptions = { clock: this.#clock, ...given };
      if (options.udpEchoPort !== undefined || preflight !== undefined) {
        own.preflight = {
          ...(options.udpEchoPort !== undefined ? { udpEchoPort: options.udpEchoPort } : {}),
          ...preflight,
          ...own.preflight,
        };
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
      queuedBytes: this.#queuedBytes,
      dropped: this.#dropped,
      written: this.#written,
      connects: this.#connects,
      failures: this.#failures,
      disconnects: this.#disconnects,
      requeued: this.#requeued,
    };
  }

  /**
   * Queues a record for the collector. Returns true when it was kept and
   * nothing was dropped for it; false once closed, or when the queue's
   * bounds dropped a record (the oldest, or this one if it alone is too big).
   */
  send(record: Buffer | string): boolean {
    if (this.#state === "closed") return false;
    const size = byteLength(record);
    if (size > this.queueLimitBytes) {
      this.#drop(1);
      return false;
    }
    this.#queue.push(record);
    this.#queuedBytes += size;
    let dropped = 0;
    while (this.#queue.length > this.queueLimit || this.#queuedBytes > this.queueLimitBytes) {
      this.#queuedBytes -= byteLength(this.#queue.shift() as Buffer | string);
      dropped++;
    }
    if (dropped > 0) this.#drop(dropped);
    this.#flush();
    return dropped === 0;
  }

  /**
   * Writes what is queued if connected, then closes the link for good.
   * Resolves within `timeoutMs` real milliseconds (default `closeTimeoutMs`
   * times the guard's time scale): a peer that does
   * not close its side in time gets its connection destroyed.
   */
  close(timeoutMs: number = this.#closeTimeoutMs * this.guard.timeScale): Promise<void> {
    if (this.#closing) return this.#closing;
    positiveMs("timeoutMs", timeoutMs);
    this.#state = "closed";
    this.#timer?.cancel();
    const tracked = this.#unwatch !== null;
    this.#stopWatching();
    // Records still queued (not connected, or the socket had not drained)
    // are never written now: counted as dropped.
    const unsent = this.#queue.length;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    if (unsent > 0) this.#drop(unsent);
    this.#abort.abort();
    const socket = this.#socket;
    if (!socket || socket.destroyed) {
      this.#closing = Promise.resolve();
      return this.#closing;
    }
    this.#closing = new Promise<void>((resolve) => {
      const timer = this.#clock.setTimer(() => {
        // Records the kernel has not seen acknowledged die with the socket:
        // counted as dropped (only where the send queue is tracked: Linux).
        if (tracked) this.#countUnacknowledged(socket);
        socket.destroy();
      }, timeoutMs);
      socket.once("close", () => {
        timer.cancel();
        resolve();
      });
      socket.end();
    });
    return this.#closing;
  }

  /** Drops the tracked records a last read of the send queue does not show acknowledged. */
  #countUnacknowledged(socket: net.Socket): void {
    const key = tcpTableKey(socket);
    const sample = key ? sampleSendQueueNow(key) : null;
    if (sample) {
      this.#confirm(sample, {
        end: this.#inFlightShifted + this.#inFlight.length,
        userBytes: socket.writableLength,
      });
    }
    const lost = this.#inFlight.length + this.#forgotten;
    this.#inFlight = [];
    this.#inFlightBytes = 0;
    this.#forgotten = 0;
    if (lost > 0) this.#drop(lost);
  }

  #drop(count: number): void {
    this.#dropped += count;
    this.emit("dropped", this.#dropped);
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
    if (this.#keepAliveMs > 0) socket.setKeepAlive(true, this.#keepAliveMs);
    this.#set("connected");
    this.emit("connected");
    let lastError: Error | undefined;
    socket.on("error", (error) => {
      lastError = error;
    });
    socket.on("data", () => {}); // a collector may answer; the link does not read replies
    socket.once("close", () => {
      this.#socket = null;
      this.#draining = false;
      this.#writeTimer?.cancel();
      this.#writeTimer = null;
      this.#stopWatching();
      const unconfirmed = this.#inFlight;
      const forgotten = this.#forgotten;
      this.#inFlight = [];
      this.#inFlightBytes = 0;
      this.#forgotten = 0;
      this.#inFlightShifted = 0;
      if (this.#state === "closed") return;
      const verdict = (socket as DeadSocket)[deadPeer];
      if (verdict) this.#putBack(unconfirmed, forgotten);
      this.#disconnects++;
      this.emit("disconnected", verdict ?? lastError);
      this.#connect();
    });
    this.#watchAcks(socket);
    this.#watchHost(socket);
    this.#flush();
  }

  #retryLater(error: Error): void {
    if (this.#state === "closed") return;
    // A fast skip by an open breaker is not a new failure of the peer.
    if ((error as SynlimitError).code !== "SYNLIMIT_BREAKER_OPEN") this.#failures++;
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
      this.#queuedBytes -= byteLength(record);
      this.#written++;
      this.#wroteAt = this.#clock.now();
      if (this.#unwatch) this.#track(record);
      if (!socket.write(record)) {
        this.#draining = true;
        // No drain in time: nobody ACKs what was sent, the peer is gone.
        const writeTimeoutMs = this.#writeTimeoutMs * this.guard.timeScale;
        this.#writeTimer = this.#clock.setTimer(() => {
          this.#writeTimer = null;
          this.#declareDead(socket, linkStalled(this, writeTimeoutMs));
        }, writeTimeoutMs);
        socket.once("drain", () => {
          this.#writeTimer?.cancel();
          this.#writeTimer = null;
          this.#draining = false;
          this.#flush();
        });
        return;
      }
    }
  }

  /** The link's own verdict: records the kernel had not seen acknowledged go back in the queue. */
  #declareDead(socket: net.Socket, error: Error): void {
    (socket as DeadSocket)[deadPeer] = error;
    // A reset, not a FIN: a plain close leaves the kernel an orphan socket
    // that keeps retransmitting to the dead host for minutes and may deliver
    // the records later, after the link has put them back (twice) or counted
    // them dropped (wrongly). A TLS socket cannot be reset itself; the TCP
    // socket under it (the guard's, given to tls.connect) can, and the TLS
    // socket closes with it.
    try {
      tcpUnder(socket).resetAndDestroy();
    } catch {
      socket.destroy(error);
    }
  }

  #putBack(records: Array<Buffer | string>, forgotten: number): void {
    if (forgotten > 0) this.#drop(forgotten);
    if (records.length === 0) return;
    this.#requeued += records.length;
    this.#queue.unshift(...records);
    for (const r of records) this.#queuedBytes += byteLength(r);
    // The queue's bounds hold as for send(): the oldest go first, counted.
    let dropped = 0;
    while (this.#queue.length > this.queueLimit || this.#queuedBytes > this.queueLimitBytes) {
      this.#queuedBytes -= byteLength(this.#queue.shift() as Buffer | string);
      dropped++;
    }
    if (dropped > 0) this.#drop(dropped);
  }

  #track(record: Buffer | string): void {
    this.#inFlight.push(record);
    this.#inFlightBytes += byteLength(record);
    // Bounded like the queue: the oldest are most likely acknowledged already.
    while (
      this.#inFlight.length > this.queueLimit ||
      (this.#inFlightBytes > this.queueLimitBytes && this.#inFlight.length > 1)
    ) {
      this.#inFlightBytes -= byteLength(this.#inFlight.shift() as Buffer | string);
      this.#inFlightShifted++;
      this.#forgotten++;
    }
  }

  /**
   * Linux: the kernel's send queue of this connection, read from
   * /proc/net/tcp while the link writes. Bytes it retransmits without any
   * acknowledgement for writeTimeoutMs mean the peer is gone, whether or not
   * the send buffer ever fills (a link that writes little never fills it).
   */
  #watchAcks(socket: net.Socket): void {
    if (!sendQueueWatchAvailable()) return;
    const key = tcpTableKey(socket);
    if (!key) return;
    const timeoutMs = this.#writeTimeoutMs * this.guard.timeScale;
    let stallSince: number | null = null;
    let pending = false; // the last read found bytes not acknowledged
    let snapshot = { end: 0, userBytes: 0 };
    this.#unwatch = watchSendQueue({
      key,
      // A quarter of the timeout, and never busier than 10 reads a second.
      intervalMs: Math.max(timeoutMs / 4, 100),
      prepare: () => {
        const active =
          pending ||
          socket.writableLength > 0 ||
          (this.#wroteAt !== null && this.#clock.now() - this.#wroteAt < timeoutMs);
        // What was written when the table is read: later writes stay tracked.
        snapshot = {
          end: this.#inFlightShifted + this.#inFlight.length,
          userBytes: socket.writableLength,
        };
        return active;
      },
      sample: (sample) => {
        if (!sample || socket.destroyed || this.#socket !== socket) return;
        this.#confirm(sample, snapshot);
        pending = sample.unackedBytes > 0;
        if (sample.unackedBytes === 0 || sample.retransmits === 0) {
          stallSince = null;
          return;
        }
        // A retransmission timeout fired and nothing was acknowledged since.
        const now = this.#clock.now();
        stallSince ??= now;
        if (now - stallSince >= timeoutMs) {
          this.#declareDead(
            socket,
            linkUnacknowledged(this, now - stallSince, sample.unackedBytes),
          );
        }
      },
    });
  }

  /** Forgets tracked records the sample shows acknowledged (older than the unacknowledged tail). */
  #confirm(sample: SendQueueSample, snapshot: { end: number; userBytes: number }): void {
    // Unacknowledged: the kernel's tx_queue plus what was still in Node's
    // buffer; counted in record bytes from the newest record of the
    // snapshot back (TLS adds bytes on the wire: this keeps more, never fewer).
    const unconfirmedBytes = sample.unackedBytes + snapshot.userBytes;
    // The snapshot's newest record, where it is now (the bounds may have shifted the list since).
    let keepFrom = snapshot.end - this.#inFlightShifted;
    if (keepFrom <= 0) return; // all of the snapshot already forgotten: nothing to confirm against
    let bytes = 0;
    while (keepFrom > 0 && bytes < unconfirmedBytes) {
      keepFrom--;
      bytes += byteLength(this.#inFlight[keepFrom] as Buffer | string);
    }
    if (bytes >= unconfirmedBytes) this.#forgotten = 0; // those forgotten were older still
    for (let i = 0; i < keepFrom; i++) {
      this.#inFlightBytes -= byteLength(this.#inFlight[i] as Buffer | string);
    }
    this.#inFlight.splice(0, keepFrom);
    this.#inFlightShifted += keepFrom;
  }

  /** With a preflight (UDP echo): the connected peer's host answers, or the link reconnects. */
  #watchHost(socket: net.Socket): void {
    if (!this.guard.canProbe) return;
    let misses = 0;
    const probeNext = () => {
      this.#echoTimer = this.#clock.setTimer(async () => {
        this.#echoTimer = null;
        const outcome = await this.guard
          .probe({ host: this.host, port: this.port }, this.#abort.signal)
          ?.catch(() => null);
        if (socket.destroyed || this.#socket !== socket || this.#state !== "connected") return;
        // "refused" is an answer from the host (its echo port is closed): the host is there.
        if (outcome === "silent" || outcome === "error") misses++;
        else misses = 0;
        if (misses >= this.#echoMisses) {
          this.#declareDead(socket, linkPeerSilent(this, misses));
          return;
        }
        probeNext();
      }, this.#echoIntervalMs * this.guard.timeScale);
      this.#echoTimer.unref?.();
    };
    probeNext();
  }

  #stopWatching(): void {
    this.#unwatch?.();
    this.#unwatch = null;
    this.#echoTimer?.cancel();
    this.#echoTimer = null;
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

/** Marks a connection the link itself found dead. */
const deadPeer = Symbol("synlimit.deadPeer");
type DeadSocket = net.Socket & { [deadPeer]?: Error };

function byteLength(record: Buffer | string): number {
  return typeof record === "string" ? Buffer.byteLength(record) : record.length;
}

function positiveMs(name: string, value: number): number {
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw invalidOption(name, "a positive number of milliseconds", value);
  }
  return value;
}

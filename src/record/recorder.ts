import { AsyncLocalStorage } from "node:async_hooks";
import diagnostics from "node:diagnostics_channel";
import { closeSync, openSync, writeSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { getSystemErrorName } from "node:util";
import { formatEndpoint, SynlimitError } from "../errors.js";
import { channelNames } from "../gate/channels.js";
import type { AttemptEvent } from "../gate/types.js";
import type { RoleMap } from "./roles.js";
import { formatRecord, type Outcome } from "./trace.js";

/** The gate name a plain recording uses, so its events are told apart from other gates'. */
export const recordGateName = "synlimit-record";

export interface RecorderOptions {
  /** Trace file, truncated when the recorder starts. */
  file: string;
  /** Only events of the gate with this name are recorded. */
  gate: string;
  roles?: RoleMap;
  /**
   * Under a limiter every line carries waitMs (0 included); without one none
   * does. Default: limited unless the gate is the plain recording's.
   */
  limited?: boolean;
}

interface Open {
  queuedAt: number;
  dest: string;
  role: string | undefined;
  cause: Cause | undefined;
  startedAt: number | null;
}

interface Cause {
  id: number;
  endedAt: number;
}

const endChannels = {
  connected: channelNames.connected,
  failed: channelNames.failed,
  timeout: channelNames.timeout,
  cancelled: channelNames.cancelled,
  rejected: channelNames.rejected,
} as const;

/**
 * Writes every attempt of one gate to a trace file, one line when the attempt
 * ends (synchronously, so a crash or `process.exit()` loses nothing that
 * ended); attempts still open at exit are written as `cancelled`.
 *
 * Causality: the end of an attempt enters an async context, so a connect the
 * program makes from that attempt's callbacks (its 'error' or 'connect'
 * handler, a timer or nextTick started there) carries `after` and `gapMs`.
 */
export class Recorder {
  readonly file: string;
  readonly startedAt = performance.now();
  #fd: number;
  #written = 0;
  readonly #open = new Map<number, Open>();
  readonly #context = new AsyncLocalStorage<Cause>();
  /** Attempts whose request is still on the stack: their end is no cause for later code. */
  readonly #inRequest = new Set<number>();
  readonly #gate: string;
  readonly #roles: RoleMap | undefined;
  readonly #limited: boolean;
  readonly #subscriptions: Array<[string, (message: unknown) => void]> = [];
  readonly #onExit = () => this.close();

  constructor(options: RecorderOptions) {
    this.file = options.file;
    this.#gate = options.gate;
    this.#roles = options.roles;
    this.#limited = options.limited ?? options.gate !== recordGateName;
    try {
      this.#fd = openSync(options.file, "w");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new SynlimitError(
        "SYNLIMIT_USAGE",
        `cannot write the trace to ${options.file}: ${code}`,
      );
    }
    const begin = (m: unknown) => this.#begin(m as AttemptEvent);
    for (const name of [channelNames.queued, channelNames.start]) this.#subscribe(name, begin);
    for (const [kind, name] of Object.entries(endChannels)) {
      this.#subscribe(name, (m) => this.#end(m as AttemptEvent, kind as keyof typeof endChannels));
    }
    process.once("exit", this.#onExit);
  }

  /** Attempts written so far. */
  get written(): number {
    return this.#written;
  }

  /** Writes the attempts still open as cancelled and closes the file. */
  close(): void {
    if (this.#fd < 0) return;
    for (const [name, fn] of this.#subscriptions) diagnostics.unsubscribe(name, fn);
    process.off("exit", this.#onExit);
    const now = performance.now();
    for (const [id, open] of this.#open) {
      // Still queued or pending when the program ended: it never learned the outcome.
      const startedAt = open.startedAt ?? now;
      this.#write(id, open, startedAt - open.queuedAt, now - startedAt, "cancelled");
    }
    this.#open.clear();
    closeSync(this.#fd);
    this.#fd = -1;
  }

  #subscribe(name: string, fn: (message: unknown) => void): void {
    diagnostics.subscribe(name, fn);
    this.#subscriptions.push([name, fn]);
  }

  /** The first event of an attempt is published inside the program's connect call. */
  #begin(e: AttemptEvent): void {
    if (e.gate !== this.#gate) return;
    const known = this.#open.get(e.id);
    if (known) {
      if (e.state === "pending") known.startedAt = e.at;
      return;
    }
    this.#open.set(e.id, this.#opened(e));
    this.#inRequest.add(e.id);
    process.nextTick(() => this.#inRequest.delete(e.id));
  }

  #opened(e: AttemptEvent): Open {
    const dest = formatEndpoint(e);
    return {
      queuedAt: e.at - e.waitMs - e.pendingMs,
      dest,
      role: this.#roles?.roleOf(e.host, e.port),
      cause: this.#context.getStore(),
      startedAt: e.state === "pending" ? e.at : null,
    };
  }

  #end(e: AttemptEvent, kind: keyof typeof endChannels): void {
    if (e.gate !== this.#gate || this.#fd < 0) return;
    const open = this.#open.get(e.id) ?? this.#opened(e);
    this.#open.delete(e.id);
    this.#write(e.id, open, e.waitMs, e.pendingMs, outcomeOf(kind, e.error));
    // Code that runs because this attempt ended (its handlers, timers they
    // start) is this attempt's consequence.
    if (!this.#inRequest.has(e.id)) this.#context.enterWith({ id: e.id, endedAt: e.at });
  }

  #write(id: number, open: Open, waitMs: number, durationMs: number, outcome: Outcome): void {
    const t = open.queuedAt - this.startedAt;
    const line = formatRecord({
      id,
      t,
      dest: open.dest,
      durationMs,
      outcome,
      ...(open.role !== undefined && { role: open.role }),
      ...(open.cause !== undefined && {
        after: open.cause.id,
        gapMs: Math.max(0, open.queuedAt - open.cause.endedAt),
      }),
      ...(this.#limited && { waitMs }),
    });
    writeSync(this.#fd, line);
    this.#written++;
  }
}

function outcomeOf(kind: keyof typeof endChannels, error: unknown): Outcome {
  switch (kind) {
    case "connected":
      return "connected";
    case "timeout":
      return "timeout";
    case "cancelled":
      return "cancelled";
    case "rejected":
      return "refused";
    case "failed": {
      const name =
        typeof error === "number"
          ? safeErrorName(error)
          : ((error as { code?: unknown } | null)?.code as string | undefined);
      if (name === "ECONNREFUSED") return "refused";
      if (name === "ETIMEDOUT") return "timeout";
      if (name === "ECANCELED") return "cancelled";
      return "failed";
    }
  }
}

function safeErrorName(status: number): string | undefined {
  try {
    return getSystemErrorName(status);
  } catch {
    return undefined;
  }
}

import net from "node:net";
import { type Clock, systemClock } from "../clock.js";
import { formatEndpoint, invalidOption } from "../errors.js";

/**
 * The incident's two-thread test program: attempt A to a target that stays
 * pending, then, `delayMs` later, attempt B to a live target. On a host that
 * serialises connect attempts B completes the moment A ends.
 */
export interface ConnectTestOptions {
  host: string;
  port: number;
  /** Where the live attempt goes (default: `host`). */
  liveHost?: string;
  livePort: number;
  /** Delay between the two attempts (the incident: 500 ms). */
  delayMs: number;
  /** Give up on an attempt after this long (default: leave it to the OS). */
  timeoutMs?: number;
  /**
   * End the pending attempt once the live one has ended while it was still
   * pending: the verdict cannot change any more (default false: the
   * incident's program waited for the OS). The CLI sets it without --timeout.
   */
  stopWhenCertain?: boolean;
  signal?: AbortSignal;
  clock?: Clock;
}

export type Who = "pending" | "live";

export interface ConnectTestLine {
  readonly who: Who;
  /** Milliseconds since the test started. */
  readonly atMs: number;
  readonly kind: "trying" | "connected" | "error" | "stopped";
  readonly text: string;
  readonly code?: string;
}

export interface AttemptOutcome {
  readonly target: string;
  readonly startedAtMs: number;
  readonly endedAtMs: number;
  readonly connected: boolean;
  readonly error?: { code?: string; message: string };
  /** Ended by the test itself once the verdict was certain (no `--timeout`: the OS would wait ~127 s). */
  readonly stopped?: true;
}

export type VerdictKind = "serialized" | "not-serialized" | "inconclusive";

export interface ConnectTestResult {
  readonly lines: ConnectTestLine[];
  readonly pending: AttemptOutcome;
  readonly live: AttemptOutcome;
  readonly verdict: { kind: VerdictKind; waitedMs: number; text: string };
}

/** How close to A's end B must complete to count as released by it. */
const HANDOFF_TOLERANCE_MS = 50;

export async function connectTest(options: ConnectTestOptions): Promise<ConnectTestResult> {
  validate(options);
  const clock = options.clock ?? systemClock;
  const t0 = clock.now();
  const lines: ConnectTestLine[] = [];
  const log = (line: Omit<ConnectTestLine, "atMs">) =>
    lines.push({ ...line, atMs: clock.now() - t0 });
  const attempt = (who: Who, host: string, port: number) =>
    connectOnce(who, host, port, options, clock, t0, log);

  const pendingA = attempt("pending", options.host, options.port);
  await delay(options.delayMs, clock, options.signal);
  const liveA = attempt("live", options.liveHost ?? options.host, options.livePort);
  // Once the live attempt has ended while the first is still pending, the
  // verdict cannot change: waiting on for the OS to give up (Linux: up to
  // 127 s) would only delay it.
  if (options.stopWhenCertain === true) void liveA.done.then(() => pendingA.stop());
  const [pending, live] = await Promise.all([pendingA.done, liveA.done]);
  return { lines, pending, live, verdict: judge(pending, live, options) };
}

function judge(
  pending: AttemptOutcome,
  live: AttemptOutcome,
  options: ConnectTestOptions,
): ConnectTestResult["verdict"] {
  const waitedMs = live.endedAtMs - live.startedAtMs;
  const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  if (pending.connected) {
    return {
      kind: "inconclusive",
      waitedMs,
      text: `${pending.target} accepted the connection, so no attempt stayed pending: use a port where the SYN is silently dropped (e.g. synlimit tarpit)`,
    };
  }
  if (pending.endedAtMs <= live.startedAtMs) {
    // Our own --timeout ended it, not the network: the fix is the flag, not the port.
    if (pending.error?.code === "ETIMEDOUT" && options.timeoutMs !== undefined) {
      return {
        kind: "inconclusive",
        waitedMs,
        text: `--timeout ${options.timeoutMs} ms ended the pending attempt before the live one started (--delay ${options.delayMs} ms): use a --timeout longer than --delay`,
      };
    }
    return {
      kind: "inconclusive",
      waitedMs,
      text: `${pending.target} failed at once (${pending.error?.code ?? "error"}) before the live attempt started, so nothing was pending: use a port where the SYN is silently dropped`,
    };
  }
  if (!live.connected) {
    return {
      kind: "inconclusive",
      waitedMs,
      text: `the live connect to ${live.target} failed (${live.error?.message ?? "error"}): check --live-port`,
    };
  }
  if (live.endedAtMs < pending.endedAtMs) {
    return {
      kind: "not-serialized",
      waitedMs,
      text: `the live connect completed in ${Math.round(waitedMs)} ms while the first attempt was still pending: connect attempts are not serialized`,
    };
  }
  const gap = live.endedAtMs - pending.endedAtMs;
  if (gap <= HANDOFF_TOLERANCE_MS) {
    return {
      kind: "serialized",
      waitedMs,
      text: `the live connect waited ${secs(waitedMs)} for the pending one and completed ${Math.round(gap)} ms after it ended: connect attempts are serialized`,
    };
  }
  return {
    kind: "inconclusive",
    waitedMs,
    text: `the live connect took ${secs(waitedMs)} and completed ${Math.round(gap)} ms after the pending attempt ended: slow, but not clearly waiting for it`,
  };
}

function connectOnce(
  who: Who,
  host: string,
  port: number,
  options: ConnectTestOptions,
  clock: Clock,
  t0: number,
  log: (line: Omit<ConnectTestLine, "atMs">) => void,
): { done: Promise<AttemptOutcome>; stop(): void } {
  const target = formatEndpoint({ host, port });
  let stop = () => {};
  const done = new Promise<AttemptOutcome>((resolve) => {
    const startedAtMs = clock.now() - t0;
    log({ who, kind: "trying", text: `Trying to connect ${target}` });
    const socket = net.connect({ host, port });
    const timer =
      options.timeoutMs === undefined
        ? null
        : clock.setTimer(() => {
            const err = Object.assign(
              new Error(`no answer from ${target} within ${options.timeoutMs} ms`),
              { code: "ETIMEDOUT" },
            );
            socket.destroy(err);
          }, options.timeoutMs);
    const onAbort = () =>
      socket.destroy(Object.assign(new Error("aborted"), { code: "ABORT_ERR" }));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    let ended = false;
    const finish = (error?: Error & { code?: string }, stopped = false) => {
      if (ended) return;
      ended = true;
      timer?.cancel();
      options.signal?.removeEventListener("abort", onAbort);
      const endedAtMs = clock.now() - t0;
      if (stopped) {
        log({ who, kind: "stopped", text: "Stopped: the verdict is certain" });
      } else if (error) {
        log({
          who,
          kind: "error",
          text: error.message,
          ...(error.code ? { code: error.code } : {}),
        });
      } else {
        log({ who, kind: "connected", text: "Connected!" });
      }
      socket.destroy();
      resolve({
        target,
        startedAtMs,
        endedAtMs,
        connected: !error && !stopped,
        ...(error
          ? { error: { message: error.message, ...(error.code ? { code: error.code } : {}) } }
          : {}),
        ...(stopped ? { stopped: true as const } : {}),
      });
    };
    socket.once("connect", () => finish());
    socket.once("error", (error) => finish(error));
    stop = () => finish(undefined, true);
  });
  return { done, stop: () => stop() };
}

function delay(ms: number, clock: Clock, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = clock.setTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      timer.cancel();
      resolve();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function validate(o: ConnectTestOptions): void {
  if (typeof o.host !== "string" || o.host === "")
    throw invalidOption("host", "a host name or address", o.host);
  for (const [name, port] of [
    ["port", o.port],
    ["livePort", o.livePort],
  ] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw invalidOption(name, "an integer from 1 to 65535", port);
    }
  }
  if (!(Number.isFinite(o.delayMs) && o.delayMs >= 0)) {
    throw invalidOption("delayMs", "a non-negative number", o.delayMs);
  }
  if (o.timeoutMs !== undefined && !(Number.isFinite(o.timeoutMs) && o.timeoutMs > 0)) {
    throw invalidOption("timeoutMs", "a positive number", o.timeoutMs);
  }
  if (o.stopWhenCertain !== undefined && typeof o.stopWhenCertain !== "boolean") {
    throw invalidOption("stopWhenCertain", "a boolean", o.stopWhenCertain);
  }
}

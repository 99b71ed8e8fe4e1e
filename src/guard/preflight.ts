import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import net from "node:net";
import type { Clock } from "../clock.js";
import { aborted } from "../errors.js";

/**
 * What a preflight learned: `alive` (the echo came back, or the custom check
 * passed), `refused` (ICMP port unreachable, reported on a connected UDP
 * socket as ECONNREFUSED), `silent` (nothing within the deadline: dead, or
 * UDP filtered), or `error` (a local failure, e.g. no route).
 */
export type PreflightOutcome = "alive" | "refused" | "silent" | "error";

export interface PreflightTarget {
  host: string;
  port: number;
}

/** A caller-supplied liveness test; resolve true for alive. */
export type PreflightCheck = (target: PreflightTarget, signal: AbortSignal) => Promise<boolean>;

/**
 * RFC 862 echo over a *connected* UDP socket: a random nonce goes out, only
 * the same bytes from the same peer count as alive. No TCP attempt, so a
 * dead peer never holds a connect slot.
 */
export function udpEcho(
  target: PreflightTarget,
  timeoutMs: number,
  clock: Clock,
  signal?: AbortSignal,
): Promise<PreflightOutcome> {
  if (signal?.aborted) return Promise.reject(aborted("preflight", signal.reason));
  const socket = dgram.createSocket(net.isIPv6(target.host) ? "udp6" : "udp4");
  const nonce = randomBytes(16);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (outcome: PreflightOutcome | Error) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      signal?.removeEventListener("abort", onAbort);
      socket.close();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    // As the connect deadline: a timer that ran late (a blocked loop) waits
    // one turn for pending I/O, so an echo already received is not "silent".
    const dueAt = clock.now() + timeoutMs;
    const timer = clock.setTimer(
      () => (clock.now() > dueAt ? setImmediate(() => finish("silent")) : finish("silent")),
      timeoutMs,
    );
    const onAbort = () => finish(aborted("preflight", signal?.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.on("error", (error: NodeJS.ErrnoException) =>
      finish(error.code === "ECONNREFUSED" ? "refused" : "error"),
    );
    socket.on("message", (message) => {
      if (message.equals(nonce)) finish("alive");
    });
    socket.connect(target.port, target.host, () => {
      if (!settled) socket.send(nonce);
    });
  });
}

/** Runs a custom check with its own deadline; a throw or a false is not alive. */
export async function customCheck(
  check: PreflightCheck,
  target: PreflightTarget,
  timeoutMs: number,
  clock: Clock,
  signal?: AbortSignal,
): Promise<PreflightOutcome> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let timer: { cancel(): void } | undefined;
  const timeout = new Promise<PreflightOutcome>((resolve) => {
    timer = clock.setTimer(() => {
      controller.abort();
      resolve("silent");
    }, timeoutMs);
  });
  try {
    const result = await Promise.race([
      check(target, controller.signal).then(
        (ok): PreflightOutcome => (ok ? "alive" : "refused"),
        (): PreflightOutcome => "error",
      ),
      timeout,
    ]);
    if (signal?.aborted) throw aborted("preflight", signal.reason);
    return result;
  } finally {
    timer?.cancel();
    signal?.removeEventListener("abort", onAbort);
  }
}

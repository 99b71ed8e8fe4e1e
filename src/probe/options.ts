import { type Clock, isClock, systemClock } from "../clock.js";
import { type Endpoint, invalidOption } from "../errors.js";
import { type ProxySpec, parseProxyUrl } from "./address.js";

export interface ProbeOptions {
  /** Where attempts stay pending (default: a local tarpit on loopback, another address than the live listener's where the OS allows). */
  blackhole?: Endpoint;
  /**
   * Targets that accept at once (default: local listeners on 127.0.0.1 and
   * ::1). The first takes the trial connects; the others serve as new
   * destinations for the rate test.
   */
  live?: Endpoint | readonly Endpoint[];
  /** Probe through an egress proxy: a `ProxySpec`, or socks5:// / http:// URL. */
  via?: ProxySpec | string | null;
  /** The most attempts to hold pending (default 64). */
  max?: number;
  /** How long a connect may take before it counts as waiting (default: from the baseline). */
  settleMs?: number;
  /** Also list the processes on this host with connect attempts pending. */
  holders?: boolean;
  /**
   * After the verdict, keep one attempt to the blackhole open until the OS
   * gives up on it, and report how long that took (minutes on a default host).
   */
  measureGiveUp?: boolean;
  signal?: AbortSignal;
  clock?: Clock;
}

export const PROBE_DEFAULT_MAX = 64;
/** Beyond this the probe would mostly measure its own file-descriptor limit. */
export const PROBE_MAX_LIMIT = 1000;
/**
 * The longest settle window a user may ask for: a trial over the limit costs
 * up to three windows, so a minute each is already a probe of several
 * minutes; longer is a typo (seconds given as ms × 1000).
 */
export const PROBE_MAX_SETTLE_MS = 60_000;

export interface NormalizedProbeOptions {
  blackhole: Endpoint | null;
  live: Endpoint[];
  via: ProxySpec | null;
  max: number;
  settleMs: number | null;
  holders: boolean;
  measureGiveUp: boolean;
  signal: AbortSignal | undefined;
  clock: Clock;
}

/** Validates by hand, so a bad option fails at once with the option's name. */
export function normalize(options: ProbeOptions): NormalizedProbeOptions {
  if (typeof options !== "object" || options === null)
    throw invalidOption("options", "an object", options);
  const endpoint = (name: string, e: unknown): Endpoint => {
    const x = e as Endpoint;
    if (typeof x !== "object" || x === null || typeof x.host !== "string" || x.host === "") {
      throw invalidOption(name, "{ host, port }", e);
    }
    if (!Number.isInteger(x.port) || x.port < 1 || x.port > 65535) {
      throw invalidOption(`${name}.port`, "an integer from 1 to 65535", x.port);
    }
    return { host: x.host, port: x.port };
  };
  const max = options.max ?? PROBE_DEFAULT_MAX;
  if (!Number.isInteger(max) || max < 1 || max > PROBE_MAX_LIMIT) {
    throw invalidOption("max", `an integer from 1 to ${PROBE_MAX_LIMIT}`, max);
  }
  const settleMs = options.settleMs ?? null;
  if (
    settleMs !== null &&
    !(
      typeof settleMs === "number" &&
      Number.isFinite(settleMs) &&
      settleMs > 0 &&
      settleMs <= PROBE_MAX_SETTLE_MS
    )
  ) {
    throw invalidOption(
      "settleMs",
      `a number of milliseconds above 0, at most ${PROBE_MAX_SETTLE_MS}`,
      settleMs,
    );
  }
  const live =
    options.live === undefined ? [] : Array.isArray(options.live) ? options.live : [options.live];
  let via: ProxySpec | null = null;
  if (typeof options.via === "string") via = parseProxyUrl(options.via);
  else if (options.via) {
    const v = options.via;
    if (v.protocol !== "socks5" && v.protocol !== "http") {
      throw invalidOption("via.protocol", "socks5 or http", v.protocol);
    }
    via = { ...v, ...endpoint("via", v) };
  }
  const clock = options.clock ?? systemClock;
  if (!isClock(clock)) throw invalidOption("clock", "an object with now() and setTimer()", clock);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw invalidOption("signal", "an AbortSignal", options.signal);
  }
  return {
    blackhole: options.blackhole === undefined ? null : endpoint("blackhole", options.blackhole),
    live: live.map((l, i) => endpoint(`live[${i}]`, l)),
    via,
    max,
    settleMs,
    holders: options.holders === true,
    measureGiveUp: options.measureGiveUp === true,
    signal: options.signal,
    clock,
  };
}

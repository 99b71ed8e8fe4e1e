import { SynlimitError } from "../errors.js";
import { parseNumberText } from "./number-text.js";
import type { TimingOption } from "./timing.js";
import { checkTimingOption, isScheduleTiming, timingNames } from "./timing.js";
import type { Policy, RateOptions } from "./types.js";

/**
 * The one set of rules for limit settings, whoever reads them: the gate's
 * constructor, `install()`, the proxy's options, its config file and its
 * admin API. Each check returns the value in canonical form or calls `fail`
 * with what was expected; callers choose the error (an option error, a
 * config line, a CLI flag).
 */
export type Fail = (name: string, expected: string, got: unknown) => never;

export const expected = {
  maxInFlight: 'a positive integer, or Infinity / "unlimited" for no limit',
  policy: "one of queue, reject, rate",
  timeScale: "a positive finite number",
  durationMs: "a positive finite number of milliseconds",
  timing: `one of ${timingNames.join(", ")}, { connectTimeoutMs }, a positive finite number of milliseconds, or a SYN schedule ("syn:0,1000,3000;giveup:21000" or { synAtMs, giveUpMs })`,
  ratePerSecond: "a positive finite number",
  workingSetSize: "a non-negative integer",
} as const;

/** A positive integer, or unlimited (`Infinity` or the JSON-friendly `"unlimited"`). */
export function checkMaxInFlight(value: unknown, name: string, fail: Fail): number {
  const m = value === "unlimited" ? Number.POSITIVE_INFINITY : value;
  if (m === Number.POSITIVE_INFINITY) return m;
  if (typeof m === "number" && Number.isSafeInteger(m) && m >= 1) return m;
  return fail(name, expected.maxInFlight, value);
}

export function checkPolicy(value: unknown, name: string, fail: Fail): Policy {
  if (value === "queue" || value === "reject" || value === "rate") return value;
  return fail(name, expected.policy, value);
}

export function checkTimeScale(value: unknown, name: string, fail: Fail): number {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  return fail(name, expected.timeScale, value);
}

/** A duration: finite, so it can never become an immediate or never-ending timer by accident. */
export function checkDurationMs(value: unknown, name: string, fail: Fail): number {
  if (typeof value === "number" && Number.isFinite(value) && value > 0) return value;
  return fail(name, expected.durationMs, value);
}

/** A timing name, `{ connectTimeoutMs }`, plain milliseconds or a SYN schedule, as a TimingOption. */
export function checkTiming(value: unknown, name: string, fail: Fail): TimingOption {
  if (typeof value === "string" && (timingNames as readonly string[]).includes(value)) {
    return value as TimingOption;
  }
  if (isScheduleTiming(value)) {
    try {
      return checkTimingOption(value, name);
    } catch (error) {
      if (!(error instanceof SynlimitError)) throw error;
      return fail(name, `${expected.timing}: ${error.message}`, value);
    }
  }
  if (typeof value === "number") {
    return { connectTimeoutMs: checkDurationMs(value, name, fail) };
  }
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "connectTimeoutMs") {
      const ms = (value as { connectTimeoutMs: unknown }).connectTimeoutMs;
      return { connectTimeoutMs: checkDurationMs(ms, `${name}.connectTimeoutMs`, fail) };
    }
  }
  return fail(name, expected.timing, value);
}

export function checkRate(value: unknown, name: string, fail: Fail): RateOptions {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(name, "an object", value);
  }
  const r = value as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== "newDestinationsPerSecond" && k !== "workingSetSize") {
      fail(`${name}.${k}`, "one of newDestinationsPerSecond, workingSetSize", k);
    }
  }
  const rate: { newDestinationsPerSecond?: number; workingSetSize?: number } = {};
  if (r.newDestinationsPerSecond !== undefined) {
    const v = r.newDestinationsPerSecond;
    if (!(typeof v === "number" && Number.isFinite(v) && v > 0)) {
      fail(`${name}.newDestinationsPerSecond`, expected.ratePerSecond, v);
    }
    rate.newDestinationsPerSecond = v as number;
  }
  if (r.workingSetSize !== undefined) {
    const v = r.workingSetSize;
    if (!(typeof v === "number" && Number.isSafeInteger(v) && v >= 0)) {
      fail(`${name}.workingSetSize`, expected.workingSetSize, v);
    }
    rate.workingSetSize = v as number;
  }
  return rate;
}

/** A positive number of milliseconds typed as text, or null. */
export function parseMillisecondsText(text: string): number | null {
  const n = parseNumberText(text);
  return n !== null && n > 0 ? n : null;
}

export { parseNumberText };

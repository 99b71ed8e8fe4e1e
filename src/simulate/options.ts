import { defaults } from "../defaults.js";
import { isProfileName, type ProfileName, profileNames, profiles } from "../emulate/profiles.js";
import { usageError } from "../errors.js";
import { parseNumberText } from "../gate/number-text.js";
import {
  parseTiming as parseGateTiming,
  resolveTiming,
  type TimingOption,
} from "../gate/timing.js";
import type { SimConfig } from "./engine.js";

/** A hypothetical limiter, as the user states it: a profile and overrides. */
export interface LimiterSettings {
  profile?: ProfileName;
  maxInFlight?: number;
  scope?: "process" | "destination";
  policy?: "queue" | "reject" | "rate";
  timing?: TimingOption;
  rate?: number;
  workingSet?: number;
}

export interface ResolvedLimiter {
  config: SimConfig;
  /** Human-readable, e.g. "incident: 1 in flight per process, queue, windows timing (21 s)". */
  label: string;
  profile: ProfileName;
}

/** Profile values first (default incident), then every override. */
export function resolveLimiter(s: LimiterSettings): ResolvedLimiter {
  const profile = s.profile ?? "incident";
  const base = profiles[profile].options as {
    maxInFlight: number;
    scope: "process" | "destination";
    policy: "queue" | "reject" | "rate";
    timing: TimingOption;
    rate?: { newDestinationsPerSecond?: number; workingSetSize?: number };
    fairness?: "fifo" | "round-robin";
    knownReachableMs?: number;
  };
  const timingOption = s.timing ?? base.timing;
  const timing = resolveTiming(timingOption);
  const config: SimConfig = {
    maxInFlight: s.maxInFlight ?? base.maxInFlight,
    scope: s.scope ?? base.scope,
    policy: s.policy ?? base.policy,
    failAtMs: timing.failAtMs,
    ratePerSecond:
      s.rate ?? base.rate?.newDestinationsPerSecond ?? defaults.rateNewDestinationsPerSecond,
    workingSetSize: s.workingSet ?? base.rate?.workingSetSize ?? defaults.rateWorkingSetSize,
    // The profile's own numbers (src/emulate/profiles.ts), as the gate gets them.
    ...(base.fairness !== undefined && { fairness: base.fairness }),
    ...(base.knownReachableMs !== undefined && { knownReachableMs: base.knownReachableMs }),
  };
  const k = Number.isFinite(config.maxInFlight) ? String(config.maxInFlight) : "unlimited";
  const timingName = timing.kind === "schedule" ? timing.spec : timing.kind;
  const timingText =
    timing.failAtMs === null
      ? "recorded timing"
      : `${timingName} timing (gives up at ${timing.failAtMs / 1000} s)`;
  // A trace has no process field: it is one process, so the machine-wide
  // limit is its limit and per-process buckets served in turn are one FIFO.
  const scopeText =
    config.fairness === "round-robin" && config.scope === "process"
      ? "machine-wide (the trace is one process: its round-robin bucket is plain FIFO)"
      : `per ${config.scope}`;
  const reachableText =
    config.knownReachableMs === undefined || config.knownReachableMs === null
      ? ""
      : `, hosts reached in the last ${formatWindow(config.knownReachableMs)} not counted`;
  const policyText =
    config.policy === "rate"
      ? `rate ${config.ratePerSecond}/s, working set ${config.workingSetSize}`
      : config.policy;
  return {
    config,
    profile,
    label: `${profile}${hasOverrides(s) ? " (modified)" : ""}: ${k} in flight ${scopeText}, ${policyText}${reachableText}, ${timingText}`,
  };
}

function formatWindow(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

function hasOverrides(s: LimiterSettings): boolean {
  return Object.entries(s).some(([key, v]) => key !== "profile" && v !== undefined);
}

// Parsers shared by the CLI flags and --sweep values; each throws a one-line error.

export function parseProfile(value: string): ProfileName {
  if (!isProfileName(value))
    throw usageError(
      `profile must be one of ${profileNames.join(", ")}, got ${JSON.stringify(value)}`,
    );
  return value;
}

/** The most slots a simulated key may have short of unlimited (an Int32 counter holds it). */
const MAX_SLOTS = 1e9;

/** A number as every other edge reads it (src/gate/number-text.ts): `1e1` is 10. */
function numberText(value: string): number | null {
  return parseNumberText(value.trim());
}

export function parseMaxInFlight(value: string): number {
  if (value === "unlimited") return Number.POSITIVE_INFINITY;
  const n = numberText(value);
  if (n === null || !Number.isInteger(n) || n < 1 || n >= MAX_SLOTS)
    throw usageError(
      `max-in-flight must be a positive integer below ${MAX_SLOTS} or "unlimited", got ${JSON.stringify(value)}`,
    );
  return n;
}

export function parseScope(value: string): "process" | "destination" {
  if (value !== "process" && value !== "destination")
    throw usageError(`scope must be process or destination, got ${JSON.stringify(value)}`);
  return value;
}

export function parsePolicy(value: string): "queue" | "reject" | "rate" {
  if (value !== "queue" && value !== "reject" && value !== "rate")
    throw usageError(`policy must be queue, reject or rate, got ${JSON.stringify(value)}`);
  return value;
}

/** The gate's and SYNLIMIT_TIMING's parser: a name, milliseconds, or `syn:…;giveup:…`. */
export function parseTiming(value: string): TimingOption {
  return parseGateTiming(value);
}

export function parseRate(value: string): number {
  const n = numberText(value);
  if (n === null || !(n > 0))
    throw usageError(
      `rate must be a positive number of new destinations per second, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** Bounds the working set's typed array (one entry per host per key). */
const MAX_WORKING_SET = 1_000_000;

export function parseWorkingSet(value: string): number {
  const n = numberText(value);
  if (n === null || !Number.isInteger(n) || n >= MAX_WORKING_SET)
    throw usageError(
      `working-set must be a non-negative integer below ${MAX_WORKING_SET}, got ${JSON.stringify(value)}`,
    );
  return n;
}

/** --workers: threads for a sweep. */
export function parseWorkers(value: string): number {
  const n = numberText(value);
  if (n === null || !Number.isInteger(n) || n < 1 || n > 9999)
    throw usageError(`--workers must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

const sweepable = {
  "max-in-flight": { key: "maxInFlight", parse: parseMaxInFlight, range: true },
  "working-set": { key: "workingSet", parse: parseWorkingSet, range: true },
  profile: { key: "profile", parse: parseProfile, range: false },
  scope: { key: "scope", parse: parseScope, range: false },
  policy: { key: "policy", parse: parsePolicy, range: false },
  timing: { key: "timing", parse: parseTiming, range: false },
  rate: { key: "rate", parse: parseRate, range: false },
} as const;

export type SweepName = keyof typeof sweepable;

/** One swept parameter: its name and the values, as given and parsed. */
export interface SweepAxis {
  name: SweepName;
  values: Array<{ text: string; settings: LimiterSettings }>;
}

/** Most simulations one --sweep may ask for, so a typo like 1..1000000 fails fast. */
export const maxSweepPoints = 10_000;

/** `max-in-flight=1..16`, `policy=queue,reject`, `timing=windows,5000`. */
export function parseSweep(spec: string): SweepAxis {
  const m = /^([a-z-]+)=(.+)$/.exec(spec);
  const entry = m ? sweepable[m[1] as SweepName] : undefined;
  if (!m || !entry) {
    throw usageError(
      `--sweep must be NAME=VALUES with NAME one of ${Object.keys(sweepable).join(", ")}, got ${JSON.stringify(spec)}`,
    );
  }
  const name = m[1] as SweepName;
  const texts: string[] = [];
  // A SYN schedule has commas of its own: `timing=windows,syn:0,3000;giveup:21000`.
  const parts =
    name === "timing"
      ? // A schedule without its giveup runs to the end, so the error quotes it whole.
        ((m[2] as string).match(/syn:[^;]*;giveup:[^,]*|syn:.*|[^,]+/g) ?? [])
      : (m[2] as string).split(",");
  for (const part of parts) {
    const ends = entry.range ? part.split("..") : [part];
    if (ends.length === 2) {
      // Each end read as any other number (`1e1` is 10).
      const [from, to] = ends.map((e) => numberText(e)) as [number | null, number | null];
      if (from === null || to === null || !Number.isInteger(from) || !Number.isInteger(to))
        throw usageError(`--sweep ${name}: range ${part} must be two whole numbers, FROM..TO`);
      if (from > to || to - from >= maxSweepPoints)
        throw usageError(
          `--sweep ${name}: range ${part} must go up and have at most ${maxSweepPoints} values`,
        );
      for (let v = from; v <= to; v++) texts.push(String(v));
    } else if (ends.length > 2) {
      throw usageError(`--sweep ${name}: range ${part} must be two whole numbers, FROM..TO`);
    } else texts.push(part);
  }
  return {
    name,
    values: texts.map((text) => ({
      text,
      settings: { [entry.key]: entry.parse(text) } as LimiterSettings,
    })),
  };
}

/**
 * Refuses what would otherwise be merged silently: a parameter swept twice
 * (the second sweep's values replaced the first's), a value given twice (two
 * identical rows), a swept parameter also fixed by its own flag (the flag was
 * ignored).
 */
export function checkSweepAxes(axes: readonly SweepAxis[], fixed: LimiterSettings): void {
  const names = new Set<SweepName>();
  for (const axis of axes) {
    if (names.has(axis.name)) {
      throw usageError(
        `--sweep ${axis.name} is given twice: put all its values in one (${axis.name}=A,B,…)`,
      );
    }
    names.add(axis.name);
    if (fixed[sweepable[axis.name].key] !== undefined) {
      throw usageError(
        `--${axis.name} and --sweep ${axis.name} both set ${axis.name}: give one of them`,
      );
    }
    // By value, not by text: 10 and 1e1, or 03 and 3, are one value.
    const seen = new Map<string, string>();
    for (const { text, settings } of axis.values) {
      const value = JSON.stringify(settings[sweepable[axis.name].key]);
      const first = seen.get(value);
      if (first !== undefined) {
        throw usageError(
          first === text
            ? `--sweep ${axis.name}: ${text} is given twice`
            : `--sweep ${axis.name}: ${first} and ${text} are the same value`,
        );
      }
      seen.set(value, text);
    }
  }
}

/** Every combination of the axes (the first varies slowest). */
export function sweepPoints(
  axes: SweepAxis[],
): Array<{ labels: Record<string, string>; settings: LimiterSettings }> {
  let points: Array<{ labels: Record<string, string>; settings: LimiterSettings }> = [
    { labels: {}, settings: {} },
  ];
  for (const axis of axes) {
    points = points.flatMap((p) =>
      axis.values.map((v) => ({
        labels: { ...p.labels, [axis.name]: v.text },
        settings: { ...p.settings, ...v.settings },
      })),
    );
    if (points.length > maxSweepPoints)
      throw usageError(`--sweep asks for more than ${maxSweepPoints} simulations`);
  }
  return points;
}

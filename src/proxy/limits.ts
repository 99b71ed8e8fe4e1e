import type { Clock } from "../clock.js";
import { isProfileName, type ProfileName, profileNames, profiles } from "../emulate/profiles.js";
import { invalidOption } from "../errors.js";
import { AttemptGate } from "../gate/gate.js";
import {
  checkTimingOption,
  isScheduleTiming,
  type TimingOption,
  timingNames,
} from "../gate/timing.js";
import type { GateOptions, Policy, RateOptions } from "../gate/types.js";

/**
 * The limit for one identity: a field profile, optionally overridden. The
 * profile's "per process" scope means "per identity" here; `destination`
 * splits an identity's limit per address and port (RFC 6455).
 */
export interface LimitSettings {
  readonly profile?: ProfileName;
  readonly maxInFlight?: number;
  readonly policy?: Policy;
  /** `none`, `windows`, `linux`, `{ connectTimeoutMs }` or plain milliseconds. */
  readonly timing?: TimingOption | number;
  readonly scope?: "identity" | "destination";
  readonly rate?: RateOptions;
}

const settingKeys = new Set(["profile", "maxInFlight", "policy", "timing", "scope", "rate"]);

/** Validates settings by hand (library API); `where` names them in errors. */
export function validateSettings(value: unknown, where: string): LimitSettings {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidOption(where, "an object", value);
  }
  const s = value as Record<string, unknown>;
  for (const k of Object.keys(s)) {
    if (!settingKeys.has(k))
      throw invalidOption(`${where}.${k}`, `one of ${[...settingKeys].join(", ")}`, k);
  }
  const out: { -readonly [K in keyof LimitSettings]: LimitSettings[K] } = {};
  if (s.profile !== undefined) {
    if (typeof s.profile !== "string" || !isProfileName(s.profile)) {
      throw invalidOption(`${where}.profile`, `one of ${profileNames.join(", ")}`, s.profile);
    }
    out.profile = s.profile;
  }
  if (s.maxInFlight !== undefined) {
    const m = s.maxInFlight === "unlimited" ? Number.POSITIVE_INFINITY : s.maxInFlight;
    if (!(m === Number.POSITIVE_INFINITY || (Number.isInteger(m) && (m as number) >= 1))) {
      throw invalidOption(
        `${where}.maxInFlight`,
        'a positive integer or "unlimited"',
        s.maxInFlight,
      );
    }
    out.maxInFlight = m as number;
  }
  if (s.policy !== undefined) {
    if (s.policy !== "queue" && s.policy !== "reject" && s.policy !== "rate") {
      throw invalidOption(`${where}.policy`, "one of queue, reject, rate", s.policy);
    }
    out.policy = s.policy;
  }
  if (s.timing !== undefined) {
    const t = s.timing;
    if (typeof t === "string" && (timingNames as readonly string[]).includes(t)) {
      out.timing = t as TimingOption;
    } else if (typeof t === "number" && Number.isFinite(t) && t > 0) {
      out.timing = { connectTimeoutMs: t };
    } else if (
      typeof t === "object" &&
      t !== null &&
      typeof (t as { connectTimeoutMs?: unknown }).connectTimeoutMs === "number" &&
      Number.isFinite((t as { connectTimeoutMs: number }).connectTimeoutMs) &&
      (t as { connectTimeoutMs: number }).connectTimeoutMs > 0
    ) {
      out.timing = { connectTimeoutMs: (t as { connectTimeoutMs: number }).connectTimeoutMs };
    } else if (isScheduleTiming(t)) {
      out.timing = checkTimingOption(t, `${where}.timing`);
    } else {
      throw invalidOption(`${where}.timing`, `one of ${timingNames.join(", ")} or milliseconds`, t);
    }
  }
  if (s.scope !== undefined) {
    if (s.scope !== "identity" && s.scope !== "destination") {
      throw invalidOption(`${where}.scope`, "identity or destination", s.scope);
    }
    out.scope = s.scope;
  }
  if (s.rate !== undefined) {
    const r = s.rate as Record<string, unknown>;
    if (typeof r !== "object" || r === null)
      throw invalidOption(`${where}.rate`, "an object", s.rate);
    const rate: { newDestinationsPerSecond?: number; workingSetSize?: number } = {};
    if (r.newDestinationsPerSecond !== undefined) {
      const v = r.newDestinationsPerSecond;
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
        throw invalidOption(`${where}.rate.newDestinationsPerSecond`, "a positive number", v);
      }
      rate.newDestinationsPerSecond = v;
    }
    if (r.workingSetSize !== undefined) {
      const v = r.workingSetSize;
      if (!Number.isInteger(v) || (v as number) < 0) {
        throw invalidOption(`${where}.rate.workingSetSize`, "a non-negative integer", v);
      }
      rate.workingSetSize = v as number;
    }
    out.rate = rate;
  }
  return out;
}

/** Settings as JSON (Infinity is not JSON): what the admin API shows. */
export function settingsToJson(s: LimitSettings): Record<string, unknown> {
  const eff = effective(s);
  return {
    ...(s.profile ? { profile: s.profile } : {}),
    maxInFlight: eff.maxInFlight === Number.POSITIVE_INFINITY ? "unlimited" : eff.maxInFlight,
    policy: eff.policy,
    timing: eff.timing,
    scope: eff.scope,
    ...(eff.policy === "rate" ? { rate: eff.rate } : {}),
  };
}

interface Effective {
  maxInFlight: number;
  policy: Policy;
  timing: TimingOption;
  scope: "identity" | "destination";
  rate: RateOptions;
}

function effective(s: LimitSettings): Effective {
  const base: GateOptions = s.profile ? profiles[s.profile].options : profiles.incident.options;
  const baseScope = base.scope === "destination" ? "destination" : "identity";
  return {
    maxInFlight: s.maxInFlight ?? base.maxInFlight ?? 1,
    policy: s.policy ?? base.policy ?? "queue",
    timing:
      typeof s.timing === "number"
        ? { connectTimeoutMs: s.timing }
        : (s.timing ?? base.timing ?? "none"),
    scope: s.scope ?? baseScope,
    rate: { ...(base.rate ?? {}), ...(s.rate ?? {}) },
  };
}

export interface GateContext {
  readonly timeScale: number;
  readonly clock: Clock | undefined;
}

/** A gate for one identity. Its name carries the identity, so events can be traced back. */
export function createGate(
  settings: LimitSettings,
  identity: string,
  serial: number,
  ctx: GateContext,
): AttemptGate {
  const e = effective(settings);
  return new AttemptGate({
    name: `synlimit-gate#${serial}`,
    maxInFlight: e.maxInFlight,
    policy: e.policy,
    timing: e.timing,
    scope: e.scope === "destination" ? "destination" : () => identity,
    rate: e.rate,
    // winxp-sp2's bucket order and known-reachable window come from the profile only.
    ...profileQueueing(settings),
    timeScale: ctx.timeScale,
    ...(ctx.clock ? { clock: ctx.clock } : {}),
  });
}

function profileQueueing(s: LimitSettings): Pick<GateOptions, "fairness" | "knownReachableMs"> {
  const o: GateOptions = s.profile ? profiles[s.profile].options : profiles.incident.options;
  return {
    ...(o.fairness ? { fairness: o.fairness } : {}),
    ...(o.knownReachableMs ? { knownReachableMs: o.knownReachableMs } : {}),
  };
}

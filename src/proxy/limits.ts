import type { Clock } from "../clock.js";
import { isProfileName, type ProfileName, profileNames, profiles } from "../emulate/profiles.js";
import { invalidOption } from "../errors.js";
import { AttemptGate } from "../gate/gate.js";
import type { TimingOption } from "../gate/timing.js";
import type { GateOptions, LimitReachedEvent, Policy, RateOptions } from "../gate/types.js";
import {
  checkMaxInFlight,
  checkPolicy,
  checkRate,
  checkTiming,
  type Fail,
} from "../gate/validate.js";

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

const optionFail: Fail = (name, expected, got) => {
  throw invalidOption(name, expected, got);
};

/**
 * Validates settings by hand with the gate's own rules (library API, config
 * file, admin API and flags alike); `where` names them in errors, `fail`
 * chooses the error.
 */
export function validateSettings(
  value: unknown,
  where: string,
  fail: Fail = optionFail,
): LimitSettings {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail(where, "an object", value);
  }
  const s = value as Record<string, unknown>;
  for (const k of Object.keys(s)) {
    if (!settingKeys.has(k)) fail(`${where}.${k}`, `one of ${[...settingKeys].join(", ")}`, k);
  }
  const out: { -readonly [K in keyof LimitSettings]: LimitSettings[K] } = {};
  if (s.profile !== undefined) {
    if (typeof s.profile !== "string" || !isProfileName(s.profile)) {
      fail(`${where}.profile`, `one of ${profileNames.join(", ")}`, s.profile);
    }
    out.profile = s.profile as ProfileName;
  }
  if (s.maxInFlight !== undefined) {
    out.maxInFlight = checkMaxInFlight(s.maxInFlight, `${where}.maxInFlight`, fail);
  }
  if (s.policy !== undefined) out.policy = checkPolicy(s.policy, `${where}.policy`, fail);
  if (s.timing !== undefined) out.timing = checkTiming(s.timing, `${where}.timing`, fail);
  if (s.scope !== undefined) {
    if (s.scope !== "identity" && s.scope !== "destination") {
      fail(`${where}.scope`, "identity or destination", s.scope);
    }
    out.scope = s.scope as "identity" | "destination";
  }
  if (s.rate !== undefined) out.rate = checkRate(s.rate, `${where}.rate`, fail);
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
  readonly onLimitReached?: (event: LimitReachedEvent) => void;
}

/** A gate for one identity; `serial` makes its name unique in the process. */
export function createGate(
  settings: LimitSettings,
  identity: string,
  serial: string,
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
    ...(ctx.onLimitReached ? { onLimitReached: ctx.onLimitReached } : {}),
  });
}

/** True when these settings' gate serves its owners' buckets in turn (winxp-sp2). */
export function servesOwnersInTurn(settings: LimitSettings): boolean {
  return profileQueueing(settings).fairness === "round-robin";
}

function profileQueueing(s: LimitSettings): Pick<GateOptions, "fairness" | "knownReachableMs"> {
  const o: GateOptions = s.profile ? profiles[s.profile].options : profiles.incident.options;
  return {
    ...(o.fairness ? { fairness: o.fairness } : {}),
    ...(o.knownReachableMs ? { knownReachableMs: o.knownReachableMs } : {}),
  };
}

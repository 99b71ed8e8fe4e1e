import { invalidEnv, SynlimitError } from "../errors.js";
import { parseNumberText } from "../gate/number-text.js";
import {
  parseTiming as parseTimingText,
  TIMING_EXPECTED,
  type TimingOption,
} from "../gate/timing.js";
import type { EmulationOptions } from "./install.js";
import { isProfileName, profileNames } from "./profiles.js";

/** The variables `synlimit/register` reads; any other SYNLIMIT_* is a typo. */
export const envVariables = {
  SYNLIMIT_PROFILE: `a profile: ${profileNames.join(", ")} (default incident)`,
  SYNLIMIT_MAX_IN_FLIGHT: "concurrent attempts per scope key: a positive integer or 'unlimited'",
  SYNLIMIT_SCOPE: "process or destination",
  SYNLIMIT_POLICY: "queue, reject or rate",
  SYNLIMIT_TIMING: `the SYN schedule: ${TIMING_EXPECTED}`,
  SYNLIMIT_TIME_SCALE: "a positive number; 0.1 runs 21 s in 2.1 s (default 1)",
  SYNLIMIT_RATE: "new destinations per second for the rate policy",
  SYNLIMIT_WORKING_SET: "recent destinations that pass freely under the rate policy",
  SYNLIMIT_RECORD: "a file: write every connect attempt there as a trace (docs/trace.md)",
  SYNLIMIT_ROLES: "with SYNLIMIT_RECORD: roles by destination, e.g. 389=login,5432=db",
} as const;

type Env = Record<string, string | undefined>;

/** Reads emulation options from the environment; throws a one-line error on bad input. */
export function optionsFromEnv(env: Env): EmulationOptions {
  for (const name of Object.keys(env)) {
    if (name.startsWith("SYNLIMIT_") && !Object.hasOwn(envVariables, name)) {
      // The name is the mistake here; its value says nothing (and may be a secret).
      throw new SynlimitError(
        "SYNLIMIT_INVALID_ENV",
        `${name} is not a synlimit variable; the known ones are ${Object.keys(envVariables).join(", ")}`,
      );
    }
  }
  const read = (name: keyof typeof envVariables): string | undefined => {
    const value = env[name]?.trim();
    return value === "" ? undefined : value;
  };
  const options: EmulationOptions = {};

  const profile = read("SYNLIMIT_PROFILE") ?? "incident";
  if (!isProfileName(profile))
    throw invalidEnv("SYNLIMIT_PROFILE", `one of ${profileNames.join(", ")}`, profile);
  options.profile = profile;

  const max = read("SYNLIMIT_MAX_IN_FLIGHT");
  if (max !== undefined) {
    if (max === "unlimited") options.maxInFlight = Number.POSITIVE_INFINITY;
    else
      options.maxInFlight = positiveInteger(
        "SYNLIMIT_MAX_IN_FLIGHT",
        max,
        "a positive integer or 'unlimited'",
      );
  }

  const scope = read("SYNLIMIT_SCOPE");
  if (scope !== undefined) {
    if (scope !== "process" && scope !== "destination")
      throw invalidEnv("SYNLIMIT_SCOPE", "process or destination", scope);
    options.scope = scope;
  }

  const policy = read("SYNLIMIT_POLICY");
  if (policy !== undefined) {
    if (policy !== "queue" && policy !== "reject" && policy !== "rate") {
      throw invalidEnv("SYNLIMIT_POLICY", "queue, reject or rate", policy);
    }
    options.policy = policy;
  }

  const timing = read("SYNLIMIT_TIMING");
  if (timing !== undefined) options.timing = parseTiming(timing);

  const scale = read("SYNLIMIT_TIME_SCALE");
  if (scale !== undefined) options.timeScale = positiveNumber("SYNLIMIT_TIME_SCALE", scale);

  const rate = read("SYNLIMIT_RATE");
  const workingSet = read("SYNLIMIT_WORKING_SET");
  if (rate !== undefined || workingSet !== undefined) {
    options.rate = {};
    if (rate !== undefined)
      options.rate.newDestinationsPerSecond = positiveNumber("SYNLIMIT_RATE", rate);
    if (workingSet !== undefined) {
      const n = parseNumberText(workingSet);
      if (n === null || !Number.isSafeInteger(n))
        throw invalidEnv("SYNLIMIT_WORKING_SET", "a non-negative integer", workingSet);
      options.rate.workingSetSize = n;
    }
  }
  return options;
}

function parseTiming(value: string): TimingOption {
  try {
    return parseTimingText(value);
  } catch (error) {
    if (!(error instanceof SynlimitError)) throw error;
    // The parser's own message says what is wrong with a schedule.
    const detail = value.startsWith("syn:") ? ` (${error.message})` : "";
    throw invalidEnv("SYNLIMIT_TIMING", `${TIMING_EXPECTED}${detail}`, value);
  }
}

function positiveInteger(name: string, value: string, expected: string): number {
  const n = parseNumberText(value);
  if (n === null || n < 1 || !Number.isSafeInteger(n)) throw invalidEnv(name, expected, value);
  return n;
}

function positiveNumber(name: string, value: string): number {
  const n = parseNumberText(value);
  if (n === null || n <= 0) throw invalidEnv(name, "a positive number", value);
  return n;
}

import { recordGateName } from "../record/recorder.js";
import { RoleMap } from "../record/roles.js";
import { optionsFromEnv } from "./env.js";
import type { EmulationOptions } from "./install.js";

const limiterVariables = [
  "SYNLIMIT_PROFILE",
  "SYNLIMIT_MAX_IN_FLIGHT",
  "SYNLIMIT_SCOPE",
  "SYNLIMIT_POLICY",
  "SYNLIMIT_TIMING",
  "SYNLIMIT_RATE",
  "SYNLIMIT_WORKING_SET",
];

export interface RecordingSetup {
  file: string;
  roles: RoleMap;
  emulation: EmulationOptions;
  gateName: string;
}

/**
 * SYNLIMIT_RECORD=FILE: record every attempt, unlimited — unless limiter
 * variables are set too, then record under that limiter (waits included).
 * Returns null when SYNLIMIT_RECORD is not set.
 */
export function recordingFromEnv(env: Record<string, string | undefined>): RecordingSetup | null {
  const file = env.SYNLIMIT_RECORD?.trim();
  if (!file) return null;
  const roles = RoleMap.parse(env.SYNLIMIT_ROLES ? [env.SYNLIMIT_ROLES] : []);
  const limited = limiterVariables.some((name) => (env[name]?.trim() ?? "") !== "");
  if (!limited) {
    // Still validates the other SYNLIMIT_* variables (typos, time scale).
    const { timeScale } = optionsFromEnv(env);
    return {
      file,
      roles,
      emulation: {
        maxInFlight: Number.POSITIVE_INFINITY,
        timing: "none",
        timeScale,
        name: recordGateName,
      },
      gateName: recordGateName,
    };
  }
  const emulation = optionsFromEnv(env);
  return { file, roles, emulation, gateName: emulation.profile ?? "custom" };
}

/**
 * The program records itself only: node processes it starts inherit
 * NODE_OPTIONS, and must neither record into the same file nor get the
 * default limiter.
 */
export function forgetRecording(env: NodeJS.ProcessEnv): void {
  delete env.SYNLIMIT_RECORD;
  delete env.SYNLIMIT_ROLES;
  if (env.NODE_OPTIONS) {
    env.NODE_OPTIONS = env.NODE_OPTIONS.replace(/--import[= ]\S*register(\.js)?\b\S*/g, "").trim();
  }
}

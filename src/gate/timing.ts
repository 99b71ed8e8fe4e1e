import { defaults } from "../defaults.js";
import { invalidOption } from "../errors.js";

/**
 * How long a pending attempt lives before the emulated OS gives up on it.
 * `none` leaves the deadline to the real kernel.
 */
export type TimingOption = "none" | "windows" | "linux" | { connectTimeoutMs: number };

export interface Timing {
  readonly kind: "none" | "windows" | "linux" | "fixed";
  /** Unscaled milliseconds from SYN to failure; null: never by the gate. */
  readonly failAtMs: number | null;
  /** Unscaled times at which the OS (re)sends the SYN; informational. */
  readonly synAtMs: readonly number[];
}

const profiles: Record<"none" | "windows" | "linux", Timing> = {
  none: { kind: "none", failAtMs: null, synAtMs: [0] },
  windows: {
    kind: "windows",
    failAtMs: defaults.windowsFailAtMs,
    synAtMs: defaults.windowsSynAtMs,
  },
  linux: { kind: "linux", failAtMs: defaults.linuxFailAtMs, synAtMs: defaults.linuxSynAtMs },
};

export const timingNames = Object.keys(profiles) as ReadonlyArray<keyof typeof profiles>;

export function resolveTiming(option: TimingOption | undefined): Timing {
  if (option === undefined) return profiles.none;
  if (typeof option === "string") {
    const found = profiles[option];
    if (found) return found;
  } else if (typeof option === "object" && option !== null) {
    const ms = option.connectTimeoutMs;
    if (typeof ms === "number" && Number.isFinite(ms) && ms > 0) {
      return { kind: "fixed", failAtMs: ms, synAtMs: [0] };
    }
    throw invalidOption("timing.connectTimeoutMs", "a positive number of milliseconds", ms);
  }
  throw invalidOption("timing", `one of ${timingNames.join(", ")} or { connectTimeoutMs }`, option);
}

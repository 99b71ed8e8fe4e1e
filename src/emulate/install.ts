import { invalidOption } from "../errors.js";
import { AttemptGate } from "../gate/gate.js";
import type { GateOptions } from "../gate/types.js";
import { isProfileName, type ProfileName, profileNames, profiles } from "./profiles.js";
import { hookTcpConnect, unhookTcpConnect } from "./tcp-hook.js";

export interface EmulationOptions extends GateOptions {
  /** Start from a field profile; other options override its values. */
  profile?: ProfileName;
}

export interface Emulation {
  readonly gate: AttemptGate;
  readonly profile: ProfileName | null;
  readonly timeScale: number;
  uninstall(): void;
}

// One installation per process, whichever copy of synlimit installed it.
const slot = Symbol.for("synlimit.emulation");
type GlobalWithEmulation = typeof globalThis & { [slot]?: Emulation };
const global = globalThis as GlobalWithEmulation;

/** The installed emulation, if any. */
export function currentEmulation(): Emulation | null {
  return global[slot] ?? null;
}

/** What a report says about the limiter in force: profile and time scale, or null. */
export function emulationSummary(): { profile: ProfileName | null; timeScale: number } | null {
  const e = currentEmulation();
  return e ? { profile: e.profile, timeScale: e.timeScale } : null;
}

/**
 * Limits this process's outbound TCP connect attempts. Replaces an earlier
 * installation; attempts it already tracks finish under their old gate.
 */
export function install(options: EmulationOptions = {}): Emulation {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", "an object", options);
  }
  const { profile, ...overrides } = options;
  if (profile !== undefined && !isProfileName(profile)) {
    throw invalidOption("profile", `one of ${profileNames.join(", ")}`, profile);
  }
  const base = profile ? profiles[profile].options : {};
  const gate = new AttemptGate({ name: profile ?? "custom", ...base, ...dropUndefined(overrides) });
  const emulation: Emulation = {
    gate,
    profile: profile ?? null,
    timeScale: gate.options.timeScale,
    uninstall() {
      if (global[slot] === emulation) uninstall();
    },
  };
  global[slot] = emulation;
  hookTcpConnect(() => global[slot]?.gate ?? null);
  return emulation;
}

/** Removes the limiter; connects from now on go straight to the OS. */
export function uninstall(): void {
  delete global[slot];
  unhookTcpConnect();
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

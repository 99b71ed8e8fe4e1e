import { defaults } from "../defaults.js";
import { invalidOption, SynlimitError } from "../errors.js";
import { parseNumberText } from "./number-text.js";

/** The built-in SYN schedules, by name. `none` leaves the deadline to the real kernel. */
export type TimingName = "none" | "windows" | "windows-2008" | "linux";

/** A SYN schedule in milliseconds: when the OS (re)sends the SYN, and when it gives up. */
export interface TimingSchedule {
  /** Offsets from the first SYN, starting at 0 and increasing. */
  readonly synAtMs: readonly number[];
  /** When the attempt fails, after the last SYN. */
  readonly giveUpMs: number;
}

/**
 * How long a pending attempt lives before the emulated OS gives up on it: a
 * built-in schedule, a `syn:…;giveup:…` string (see {@link parseTiming}), a
 * schedule object, or a bare deadline (one SYN, then failure).
 */
export type TimingOption =
  | TimingName
  | `syn:${string}`
  | TimingSchedule
  | { readonly connectTimeoutMs: number };

export interface Timing {
  readonly kind: TimingName | "fixed" | "schedule";
  /** Unscaled milliseconds from the first SYN to failure; null: never by the gate. */
  readonly failAtMs: number | null;
  /** Unscaled times at which the OS (re)sends the SYN. */
  readonly synAtMs: readonly number[];
  /** The schedule in `--timing` syntax, e.g. `syn:0,3000,9000;giveup:21000`. */
  readonly spec: string;
}

/** A built-in schedule and where its numbers come from (shown by `synlimit profiles`). */
export interface TimingProfile extends Timing {
  readonly description: string;
  readonly source: string;
}

function builtIn(
  kind: TimingName,
  synAtMs: readonly number[],
  failAtMs: number | null,
  description: string,
  source: string,
): TimingProfile {
  return { kind, synAtMs, failAtMs, spec: formatSpec(synAtMs, failAtMs), description, source };
}

export const timings: Readonly<Record<TimingName, TimingProfile>> = {
  none: builtIn(
    "none",
    [0],
    null,
    "no emulated deadline: the real kernel's own SYN retries decide",
    "this machine's TCP stack",
  ),
  windows: builtIn(
    "windows",
    defaults.windowsSynAtMs,
    defaults.windowsFailAtMs,
    "Windows 10/11 and Server 2019/2022 defaults: initial RTO 1 s, 4 SYN retransmissions (SYN at 0, 1, 3, 7, 15 s), gives up at 21 s (the measured give-up, not doubling's 31 s)",
    "SYN times: Microsoft's documented Get-NetTCPSetting defaults (InitialRto 1000 ms, MaxSynRetransmissions 4), the RTO doubling after each SYN. Give-up at 21 s: not from Microsoft and not from doubling (15 + 16 = 31 s), but the give-up measured on CI runners connecting to a blackholed address, as reported publicly; synlimit cites no such report and has verified none of this on a Windows host (docs/windows.md)",
  ),
  "windows-2008": builtIn(
    "windows-2008",
    defaults.windows2008SynAtMs,
    defaults.windows2008FailAtMs,
    "older Windows default (the incident's field host): initial RTO 3 s, 2 SYN retransmissions (SYN at 0, 3, 9 s), gives up at 21 s",
    "the field report as the project tells it (docs/incident.md, README.md): the SYN sent 3 times, waits of 3 + 6 + 12 s, WSAETIMEDOUT at 21 s; the older documented Windows default (TcpMaxConnectRetransmissions 2, initial RTO 3 s). Not a packet capture",
  ),
  linux: builtIn(
    "linux",
    defaults.linuxSynAtMs,
    defaults.linuxFailAtMs,
    "Linux with net.ipv4.tcp_syn_retries = 6: RTO 1 s doubling (SYN at 0, 1, 3, 7, 15, 31, 63 s), gives up at 127 s",
    "Linux kernel documentation, ip-sysctl: tcp_syn_retries (default 6, about 127 s with the 1 s initial RTO of RFC 6298), the classic doubling schedule. Kernels with net.ipv4.tcp_syn_linear_timeouts (default 4) first resend 1 s apart and allow those resends on top; with the defaults 6 and 4: SYN at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35, 67 s, give-up 131 s. This profile keeps the classic 127 s so that it does not depend on the kernel it runs on; synlimit probe reports the host's own schedule, and --timing syn:…;giveup:… takes it (docs/windows.md)",
  ),
};

export const timingNames = Object.keys(timings) as readonly TimingName[];

export function isTimingName(value: unknown): value is TimingName {
  return typeof value === "string" && Object.hasOwn(timings, value);
}

/** What a timing may be, for one-line errors at every edge (flag, env, config). */
export const TIMING_EXPECTED = `one of ${timingNames.join(", ")}, a positive finite number of milliseconds, or syn:MS,MS,…;giveup:MS (e.g. syn:0,1000,3000,7000,15000;giveup:21000)`;

/** More SYNs than any real stack sends; bounds what a typo can allocate. */
const MAX_SYNS = 64;
/** The longest delay a Node timer can take (longer ones fire at once). */
const MAX_GIVE_UP_MS = 2_147_483_647;

/**
 * Parses a timing as written on a command line, in SYNLIMIT_TIMING or in a
 * config file: a name, plain milliseconds (a bare deadline), or
 * `syn:0,1000,3000;giveup:21000`. One parser for every edge, so they accept
 * the same things. Throws a SynlimitError whose message says what is wrong.
 */
export function parseTiming(text: string): TimingOption {
  const value = text.trim();
  if (isTimingName(value)) return value;
  const ms = parseNumberText(value);
  if (ms !== null && ms > 0) return { connectTimeoutMs: ms };
  if (value.startsWith("syn:")) {
    const schedule = parseScheduleSpec(value);
    return formatSpec(schedule.synAtMs, schedule.giveUpMs) as `syn:${string}`;
  }
  throw timingError(`timing must be ${TIMING_EXPECTED}, got ${JSON.stringify(text)}`);
}

function parseScheduleSpec(value: string): TimingSchedule {
  const m = /^syn:([^;]*);giveup:(.*)$/.exec(value);
  if (!m) {
    throw timingError(
      `timing ${JSON.stringify(value)} must read syn:MS,MS,…;giveup:MS (milliseconds)`,
    );
  }
  const synText = (m[1] ?? "").split(",").map((s) => s.trim());
  const synAtMs = synText.map((s) => {
    const ms = parseNumberText(s);
    if (ms === null || !Number.isSafeInteger(ms)) {
      throw timingError(
        `timing ${JSON.stringify(value)}: SYN time ${JSON.stringify(s)} is not a whole number of milliseconds`,
      );
    }
    return ms;
  });
  const giveUpText = (m[2] ?? "").trim();
  const giveUpMs = parseNumberText(giveUpText);
  if (giveUpMs === null || !Number.isSafeInteger(giveUpMs)) {
    throw timingError(
      `timing ${JSON.stringify(value)}: giveup ${JSON.stringify(giveUpText)} is not a whole number of milliseconds`,
    );
  }
  return checkSchedule({ synAtMs, giveUpMs }, `timing ${JSON.stringify(value)}`);
}

/** The rules every schedule follows; `where` names it in the error. */
function checkSchedule(s: TimingSchedule, where: string): TimingSchedule {
  const { synAtMs, giveUpMs } = s;
  if (!Array.isArray(synAtMs) || synAtMs.length === 0 || synAtMs.length > MAX_SYNS) {
    throw timingError(`${where}: needs 1 to ${MAX_SYNS} SYN times`);
  }
  for (const [i, t] of synAtMs.entries()) {
    if (typeof t !== "number" || !Number.isSafeInteger(t) || t < 0) {
      throw timingError(`${where}: SYN time ${String(t)} is not a whole number of milliseconds`);
    }
    if (i === 0 && t !== 0) {
      throw timingError(`${where}: the first SYN goes out at 0 ms, got ${t}`);
    }
    if (i > 0 && t <= (synAtMs[i - 1] as number)) {
      throw timingError(`${where}: SYN times must increase, got ${synAtMs.join(",")}`);
    }
  }
  const last = synAtMs[synAtMs.length - 1] as number;
  if (typeof giveUpMs !== "number" || !Number.isSafeInteger(giveUpMs) || giveUpMs <= last) {
    throw timingError(
      `${where}: giveup must be a whole number of milliseconds after the last SYN (${last} ms), got ${String(giveUpMs)}`,
    );
  }
  if (giveUpMs > MAX_GIVE_UP_MS) {
    throw timingError(`${where}: giveup must be at most ${MAX_GIVE_UP_MS} ms, got ${giveUpMs}`);
  }
  return { synAtMs: [...synAtMs], giveUpMs };
}

function timingError(message: string): SynlimitError {
  return new SynlimitError("SYNLIMIT_INVALID_OPTION", message);
}

function formatSpec(synAtMs: readonly number[], failAtMs: number | null): string {
  return failAtMs === null ? "none" : `syn:${synAtMs.join(",")};giveup:${failAtMs}`;
}

/** The schedule an option describes, validated. */
export function resolveTiming(option: TimingOption | undefined): Timing {
  if (option === undefined) return timings.none;
  if (typeof option === "string") {
    if (isTimingName(option)) return timings[option];
    if (option.startsWith("syn:")) return scheduleTiming(parseScheduleSpec(option));
  } else if (typeof option === "object" && option !== null) {
    if ("synAtMs" in option || "giveUpMs" in option) {
      return scheduleTiming(checkSchedule(option as TimingSchedule, "option timing"));
    }
    const ms = (option as { connectTimeoutMs?: unknown }).connectTimeoutMs;
    if (typeof ms === "number" && Number.isFinite(ms) && ms > 0) {
      return { kind: "fixed", failAtMs: ms, synAtMs: [0], spec: formatSpec([0], ms) };
    }
    throw invalidOption("timing.connectTimeoutMs", "a positive number of milliseconds", ms);
  }
  throw invalidOption(
    "timing",
    `one of ${timingNames.join(", ")}, "syn:…;giveup:…", { synAtMs, giveUpMs } or { connectTimeoutMs }`,
    option,
  );
}

function scheduleTiming(s: TimingSchedule): Timing {
  // A custom schedule equal to a built-in one is that one (its name, its error text).
  const spec = formatSpec(s.synAtMs, s.giveUpMs);
  for (const t of Object.values(timings)) if (t.spec === spec) return t;
  return { kind: "schedule", failAtMs: s.giveUpMs, synAtMs: s.synAtMs, spec };
}

/** A `syn:…` string or a `{ synAtMs, giveUpMs }` object: the schedule forms of a timing. */
export function isScheduleTiming(value: unknown): value is `syn:${string}` | TimingSchedule {
  if (typeof value === "string") return value.startsWith("syn:");
  return typeof value === "object" && value !== null && ("synAtMs" in value || "giveUpMs" in value);
}

/**
 * Validates any timing option (library and config edges; plain numbers mean
 * a bare deadline) and returns it in a canonical form; `where` names it in
 * the one-line error.
 */
export function checkTimingOption(value: unknown, where: string): TimingOption {
  if (typeof value === "number") {
    if (Number.isFinite(value) && value > 0) return { connectTimeoutMs: value };
    throw invalidOption(where, "a positive number of milliseconds", value);
  }
  try {
    const t = resolveTiming(value as TimingOption);
    if (t.kind === "fixed") return { connectTimeoutMs: t.failAtMs as number };
    if (t.kind === "schedule") return t.spec as `syn:${string}`;
    return t.kind;
  } catch (error) {
    if (!(error instanceof SynlimitError)) throw error;
    throw new SynlimitError("SYNLIMIT_INVALID_OPTION", `${where}: ${error.message}`);
  }
}

/** Whether a failure under this timing reads like Windows' WSAETIMEDOUT. */
export function isWindowsTiming(t: Timing): boolean {
  return t.kind === "windows" || t.kind === "windows-2008";
}

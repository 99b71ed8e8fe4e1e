import { defaults } from "../defaults.js";
import type { GateOptions } from "../gate/types.js";

export interface Profile {
  readonly description: string;
  /** Where the numbers come from. */
  readonly source: string;
  readonly options: Readonly<
    Pick<
      GateOptions,
      "maxInFlight" | "scope" | "policy" | "timing" | "rate" | "fairness" | "knownReachableMs"
    >
  >;
}

/** Limiters seen in the field, as gate options. */
export const profiles = {
  incident: {
    description:
      "1 concurrent connect attempt per process, extra attempts queued FIFO, the field host's connect timing (SYN at 0, 3, 9 s; fails at 21 s)",
    source:
      "the field case told in docs/incident.md (an unidentified security product on an older Windows Server; timing: windows-2008)",
    options: { maxInFlight: 1, scope: "process", policy: "queue", timing: "windows-2008" },
  },
  "winxp-sp2": {
    description: `10 concurrent incomplete outbound connect attempts machine-wide; extra attempts wait in per-process FIFO buckets served in turn; a host reached in the last ${defaults.winxpKnownReachableMs / 60_000} minutes is not counted; one Event 4226 per congestion episode. In-process the machine is this process; the gate proxy's global identity makes it machine-wide`,
    source:
      "US patent 7,784,096 (Kaniyar, Huitema, Sanders; Microsoft), claim 1: upper bound on concurrent TCP connect attempts, per-process hash buckets processed FIFO, reachable route cache entries not counted; claim 2: queuing logged. Microsoft, 'Changes to Functionality in Microsoft Windows XP Service Pack 2': limit 10, Event ID 4226. The known-reachable window is synlimit's choice (the patent gives none)",
    options: {
      maxInFlight: defaults.winxpMaxInFlight,
      scope: "process",
      policy: "queue",
      fairness: "round-robin",
      knownReachableMs: defaults.winxpKnownReachableMs,
      timing: "windows-2008",
    },
  },
  rfc6455: {
    description: "1 connect attempt per destination (address and port) at a time, others wait",
    source:
      "RFC 6455 §4.1: no more than one connection in a CONNECTING state per IP address and port",
    options: { maxInFlight: 1, scope: "destination", policy: "queue", timing: "none" },
  },
  williamson: {
    description:
      "virus throttle: 1 new destination per second, the 5 most recent destinations pass freely",
    source:
      "M. Williamson, 'Throttling Viruses: Restricting propagation to defeat malicious mobile code', HP Labs HPL-2002-172",
    options: {
      maxInFlight: Number.POSITIVE_INFINITY,
      scope: "process",
      policy: "rate",
      timing: "none",
      rate: { newDestinationsPerSecond: 1, workingSetSize: 5 },
    },
  },
  windows: {
    description:
      "no attempt limit, current Windows connect timing (SYN at 0, 1, 3, 7, 15 s; fails at 21 s): a normal Windows 10/11 or Server 2019/2022 machine, for side-by-side runs",
    source:
      "Windows TCP defaults today: InitialRto 1000 ms, MaxSynRetransmissions 4 (Get-NetTCPSetting; see docs/windows.md)",
    options: {
      maxInFlight: Number.POSITIVE_INFINITY,
      scope: "process",
      policy: "queue",
      timing: "windows",
    },
  },
  "windows-2008": {
    description:
      "no attempt limit, the field host's connect timing (SYN at 0, 3, 9 s; fails at 21 s): the incident's 'normal machine', for side-by-side runs",
    source:
      "older Windows TCP defaults: initial RTO 3 s, TcpMaxConnectRetransmissions 2, as the field host showed (docs/incident.md)",
    options: {
      maxInFlight: Number.POSITIVE_INFINITY,
      scope: "process",
      policy: "queue",
      timing: "windows-2008",
    },
  },
} as const satisfies Record<string, Profile>;

export type ProfileName = keyof typeof profiles;
export const profileNames = Object.keys(profiles) as ProfileName[];

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(profiles, name);
}

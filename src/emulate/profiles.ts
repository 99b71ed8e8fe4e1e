import type { GateOptions } from "../gate/types.js";

export interface Profile {
  readonly description: string;
  /** Where the numbers come from. */
  readonly source: string;
  readonly options: Readonly<
    Pick<GateOptions, "maxInFlight" | "scope" | "policy" | "timing" | "rate">
  >;
}

/** Limiters seen in the field, as gate options. */
export const profiles = {
  incident: {
    description:
      "1 concurrent connect attempt per process, extra attempts queued FIFO, Windows connect timing (fails at 21 s)",
    source:
      "the field case in docs/incident.md (an unidentified security product on Windows Server)",
    options: { maxInFlight: 1, scope: "process", policy: "queue", timing: "windows" },
  },
  "winxp-sp2": {
    description:
      "10 concurrent incomplete outbound connect attempts, extra attempts queued, Event 4226 logged; the original is machine-wide, this emulation is per process (use the gate proxy's global identity for machine-wide)",
    source:
      "Microsoft, 'Changes to Functionality in Microsoft Windows XP Service Pack 2', Network Protection Technologies: limited number of simultaneous incomplete outbound TCP connection attempts",
    options: { maxInFlight: 10, scope: "process", policy: "queue", timing: "windows" },
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
      "no attempt limit, Windows connect timing: the incident's 'normal machine', for side-by-side runs",
    source:
      "Windows TCP defaults: TcpMaxConnectRetransmissions 2, initial RTO 3 s (SYN at 0, 3, 9 s; fails at 21 s)",
    options: {
      maxInFlight: Number.POSITIVE_INFINITY,
      scope: "process",
      policy: "queue",
      timing: "windows",
    },
  },
} as const satisfies Record<string, Profile>;

export type ProfileName = keyof typeof profiles;
export const profileNames = Object.keys(profiles) as ProfileName[];

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(profiles, name);
}

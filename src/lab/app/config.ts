import type { ProfileName } from "../../emulate/profiles.js";
import type { AgentModel } from "../types.js";

/** What the lab's app process is told at start (JSON in its argv). */
export interface AppConfig {
  /** The limiter for this process, or null for none. */
  profile: ProfileName | null;
  timeScale: number;
  ldap: { url: string; bindDN: string; password: string };
  postgresUrl: string;
  /** API upstreams, by index: the app keeps a keep-alive pool to each. */
  upstreams: Array<{ host: string; port: number }>;
  collector: { host: string; port: number; udpEchoPort: number };
  agent: "none" | "naive" | "guarded";
  /** The naive agent's loops and pause (field milliseconds). */
  agentModel: AgentModel;
  /** How the API pools connect: plain undici, or through synlimit/guard. */
  apiPools: "plain" | "guarded";
  dbPoolSize: number;
  apiConnectionsPerUpstream: number;
  /**
   * Record every attempt of the app to this file (src/record's recorder, as
   * `synlimit record` does: causality included), lab milliseconds; the lab
   * turns it into the scenario's trace. Absent: no recording.
   */
  recordFile?: string;
}

/** Messages from the app process to the lab. */
export type AppMessage =
  | { type: "ready"; port: number }
  | { type: "agent-started"; at: number }
  | { type: "flushed"; at: number }
  | {
      type: "attempts";
      records: RawAttempt[];
      /** Epoch milliseconds of the recording's t = 0, when there is one. */
      recordStartedAt: number | null;
    };

/** Messages from the lab to the app process. */
export type LabMessage = { type: "start-agent" } | { type: "flush-pools" } | { type: "stop" };

/** An attempt as the app process saw it; times are epoch milliseconds (high resolution). */
export interface RawAttempt {
  id: number;
  host: string;
  port: number;
  queuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  outcome: "connected" | "failed" | "timed-out" | "cancelled" | "rejected" | null;
  /** When the emulated OS (re)sends the SYN, lab ms after the start (from the gate's start event). */
  synAtMs?: readonly number[];
  /** When the emulated OS gives up, lab ms after the start; null: no emulated deadline. */
  giveUpMs?: number | null;
}

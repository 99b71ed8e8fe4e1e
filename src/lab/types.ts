/**
 * The lab's results, as written to results.json (schema version 2) and read
 * by the HTML report. Times named *Ms are lab milliseconds (wall time) since
 * the scenario's window started, unless named otherwise; a person reads them
 * as field time, lab time ÷ timeScale (src/lab/units.ts).
 */

export type Operation = "login" | "db" | "api";

export type ScenarioName =
  | "baseline"
  | "incident"
  | "fixed"
  | "escalation"
  | "escalation-fixed"
  | "restart"
  | "restart-fixed";

/** Latency of one operation in one scenario; percentiles over successful operations only. */
export interface LatencyStats {
  count: number;
  errors: number;
  /** errors / count (0 when count is 0). */
  errorRate: number;
  /** The most frequent failure reason, if any failed. */
  topError: string | null;
  /** Successful operations: the percentiles' sample. */
  ok: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** One operation as the load generator saw it. */
export interface Sample {
  op: Operation;
  startMs: number;
  durationMs: number;
  ok: boolean;
  /** Why it failed (the app's answer, or the load generator's own error); absent when ok. */
  error?: string;
}

/** Who made an attempt, inside the app's process. */
export type AttemptRole = "login" | "db" | "api" | "api-dead" | "agent" | "other";

export type AttemptOutcome =
  | "connected"
  | "failed"
  | "timed-out"
  | "cancelled"
  | "rejected"
  /** Still waiting or in SYN_SENT when the app stopped. */
  | "pending";

/** One connect attempt in the app's process: the bars of the timeline chart. */
export interface AttemptRecord {
  id: number;
  role: AttemptRole;
  host: string;
  port: number;
  /** Asked for a slot. */
  queuedAtMs: number;
  /** SYN sent (slot granted); null if it never started (cancelled, rejected or still waiting). */
  startedAtMs: number | null;
  /** Connected, failed, timed out or cancelled; for a pending attempt, when the app stopped. */
  endedAtMs: number;
  outcome: AttemptOutcome;
  /**
   * When the emulated OS sends the SYN and its retransmissions, lab ms after
   * startedAtMs (the limiter's schedule × the time scale); absent when it never started.
   */
  synAtMs?: number[];
  /** When the emulated OS gives up, lab ms after startedAtMs; null: no emulated deadline. */
  giveUpMs?: number | null;
}

/** Something that happened to the system during the scenario (markers on the charts). */
export interface LabEvent {
  atMs: number;
  kind: "upstreams-died" | "pools-flushed" | "agent-started";
  detail: string;
}

/** Failed operations allowed per operation, as a fraction of those run. */
export type ErrorBudget = Record<Operation, number>;

/** The naive agent's shape: what the incident check's queue model is told. */
export interface AgentModel {
  /** Independent reconnect loops (one per kind of data). */
  channels: number;
  /** Field milliseconds between a failed attempt and the next try. */
  retryPauseMs: number;
}

export interface ScenarioResult {
  name: ScenarioName;
  description: string;
  /** The limiter profile in force, or null for none. */
  profile: string | null;
  agent: "none" | "naive" | "guarded";
  /** How the app's API pools connect: plain undici, or through synlimit/guard. */
  apiPools: "plain" | "guarded";
  collector: "alive" | "dead" | "dead-silent-echo";
  durationMs: number;
  /** When the app stopped (after the drain); pending attempts end here. */
  stoppedAtMs: number;
  errorBudget: ErrorBudget;
  operations: Record<Operation, LatencyStats>;
  attempts: {
    total: number;
    queued: number;
    waitP50Ms: number;
    waitP99Ms: number;
    maxWaitMs: number;
    /** Attempts the agent made (TCP); 0 is the guard's promise. */
    agent: number;
    /** Attempts still pending when the app stopped. */
    pending: number;
  };
  samples: Sample[];
  timeline: AttemptRecord[];
  events: LabEvent[];
  /**
   * The scenario's attempts as a trace (docs/trace.md, field milliseconds), a
   * file name in the report's directory; absent when the lab wrote none.
   */
  trace?: string;
}

export interface LabResult {
  version: 2;
  startedAt: string;
  /** The factor applied to every duration: 0.02 runs Windows' 21 s attempt in 420 ms. */
  timeScale: number;
  /** The emulated attempt timeout at this scale (lab ms). */
  attemptTimeoutMs: number;
  /** The naive agent of the incident scenarios. */
  agentModel: AgentModel;
  /** Field milliseconds between operations of each kind. */
  fieldIntervalMs: Record<Operation, number>;
  services: { ldap: string; postgres: string };
  machine: { cpus: string; cores: number; memoryGiB: number; node: string; os: string };
  scenarios: ScenarioResult[];
}

/**
 * The lab's results, as written to results.json (schema version 1) and read
 * by the HTML report. All times are milliseconds of wall time since the
 * scenario started, unless named otherwise.
 */

export type Operation = "login" | "db" | "api";

export type ScenarioName = "baseline" | "incident" | "fixed" | "escalation" | "restart";

export interface LatencyStats {
  count: number;
  errors: number;
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
}

/** Who made an attempt, inside the app's process. */
export type AttemptRole = "login" | "db" | "api" | "api-dead" | "agent" | "other";

/** One connect attempt in the app's process: the bars of the timeline chart. */
export interface AttemptRecord {
  id: number;
  role: AttemptRole;
  host: string;
  port: number;
  /** Asked for a slot. */
  queuedAtMs: number;
  /** SYN sent (slot granted); null if it never started (cancelled or rejected while waiting). */
  startedAtMs: number | null;
  /** Connected, failed, timed out or cancelled. */
  endedAtMs: number;
  outcome: "connected" | "failed" | "timed-out" | "cancelled" | "rejected";
}

/** Something that happened to the system during the scenario (markers on the charts). */
export interface LabEvent {
  atMs: number;
  kind: "upstreams-died" | "pools-flushed" | "agent-started";
  detail: string;
}

export interface ScenarioResult {
  name: ScenarioName;
  description: string;
  /** The limiter profile in force, or null for none. */
  profile: string | null;
  agent: "none" | "naive" | "guarded";
  collector: "alive" | "dead" | "dead-silent-echo";
  durationMs: number;
  operations: Record<Operation, LatencyStats>;
  attempts: {
    total: number;
    queued: number;
    waitP50Ms: number;
    waitP99Ms: number;
    maxWaitMs: number;
    /** Attempts the agent made (TCP); 0 is the guard's promise. */
    agent: number;
  };
  samples: Sample[];
  timeline: AttemptRecord[];
  events: LabEvent[];
}

export interface LabResult {
  version: 1;
  startedAt: string;
  /** The factor applied to every duration: 0.02 runs Windows' 21 s attempt in 420 ms. */
  timeScale: number;
  /** The emulated attempt timeout at this scale. */
  attemptTimeoutMs: number;
  services: { ldap: string; postgres: string };
  machine: { cpus: string; cores: number; memoryGiB: number; node: string; os: string };
  scenarios: ScenarioResult[];
}

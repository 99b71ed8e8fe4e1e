import type { RawAttempt } from "./app/config.js";
import { percentile } from "./logins.js";
import type { Scenario } from "./scenarios.js";
import type {
  AttemptRecord,
  AttemptRole,
  LabEvent,
  LatencyStats,
  Operation,
  Sample,
  ScenarioResult,
} from "./types.js";

export interface ScenarioData {
  scenario: Scenario;
  durationMs: number;
  samples: Sample[];
  records: RawAttempt[];
  events: LabEvent[];
  roleOf: (record: RawAttempt) => AttemptRole;
}

export function latencyStats(samples: readonly Sample[]): LatencyStats {
  // JSON has no NaN: an operation with no samples reports zeros and count 0.
  if (samples.length === 0) return { count: 0, errors: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 };
  const durations = samples.map((s) => s.durationMs);
  return {
    count: samples.length,
    errors: samples.filter((s) => !s.ok).length,
    p50Ms: percentile(durations, 50),
    p95Ms: percentile(durations, 95),
    p99Ms: percentile(durations, 99),
    maxMs: Math.max(...durations),
  };
}

/** Turns what the load generator and the app's gate saw into a scenario's result. */
export function summarizeScenario(data: ScenarioData): ScenarioResult {
  const { scenario } = data;
  const timeline: AttemptRecord[] = data.records
    // Warm-up (pools opening their connections) ended before the window: not part of it.
    .filter((r) => r.endedAt === null || r.endedAt >= 0)
    .map((r) => ({
      id: r.id,
      role: data.roleOf(r),
      host: r.host,
      port: r.port,
      queuedAtMs: r.queuedAt,
      startedAtMs: r.startedAt,
      // Still pending when the app stopped: it ended then, cancelled.
      endedAtMs: r.endedAt ?? data.durationMs,
      outcome: r.outcome ?? "cancelled",
    }))
    .sort((a, b) => a.queuedAtMs - b.queuedAtMs);
  const waits = timeline.map((a) => (a.startedAtMs ?? a.endedAtMs) - a.queuedAtMs);
  const queued = timeline.filter((a, i) => (waits[i] as number) > 0.5 || a.startedAtMs === null);
  const operations = Object.fromEntries(
    (["login", "db", "api"] as Operation[]).map((op) => [
      op,
      latencyStats(data.samples.filter((s) => s.op === op)),
    ]),
  ) as Record<Operation, LatencyStats>;
  return {
    name: scenario.name,
    description: scenario.description,
    profile: scenario.profile,
    agent: scenario.agent,
    collector: scenario.collector,
    durationMs: data.durationMs,
    operations,
    attempts: {
      total: timeline.length,
      queued: queued.length,
      waitP50Ms: waits.length ? percentile(waits, 50) : 0,
      waitP99Ms: waits.length ? percentile(waits, 99) : 0,
      maxWaitMs: waits.length ? Math.max(...waits) : 0,
      agent: timeline.filter((a) => a.role === "agent" && a.startedAtMs !== null).length,
    },
    samples: data.samples,
    timeline,
    events: data.events,
  };
}

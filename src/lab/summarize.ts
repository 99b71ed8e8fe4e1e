import { max, percentile } from "../stats.js";
import type { RawAttempt } from "./app/config.js";
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
  /** When the app stopped: attempts still pending end here. */
  stoppedAtMs: number;
  samples: Sample[];
  records: RawAttempt[];
  events: LabEvent[];
  roleOf: (record: RawAttempt) => AttemptRole;
}

/**
 * Counts every operation and its failures; the percentiles describe the
 * successful ones only, since a failure's duration is how long it took to
 * fail, not a latency. JSON has no NaN: with no success they are 0 and `ok` is 0.
 */
export function latencyStats(samples: readonly Sample[]): LatencyStats {
  const failed = samples.filter((s) => !s.ok);
  const durations = samples.filter((s) => s.ok).map((s) => s.durationMs);
  const reasons = new Map<string, number>();
  for (const s of failed) {
    const why = s.error ?? "failed";
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  }
  const topError = [...reasons].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  const some = durations.length > 0;
  return {
    count: samples.length,
    errors: failed.length,
    errorRate: samples.length ? failed.length / samples.length : 0,
    topError,
    ok: durations.length,
    p50Ms: some ? percentile(durations, 50) : 0,
    p95Ms: some ? percentile(durations, 95) : 0,
    p99Ms: some ? percentile(durations, 99) : 0,
    maxMs: some ? max(durations) : 0,
  };
}

/** Turns what the load generator and the app's gate saw into a scenario's result. */
export function summarizeScenario(data: ScenarioData): ScenarioResult {
  const { scenario } = data;
  const timeline: AttemptRecord[] = data.records
    // Warm-up (pools opening their connections) ended before the window: not part of it.
    .filter((r) => r.endedAt === null || r.endedAt >= 0)
    .map((r): AttemptRecord => {
      // Still pending when the app stopped: it ends then, never before it was queued.
      const endedAtMs = r.endedAt ?? Math.max(data.stoppedAtMs, r.startedAt ?? r.queuedAt);
      return {
        id: r.id,
        role: data.roleOf(r),
        host: r.host,
        port: r.port,
        queuedAtMs: r.queuedAt,
        startedAtMs: r.startedAt,
        endedAtMs: Math.max(endedAtMs, r.queuedAt),
        outcome: r.outcome ?? "pending",
        ...(r.startedAt !== null && r.synAtMs ? { synAtMs: [...r.synAtMs] } : {}),
        ...(r.startedAt !== null && r.giveUpMs !== undefined ? { giveUpMs: r.giveUpMs } : {}),
      };
    })
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
    apiPools: scenario.apiPools,
    collector: scenario.collector,
    durationMs: data.durationMs,
    stoppedAtMs: data.stoppedAtMs,
    errorBudget: scenario.errorBudget,
    operations,
    attempts: {
      total: timeline.length,
      queued: queued.length,
      waitP50Ms: waits.length ? percentile(waits, 50) : 0,
      waitP99Ms: waits.length ? percentile(waits, 99) : 0,
      maxWaitMs: waits.length ? max(waits) : 0,
      agent: timeline.filter((a) => a.role === "agent" && a.startedAtMs !== null).length,
      pending: timeline.filter((a) => a.outcome === "pending").length,
    },
    samples: data.samples,
    timeline,
    events: data.events,
  };
}

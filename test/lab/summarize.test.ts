import assert from "node:assert/strict";
import { test } from "node:test";
import { scenarios } from "../../src/lab/scenarios.js";
import { latencyStats, summarizeScenario } from "../../src/lab/summarize.js";
import type { Sample } from "../../src/lab/types.js";

const incident = scenarios.find((s) => s.name === "incident");

test("an attempt still pending at the end ends when the app stopped, never before it was queued", () => {
  assert.ok(incident);
  const result = summarizeScenario({
    scenario: incident,
    durationMs: 2_500,
    stoppedAtMs: 4_100,
    samples: [],
    records: [
      // Queued during the drain, after the window: the old code ended it at the window's end.
      {
        id: 1,
        host: "127.0.0.1",
        port: 9,
        queuedAt: 3_000,
        startedAt: null,
        endedAt: null,
        outcome: null,
      },
      {
        id: 2,
        host: "127.0.0.1",
        port: 9,
        queuedAt: 2_900,
        startedAt: 2_950,
        endedAt: null,
        outcome: null,
      },
    ],
    events: [],
    roleOf: () => "api-dead",
  });
  for (const a of result.timeline) {
    assert.equal(a.outcome, "pending");
    assert.equal(a.endedAtMs, 4_100);
    assert.ok(a.endedAtMs >= a.queuedAtMs);
  }
  assert.equal(result.attempts.pending, 2);
  assert.equal(result.attempts.maxWaitMs, 1_100);
  assert.ok(result.attempts.waitP50Ms >= 0);
});

test("percentiles describe the successful operations; failures are counted with their reason", () => {
  const samples: Sample[] = [
    { op: "login", startMs: 0, durationMs: 10, ok: true },
    { op: "login", startMs: 1, durationMs: 20, ok: true },
    { op: "login", startMs: 2, durationMs: 1, ok: false, error: "InvalidCredentialsError: 49" },
    { op: "login", startMs: 3, durationMs: 2, ok: false, error: "InvalidCredentialsError: 49" },
    {
      op: "login",
      startMs: 4,
      durationMs: 900,
      ok: false,
      error: "no answer by the end of the drain",
    },
  ];
  const s = latencyStats(samples);
  assert.deepEqual(
    { ...s },
    {
      count: 5,
      errors: 3,
      errorRate: 0.6,
      topError: "InvalidCredentialsError: 49",
      ok: 2,
      p50Ms: 10,
      p95Ms: 20,
      p99Ms: 20,
      maxMs: 20,
    },
  );
});

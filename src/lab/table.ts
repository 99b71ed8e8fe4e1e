import { defaults } from "../defaults.js";
import { profiles } from "../emulate/profiles.js";
import { percentile } from "../stats.js";
import { type LoginWaitPrediction, predictLoginWaits } from "./model.js";
import type { LabResult, Operation, ScenarioName, ScenarioResult } from "./types.js";
import { duration, field, fieldAndLab } from "./units.js";

const ops: Operation[] = ["login", "db", "api"];

function pad(cells: string[], widths: number[]): string {
  return cells
    .map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
    .join("  ")
    .trimEnd();
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [
    pad(header, widths),
    pad(
      widths.map((w) => "-".repeat(w)),
      widths,
    ),
    ...rows.map((r) => pad(r, widths)),
  ];
}

const pct = (x: number) => `${Math.round(x * 100)} %`;

/** The terminal summary, in field time: latency per operation per scenario, the attempts, the checks. */
export function renderTable(result: LabResult): string {
  const f = (labMs: number, some = true) => (some ? field(labMs, result.timeScale) : "—");
  const latency = table(
    ["scenario", "op", "n", "failed", "p50", "p95", "p99", "max"],
    result.scenarios.flatMap((s) =>
      ops.map((op) => {
        const o = s.operations[op];
        const some = o.ok > 0;
        return [
          s.name,
          op,
          String(o.count),
          o.errors ? `${o.errors} (${pct(o.errorRate)})` : "0",
          f(o.p50Ms, some),
          f(o.p95Ms, some),
          f(o.p99Ms, some),
          f(o.maxMs, some),
        ];
      }),
    ),
  );
  const attempts = table(
    [
      "scenario",
      "limiter",
      "attempts",
      "queued",
      "pending",
      "wait p50",
      "wait p99",
      "wait max",
      "agent TCP",
    ],
    result.scenarios.map((s) => {
      const some = s.attempts.total > 0;
      return [
        s.name,
        s.profile ?? "none",
        String(s.attempts.total),
        String(s.attempts.queued),
        String(s.attempts.pending),
        f(s.attempts.waitP50Ms, some),
        f(s.attempts.waitP99Ms, some),
        f(s.attempts.maxWaitMs, some),
        String(s.attempts.agent),
      ];
    }),
  );
  const a = result.agentModel;
  return `${[
    `Field time (lab time ÷ ${result.timeScale}): an attempt to a dead peer lives ${fieldAndLab(result.attemptTimeoutMs, result.timeScale)}.`,
    `Naive agent: ${loops(a.channels)}, ${a.retryPauseMs ? `retry pause ${duration(a.retryPauseMs)}` : "retrying at once"}. Window ${field(result.scenarios[0]?.durationMs ?? 0, result.timeScale)} per scenario.`,
    "",
    "Operations (latency of successful ones, field time):",
    ...latency,
    "",
    "Connect attempts in the app's process (field time):",
    ...attempts,
    "",
    ...findings(result),
  ].join("\n")}\n`;
}

const loops = (n: number) => `${n} reconnect loop${n === 1 ? "" : "s"}`;

/** Ticks for the quantiles the incident check compares. */
export const modelQuantiles = [25, 50, 75] as const;

/** The model's tolerance on each quantile, as a fraction of the attempt timeout (both directions). */
export const modelTolerance = 0.2;

/**
 * How long each attempt of a role waited for a slot, lab ms, as the app's
 * limiter recorded it (asked → SYN sent, or → ended if it never started).
 * This is the queue's own measure: the machine's noise in the load generator,
 * the app's HTTP handling or the bind does not enter it.
 */
export function slotWaits(s: ScenarioResult, role: string): number[] {
  return s.timeline
    .filter((a) => a.role === role)
    .map((a) => (a.startedAtMs ?? a.endedAtMs) - a.queuedAtMs);
}

export interface IncidentComparison {
  prediction: LoginWaitPrediction;
  /** Lab ms added to every predicted wait (0: the measured waits are the limiter's own). */
  overheadMs: number;
  toleranceMs: number;
  measured: Record<(typeof modelQuantiles)[number], number>;
  predicted: Record<(typeof modelQuantiles)[number], number>;
  measuredMaxMs: number;
  predictedMaxMs: number;
  /** Login connect attempts: the sample. */
  n: number;
  ok: boolean;
}

/**
 * The incident's logins against the queue model (src/lab/model.ts) for the
 * run's limit, attempt timeout and agent, in lab milliseconds.
 */
export function compareWithModel(result: LabResult): IncidentComparison | null {
  const incident = result.scenarios.find((s) => s.name === "incident");
  if (!incident) return null;
  const t = result.attemptTimeoutMs;
  const limit = limitOf(incident.profile);
  const prediction = predictLoginWaits({
    attemptTimeoutMs: t,
    channels: result.agentModel.channels,
    retryPauseMs: result.agentModel.retryPauseMs * result.timeScale,
    limit,
  });
  const overheadMs = 0;
  const logins = slotWaits(incident, "login");
  const toleranceMs = modelTolerance * t;
  const q = (values: number[], add: number) =>
    Object.fromEntries(modelQuantiles.map((p) => [p, percentile(values, p) + add])) as Record<
      (typeof modelQuantiles)[number],
      number
    >;
  const measured = q(logins, 0);
  const predicted = q(prediction.waits, overheadMs);
  const measuredMaxMs = logins.length ? Math.max(...logins) : Number.NaN;
  const predictedMaxMs = prediction.maxMs + overheadMs;
  const ok =
    logins.length >= 10 &&
    modelQuantiles.every((p) => Math.abs(measured[p] - predicted[p]) <= toleranceMs) &&
    measuredMaxMs <= predictedMaxMs + toleranceMs;
  return {
    prediction,
    overheadMs,
    toleranceMs,
    measured,
    predicted,
    measuredMaxMs,
    predictedMaxMs,
    n: logins.length,
    ok,
  };
}

function limitOf(profile: string | null): number {
  const p = profile
    ? (profiles as Record<string, { options: { maxInFlight: number } }>)[profile]
    : undefined;
  return p?.options.maxInFlight ?? Number.POSITIVE_INFINITY;
}

/**
 * The checks, one line each, ✔ or ✘: every scenario's error budget, then the
 * facts each scenario must show. A broken run (a wrong password, a dead
 * service, a fix that is not applied) ends in ✘.
 */
export function findings(result: LabResult): string[] {
  const by = (name: ScenarioName) => result.scenarios.find((s) => s.name === name);
  const t = result.attemptTimeoutMs;
  const scale = result.timeScale;
  const fl = (labMs: number) => fieldAndLab(labMs, scale);
  const fo = (labMs: number) => field(labMs, scale);
  const lines: Array<{ order: number; line: string }> = [];
  const order = (text: string) => {
    const name = text.slice(0, text.indexOf(":"));
    const i = result.scenarios.findIndex((s) => s.name === name);
    return i < 0 ? result.scenarios.length : i;
  };
  const check = (ok: boolean, text: string) =>
    lines.push({ order: order(text), line: `${ok ? "✔" : "✘"} ${text}` });
  const baseline = by("baseline");
  // "Not hurt": the role's connect attempts (if any) did not wait a quarter attempt for a
  // slot (p95), and the operation's median is within a quarter attempt of the baseline's.
  // A wait behind a pending attempt costs the rest of a whole one; the noise of a busy
  // machine, stretched by the scale, stays below these bounds.
  const notHurt = (s: ScenarioResult, op: Operation) => {
    const ref = baseline && baseline.operations[op].ok > 0 ? baseline.operations[op].p50Ms : 0;
    const o = s.operations[op];
    const waits = slotWaits(s, op);
    const waitP95 = waits.length ? percentile(waits, 95) : 0;
    return {
      ok: o.ok > 0 && o.p50Ms <= ref + t / 4 && waitP95 <= t / 4,
      text:
        `${op} p50 ${fo(o.p50Ms)}${baseline ? ` (baseline ${fo(ref)})` : ""}` +
        (waits.length
          ? `, its ${waits.length} attempt${waits.length === 1 ? "" : "s"} waited p95 ${fo(waitP95)}`
          : ""),
    };
  };
  const attemptsBy = (s: ScenarioResult, role: string) =>
    s.timeline.filter((a) => a.role === role).length;

  for (const s of result.scenarios) budgetCheck(s, check);

  const incident = by("incident");
  if (incident) {
    const m = compareWithModel(result) as IncidentComparison;
    const list = (r: Record<number, number>) =>
      modelQuantiles.map((p) => fo(r[p] as number)).join(" / ");
    const a = result.agentModel;
    check(
      m.ok,
      `incident: logins wait for the agent's pending attempt — their connects waited p25 / p50 / p75 ${list(m.measured)}, ` +
        `max ${fo(m.measuredMaxMs)}; model (${loops(a.channels)}, ${a.retryPauseMs ? `pause ${duration(a.retryPauseMs)}` : "no pause"}) ` +
        `${list(m.predicted)}, max ${fo(m.predictedMaxMs)}, each ± ${fo(m.toleranceMs)} ` +
        `(n = ${m.n}; lab: p50 ${duration(m.measured[50])})`,
    );
    const pooled = attemptsBy(incident, "db") + attemptsBy(incident, "api");
    const db = notHurt(incident, "db");
    const api = notHurt(incident, "api");
    check(
      pooled === 0 && db.ok && api.ok,
      `incident: pooled DB and API calls make no connect attempt (${pooled}) and are not hurt: ${db.text}, ${api.text}`,
    );
  }

  if (baseline) {
    check(
      baseline.attempts.queued === 0 && baseline.operations.login.ok > 0,
      `baseline: no attempt waited for a slot (${baseline.attempts.queued} queued); login p50 ${fl(baseline.operations.login.p50Ms)}`,
    );
  }

  const fixed = by("fixed");
  if (fixed) {
    // The guard's link may try TCP once per sparse interval (its wall clock) while preflights fail.
    const allowed = Math.floor(fixed.stoppedAtMs / defaults.sparseTcpIntervalMs);
    const login = notHurt(fixed, "login");
    check(
      fixed.agent === "guarded" && fixed.attempts.agent <= allowed && login.ok,
      `fixed: the ${fixed.agent} agent made ${fixed.attempts.agent} TCP attempts (allowed ${allowed}); ${login.text}`,
    );
  }

  const escalation = by("escalation");
  if (escalation) {
    const dead = attemptsBy(escalation, "api-dead");
    const login = escalation.operations.login;
    // Worse than the incident's model median: the dead upstreams' attempts pile up.
    const hurt = login.errorRate > 0.5 || (login.ok > 0 && login.p50Ms >= t / 2);
    check(
      dead > 0 && hurt,
      `escalation: ${dead} reconnects to dead upstreams hold the slot; logins p50 ${fo(login.p50Ms)}, ${pct(login.errorRate)} failed`,
    );
  }
  const escalationFixed = by("escalation-fixed");
  if (escalationFixed) {
    const login = notHurt(escalationFixed, "login");
    const db = notHurt(escalationFixed, "db");
    check(
      escalationFixed.apiPools === "guarded" && login.ok && db.ok,
      `escalation-fixed: API pools on synlimit/guard (${attemptsBy(escalationFixed, "api-dead")} short attempts to dead upstreams); logins and DB not hurt: ${login.text}, ${db.text}`,
    );
  }
  const restart = by("restart");
  if (restart) {
    const dbAttempts = attemptsBy(restart, "db");
    const db = restart.operations.db;
    check(
      dbAttempts > 0 && (db.errorRate > 0 || db.p99Ms >= t / 2),
      `restart: flushed DB pool reconnects behind the dead upstreams (${dbAttempts} DB attempts; DB p99 ${fo(db.p99Ms)}, ${pct(db.errorRate)} failed)`,
    );
  }
  const restartFixed = by("restart-fixed");
  if (restartFixed) {
    const dbAttempts = attemptsBy(restartFixed, "db");
    const login = notHurt(restartFixed, "login");
    const db = notHurt(restartFixed, "db");
    check(
      restartFixed.apiPools === "guarded" && dbAttempts > 0 && login.ok && db.ok,
      `restart-fixed: API pools on synlimit/guard; the flushed DB pool reconnects (${dbAttempts} attempt${dbAttempts === 1 ? "" : "s"}) without waiting: ${db.text}, ${login.text}`,
    );
  }
  // In the story's order; a stable sort keeps each scenario's budget line first.
  return lines.sort((a, b) => a.order - b.order).map((l) => l.line);
}

function budgetCheck(s: ScenarioResult, check: (ok: boolean, text: string) => void): void {
  const over = ops.filter((op) => {
    const o = s.operations[op];
    return o.count === 0 || o.errorRate > s.errorBudget[op];
  });
  if (over.length === 0) {
    const failed = ops.filter((op) => s.operations[op].errors > 0);
    check(
      true,
      `${s.name}: ${
        failed.length === 0
          ? "no operation failed"
          : `failures within budget (${failed
              .map(
                (op) =>
                  `${op} ${s.operations[op].errors} of ${s.operations[op].count}, budget ${pct(s.errorBudget[op])}`,
              )
              .join("; ")})`
      }`,
    );
    return;
  }
  for (const op of over) {
    const o = s.operations[op];
    check(
      false,
      o.count === 0
        ? `${s.name}: no ${op} ran`
        : `${s.name}: ${o.errors} of ${o.count} ${op}s failed (${pct(o.errorRate)}, budget ${pct(s.errorBudget[op])}): ${o.topError ?? "unknown"}`,
    );
  }
}

import type { LabResult, Operation, ScenarioResult } from "./types.js";

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

const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));

/** The terminal summary: latency per operation per scenario, then the attempts. */
export function renderTable(result: LabResult): string {
  const latency = table(
    ["scenario", "op", "p50 ms", "p95 ms", "p99 ms", "max ms", "n", "errors"],
    result.scenarios.flatMap((s) =>
      ops.map((op) => {
        const o = s.operations[op];
        return [
          s.name,
          op,
          ms(o.p50Ms),
          ms(o.p95Ms),
          ms(o.p99Ms),
          ms(o.maxMs),
          String(o.count),
          String(o.errors),
        ];
      }),
    ),
  );
  const attempts = table(
    ["scenario", "limiter", "attempts", "queued", "wait p50", "wait p99", "wait max", "agent TCP"],
    result.scenarios.map((s) => [
      s.name,
      s.profile ?? "none",
      String(s.attempts.total),
      String(s.attempts.queued),
      ms(s.attempts.waitP50Ms),
      ms(s.attempts.waitP99Ms),
      ms(s.attempts.maxWaitMs),
      String(s.attempts.agent),
    ]),
  );
  return `${[
    `time scale ${result.timeScale}: a pending attempt to a dead peer lives ${ms(result.attemptTimeoutMs)} ms (Windows' 21 s)`,
    "",
    ...latency,
    "",
    ...attempts,
    "",
    ...findings(result),
  ].join("\n")}\n`;
}

/** The incident's facts, read off the measurements, one line each. */
export function findings(result: LabResult): string[] {
  const by = (name: string) => result.scenarios.find((s) => s.name === name);
  const t = result.attemptTimeoutMs;
  const lines: string[] = [];
  const check = (ok: boolean, text: string) => lines.push(`${ok ? "✔" : "✘"} ${text}`);
  const [baseline, incident, fixed, escalation, restart] = [
    by("baseline"),
    by("incident"),
    by("fixed"),
    by("escalation"),
    by("restart"),
  ];
  if (incident) {
    check(
      incident.operations.login.p50Ms >= 0.8 * t,
      `incident: logins wait for the agent's pending attempt (login p50 ${ms(incident.operations.login.p50Ms)} ms vs attempt timeout ${ms(t)} ms)`,
    );
    const pooledAttempts = incident.timeline.filter(
      (a) => a.role === "db" || a.role === "api",
    ).length;
    check(
      pooledAttempts === 0 && incident.operations.db.p99Ms < t && incident.operations.api.p99Ms < t,
      `incident: pooled DB and API calls need no connect attempt and are not hurt (${pooledAttempts} attempts; p99 ${ms(incident.operations.db.p99Ms)} / ${ms(incident.operations.api.p99Ms)} ms${baseline ? `, baseline ${ms(baseline.operations.db.p99Ms)} / ${ms(baseline.operations.api.p99Ms)} ms` : ""})`,
    );
  }
  if (fixed) {
    check(
      fixed.attempts.agent === 0 && fixed.operations.login.p50Ms < t / 4,
      `fixed: the guarded agent made ${fixed.attempts.agent} TCP attempts; login p50 / p99 ${ms(fixed.operations.login.p50Ms)} / ${ms(fixed.operations.login.p99Ms)} ms${baseline ? ` (baseline ${ms(baseline.operations.login.p50Ms)} / ${ms(baseline.operations.login.p99Ms)} ms)` : ""}`,
    );
  }
  if (escalation && incident) {
    check(
      escalation.operations.login.p50Ms > incident.operations.login.p50Ms,
      `escalation: dead upstreams' reconnects make logins worse than the incident (p50 ${ms(escalation.operations.login.p50Ms)} vs ${ms(incident.operations.login.p50Ms)} ms)`,
    );
  }
  if (restart && escalation) {
    const dbWaits = (s: ScenarioResult) => s.timeline.filter((a) => a.role === "db").length;
    check(
      restart.operations.db.p99Ms > escalation.operations.db.p99Ms &&
        dbWaits(restart) > dbWaits(escalation),
      `restart: flushed pools reconnect behind the dead upstreams (DB p99 ${ms(restart.operations.db.p99Ms)} vs ${ms(escalation.operations.db.p99Ms)} ms; ${dbWaits(restart)} DB attempts vs ${dbWaits(escalation)})`,
    );
  }
  return lines;
}

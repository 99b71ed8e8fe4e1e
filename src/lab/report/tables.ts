import type { LabResult, LatencyStats, ScenarioResult } from "../types.js";
import { esc, formatStat } from "./format.js";
import { operations } from "./palette.js";

/**
 * Every number cell carries its source: data-scenario, data-op (operation
 * tables only) and data-stat (a field of LatencyStats, or a dot path into the
 * ScenarioResult such as "attempts.queued"); run-level numbers carry
 * data-meta (a dot path into the LabResult). The text is formatStat(field, value).
 */
function cell(attrs: Record<string, string>, field: string, value: number | null): string {
  const hooks = Object.entries(attrs)
    .map(([k, v]) => ` data-${k}="${esc(v)}"`)
    .join("");
  return `<td class="num"${hooks}>${esc(formatStat(field, value))}</td>`;
}

/** A latency of zero samples is no latency, whatever number the lab stored for it. */
function measured(st: LatencyStats | undefined, stat: NumericStat): number | null {
  if (!st) return null;
  return st.ok === 0 && stat.endsWith("Ms") ? null : st[stat];
}

type NumericStat = Exclude<keyof LatencyStats, "topError">;

const opStats: Array<[NumericStat, string]> = [
  ["count", "count"],
  ["errors", "errors"],
  ["p50Ms", "p50 ms"],
  ["p95Ms", "p95 ms"],
  ["p99Ms", "p99 ms"],
  ["maxMs", "max ms"],
];

export function operationsTable(result: LabResult): string {
  const head = `<tr><th scope="col">scenario</th><th scope="col">operation</th>${opStats
    .map(([, label]) => `<th scope="col" class="num">${label}</th>`)
    .join("")}</tr>`;
  const rows = result.scenarios.flatMap((s) =>
    operations.map((op, i) => {
      const st = s.operations[op];
      const name =
        i === 0 ? `<th scope="rowgroup" rowspan="${operations.length}">${esc(s.name)}</th>` : "";
      const cells = opStats
        .map(([stat]) => cell({ scenario: s.name, op, stat }, stat, measured(st, stat)))
        .join("");
      return `<tr${i === 0 ? ' class="group"' : ""}>${name}<th scope="row">${op}</th>${cells}</tr>`;
    }),
  );
  return table("Latency per operation (ms), as the load generator saw it", head, rows);
}

const attemptStats: Array<[keyof ScenarioResult["attempts"], string]> = [
  ["total", "attempts"],
  ["queued", "queued"],
  ["waitP50Ms", "wait p50 ms"],
  ["waitP99Ms", "wait p99 ms"],
  ["maxWaitMs", "wait max ms"],
  ["agent", "agent attempts"],
];

export function attemptsTable(result: LabResult): string {
  const head = `<tr><th scope="col">scenario</th><th scope="col">limiter</th>${attemptStats
    .map(([, label]) => `<th scope="col" class="num">${label}</th>`)
    .join("")}</tr>`;
  const rows = result.scenarios.map((s) => {
    const cells = attemptStats
      .map(([k]) => {
        const none = s.attempts.total === 0 && k.endsWith("Ms");
        return cell({ scenario: s.name, stat: `attempts.${k}` }, k, none ? null : s.attempts[k]);
      })
      .join("");
    return `<tr><th scope="row">${esc(s.name)}</th><td>${esc(s.profile ?? "none")}</td>${cells}</tr>`;
  });
  return table("Connect attempts in the app's process, and time waiting for a slot", head, rows);
}

export function scenarioFacts(s: ScenarioResult): string {
  return `<dl class="facts">
<dt>limiter profile</dt><dd>${esc(s.profile ?? "none")}</dd>
<dt>agent</dt><dd>${esc(s.agent)}</dd>
<dt>collector</dt><dd>${esc(s.collector)}</dd>
<dt>duration</dt><dd><span class="num" data-scenario="${esc(s.name)}" data-stat="durationMs">${esc(
    formatStat("durationMs", s.durationMs),
  )}</span> ms</dd>
</dl>`;
}

export function metadataTable(result: LabResult): string {
  const meta = (path: string, field: string, value: number) =>
    `<span class="num" data-meta="${esc(path)}">${esc(formatStat(field, value))}</span>`;
  const realTimeout = result.timeScale > 0 ? result.attemptTimeoutMs / result.timeScale : null;
  const m = result.machine;
  const rows: Array<[string, string]> = [
    ["started", esc(result.startedAt)],
    [
      "time scale",
      `${meta("timeScale", "timeScale", result.timeScale)} (every duration multiplied by this)`,
    ],
    [
      "attempt timeout",
      `${meta("attemptTimeoutMs", "attemptTimeoutMs", result.attemptTimeoutMs)} ms` +
        (realTimeout === null ? "" : ` (${(realTimeout / 1000).toFixed(1)} s real time)`),
    ],
    ["LDAP (logins)", esc(result.services.ldap)],
    ["PostgreSQL (db)", esc(result.services.postgres)],
    [
      "machine",
      `${esc(m.cpus)}, ${meta("machine.cores", "cores", m.cores)} cores, ` +
        `${meta("machine.memoryGiB", "memoryGiB", m.memoryGiB)} GiB, ${esc(m.os)}, Node ${esc(m.node)}`,
    ],
  ];
  return `<table class="meta"><caption>The run</caption><tbody>${rows
    .map(([k, v]) => `<tr><th scope="row">${k}</th><td>${v}</td></tr>`)
    .join("")}</tbody></table>`;
}

function table(caption: string, head: string, rows: string[]): string {
  return `<table><caption>${esc(caption)}</caption><thead>${head}</thead><tbody>${rows.join(
    "\n",
  )}</tbody></table>`;
}

import { findings } from "../table.js";
import type { LabResult, LatencyStats, ScenarioResult } from "../types.js";
import { fieldAndLab } from "../units.js";
import { esc, formatStat } from "./format.js";
import { operations } from "./palette.js";

/**
 * Every number cell carries its source: data-scenario, data-op (operation
 * tables only) and data-stat (a field of LatencyStats, or a dot path into the
 * ScenarioResult such as "attempts.queued"); run-level numbers carry
 * data-meta (a dot path into the LabResult). The text is
 * formatStat(field, value, timeScale).
 */
function cell(
  attrs: Record<string, string>,
  field: string,
  value: number | null,
  timeScale: number,
): string {
  const hooks = Object.entries(attrs)
    .map(([k, v]) => ` data-${k}="${esc(v)}"`)
    .join("");
  return `<td class="num"${hooks}>${esc(formatStat(field, value, timeScale))}</td>`;
}

type NumericStat = Exclude<keyof LatencyStats, "topError">;

/** A latency with no successful operation is no latency, whatever number the lab stored for it. */
function measured(st: LatencyStats | undefined, stat: NumericStat): number | null {
  if (!st) return null;
  return st.ok === 0 && stat.endsWith("Ms") ? null : st[stat];
}

const opStats: Array<[NumericStat, string]> = [
  ["count", "n"],
  ["errors", "failed"],
  ["errorRate", "failed %"],
  ["p50Ms", "p50"],
  ["p95Ms", "p95"],
  ["p99Ms", "p99"],
  ["maxMs", "max"],
];

export function operationsTable(result: LabResult): string {
  const head = `<tr><th scope="col">scenario</th><th scope="col">op</th>${opStats
    .map(([, label]) => `<th scope="col" class="num">${label}</th>`)
    .join("")}</tr>`;
  const rows = result.scenarios.flatMap((s) =>
    operations.map((op, i) => {
      const st = s.operations[op];
      const name =
        i === 0 ? `<th scope="rowgroup" rowspan="${operations.length}">${esc(s.name)}</th>` : "";
      const cells = opStats
        .map(([stat]) =>
          cell({ scenario: s.name, op, stat }, stat, measured(st, stat), result.timeScale),
        )
        .join("");
      const failing = st && st.errors > 0 ? ' class="failing"' : "";
      return `<tr${i === 0 ? ' class="group"' : ""}${failing}>${name}<th scope="row">${op}</th>${cells}</tr>`;
    }),
  );
  return table(
    "Operations as the load generator saw them: how many failed, and the latency of the successful ones (field time)",
    head,
    rows,
  );
}

const attemptStats: Array<[keyof ScenarioResult["attempts"], string]> = [
  ["total", "attempts"],
  ["queued", "queued"],
  ["pending", "pending at end"],
  ["waitP50Ms", "wait p50"],
  ["waitP99Ms", "wait p99"],
  ["maxWaitMs", "wait max"],
  ["agent", "agent TCP"],
];

export function attemptsTable(result: LabResult): string {
  const head = `<tr><th scope="col">scenario</th><th scope="col">limiter</th>${attemptStats
    .map(([, label]) => `<th scope="col" class="num">${label}</th>`)
    .join("")}</tr>`;
  const rows = result.scenarios.map((s) => {
    const cells = attemptStats
      .map(([k]) => {
        const none = s.attempts.total === 0 && k.endsWith("Ms");
        return cell(
          { scenario: s.name, stat: `attempts.${k}` },
          k,
          none ? null : (s.attempts[k] ?? null),
          result.timeScale,
        );
      })
      .join("");
    return `<tr><th scope="row">${esc(s.name)}</th><td>${esc(s.profile ?? "none")}</td>${cells}</tr>`;
  });
  return table(
    "Connect attempts in the app's process, and time waiting for a slot (field time)",
    head,
    rows,
  );
}

/** The lab's checks, as the terminal prints them: ✔ or ✘, one per line. */
export function checksList(result: LabResult): string {
  const lines = findings(result);
  return `<ul class="checks">${lines
    .map((l) => `<li class="${l.startsWith("✔") ? "pass" : "fail"}">${esc(l)}</li>`)
    .join("")}</ul>`;
}

export function scenarioFacts(s: ScenarioResult, timeScale: number): string {
  return `<dl class="facts">
<dt>limiter profile</dt><dd>${esc(s.profile ?? "none")}</dd>
<dt>agent</dt><dd>${esc(s.agent)}</dd>
<dt>API pools</dt><dd>${esc(s.apiPools ?? "plain")}</dd>
<dt>collector</dt><dd>${esc(s.collector)}</dd>
<dt>window</dt><dd><span class="num" data-scenario="${esc(s.name)}" data-stat="durationMs">${esc(
    formatStat("durationMs", s.durationMs, timeScale),
  )}</span></dd>
</dl>`;
}

export function metadataTable(result: LabResult): string {
  const meta = (path: string, field: string, value: number) =>
    `<span class="num" data-meta="${esc(path)}">${esc(formatStat(field, value, result.timeScale))}</span>`;
  const m = result.machine;
  const a = result.agentModel;
  const rows: Array<[string, string]> = [
    ["started", esc(result.startedAt)],
    [
      "time scale",
      `${meta("timeScale", "timeScale", result.timeScale)} (every emulated duration multiplied by this; the page shows field time, lab time ÷ scale)`,
    ],
    [
      "attempt timeout",
      `${meta("attemptTimeoutMs", "attemptTimeoutMs", result.attemptTimeoutMs)} (lab: ${esc(
        fieldAndLab(result.attemptTimeoutMs, 1),
      )})`,
    ],
    [
      "naive agent",
      a
        ? `${esc(a.channels)} reconnect loop${a.channels === 1 ? "" : "s"}, ${
            a.retryPauseMs ? `${esc(a.retryPauseMs / 1000)} s pause` : "retrying at once"
          }`
        : "—",
    ],
    ["LDAP (logins)", esc(result.services.ldap)],
    ["PostgreSQL (db)", esc(result.services.postgres)],
    [
      "machine",
      `${esc(m.cpus)}, ${meta("machine.cores", "cores", m.cores)} cores, ` +
        `${meta("machine.memoryGiB", "memoryGiB", m.memoryGiB)} GiB, ${esc(m.os)}, Node ${esc(m.node)}`,
    ],
  ];
  return `<div class="wide"><table class="meta"><caption>The run</caption><tbody>${rows
    .map(([k, v]) => `<tr><th scope="row">${k}</th><td>${v}</td></tr>`)
    .join("")}</tbody></table></div>`;
}

function table(caption: string, head: string, rows: string[]): string {
  // The wrapper scrolls a wide table on a phone; the page itself never does.
  return `<div class="wide"><table><caption>${esc(caption)}</caption><thead>${head}</thead><tbody>${rows.join(
    "\n",
  )}</tbody></table></div>`;
}

import type { SimSummary, WaitStats } from "./summary.js";
import type { SweepResult } from "./sweep.js";

export function formatMs(ms: number): string {
  if (ms === 0) return "0";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** `1 attempt`, `2 attempts`. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

const bars = "▁▂▃▄▅▆▇█";

/** A one-line picture of a series (0 blank-ish, the max full). */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  if (max === 0) return bars[0]?.repeat(values.length) ?? "";
  return values.map((v) => bars[Math.min(7, Math.round((v / max) * 7))]).join("");
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

const waitCells = (w: WaitStats) => [
  String(w.count),
  formatMs(w.meanMs),
  formatMs(w.p50Ms),
  formatMs(w.p99Ms),
  formatMs(w.maxMs),
];

export function renderSummary(s: SimSummary, limiter: string): string {
  const rows = Object.entries(s.byRole).map(([role, r]) => [
    role,
    ...waitCells(r),
    String(r.failures),
  ]);
  if (rows.length !== 1 || s.byRole["(none)"] === undefined)
    rows.push(["overall", ...waitCells(s.waits), String(s.failures)]);
  const occ = s.occupancy;
  const o = s.outcomes;
  return [
    `${plural(s.attempts, "attempt")} over ${formatMs(s.spanMs)}, under ${limiter}`,
    "",
    "wait for a slot:",
    table(["role", "attempts", "mean", "p50", "p99", "max", "failures"], rows),
    "",
    `slots: ${occ.meanInFlight.toFixed(2)} in flight on average (at most ${occ.maxInFlight})${occ.saturatedFraction === null ? "" : `; every slot busy ${(occ.saturatedFraction * 100).toFixed(1)} % of the time`}`,
    `queue: ${s.queue.meanLength.toFixed(2)} waiting on average, at most ${s.queue.maxLength}; over time (longest per ${formatMs(s.queue.timeline.bucketMs)}):`,
    `  ${sparkline(s.queue.timeline.max)}`,
    `outcomes: ${o.connected} connected, ${o.timeout} timeout, ${o.refused} refused, ${o.failed} failed, ${o.cancelled} cancelled, ${o.rejected} rejected by the limiter, ${o.gaveUp} gave up waiting`,
  ].join("\n");
}

/** `swept`: what was swept over which base limiter, for the table's heading. */
export function renderSweep(results: readonly SweepResult[], swept?: string): string {
  const params = Object.keys(results[0]?.labels ?? {});
  const roles = [...new Set(results.flatMap((r) => Object.keys(r.summary.byRole)))];
  const header = [
    ...params,
    "mean",
    "p50",
    "p99",
    "max",
    ...roles.map((r) => `${r} mean`),
    ...roles.map((r) => `${r} p99`),
    "failures",
  ];
  const rows = results.map((r) => [
    ...params.map((p) => r.labels[p] ?? ""),
    formatMs(r.summary.waits.meanMs),
    formatMs(r.summary.waits.p50Ms),
    formatMs(r.summary.waits.p99Ms),
    formatMs(r.summary.waits.maxMs),
    ...roles.map((role) =>
      r.summary.byRole[role] ? formatMs(r.summary.byRole[role].meanMs) : "—",
    ),
    ...roles.map((role) => (r.summary.byRole[role] ? formatMs(r.summary.byRole[role].p99Ms) : "—")),
    String(r.summary.failures),
  ]);
  const heading = swept === undefined ? "" : ` (sweep of ${swept})`;
  return `wait for a slot, per simulation${heading}:\n${table(header, rows)}`;
}

/** JSON has no Infinity: an unlimited setting is written as "unlimited". */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v === Number.POSITIVE_INFINITY ? "unlimited" : v), 2);
}

import * as Plot from "@observablehq/plot";
import { chartWidth, logDomain, powersOfTen, renderSvg } from "../../report/dom.js";
import type { LabResult, Operation, ScenarioName } from "../types.js";
import { duration } from "../units.js";
import { operations, percentileStats, type Stat, statColors } from "./palette.js";

export interface ComparisonPoint {
  scenario: ScenarioName;
  op: Operation;
  stat: Stat;
  /** Field seconds. */
  value: number;
}

export interface ComparisonChart {
  /** One SVG per operation, in `operations` order. */
  svgs: Array<{ op: Operation; svg: string }>;
  points: ComparisonPoint[];
  /** Scenario and operation pairs with failures, drawn as "✘ N % failed". */
  failures: Array<{ scenario: ScenarioName; op: Operation; rate: number }>;
}

/** One point per scenario, operation and percentile of successful operations; none without a success. */
export function comparisonPoints(result: LabResult): ComparisonPoint[] {
  return result.scenarios.flatMap((s) =>
    operations.flatMap((op) =>
      percentileStats.flatMap((stat) => {
        const o = s.operations[op];
        const value = o?.[stat];
        return o && (o.ok ?? o.count) > 0 && typeof value === "number" && Number.isFinite(value)
          ? [{ scenario: s.name, op, stat, value: value / result.timeScale / 1000 }]
          : [];
      }),
    ),
  );
}

/**
 * p50, p95 and p99 of each operation in each scenario, one chart per
 * operation (a row per scenario) on one shared log axis of field seconds;
 * the error rate in the right margin, where no point can sit.
 */
export function comparisonChart(result: LabResult, width = chartWidth): ComparisonChart {
  const narrow = width < 600;
  const points = comparisonPoints(result);
  const positive = points.map((p) => p.value).filter((v) => v > 0);
  const domain = logDomain(
    Math.max(0.001, positive.length ? Math.min(...positive) : 0.01),
    positive.length ? Math.max(...positive) : 1,
  );
  const names = result.scenarios.map((s) => s.name);
  const failures = result.scenarios.flatMap((s) =>
    operations
      .filter((op) => (s.operations[op]?.errors ?? 0) > 0)
      .map((op) => ({
        scenario: s.name,
        op,
        rate: s.operations[op].errors / Math.max(1, s.operations[op].count),
      })),
  );
  const svgs = operations.map((op) => {
    const mine = points.filter((p) => p.op === op);
    const rows = names.map((scenario) => ({
      scenario,
      lo: mine.find((p) => p.scenario === scenario && p.stat === "p50Ms")?.value,
      hi: mine.find((p) => p.scenario === scenario && p.stat === "p99Ms")?.value,
    }));
    const empty = names.filter((n) => !mine.some((p) => p.scenario === n));
    const failed = failures.filter((f) => f.op === op);
    const svg = renderSvg(
      {
        width,
        height: names.length * 22 + 44,
        marginLeft: narrow ? 100 : 130,
        marginRight: narrow ? 78 : 110,
        marginTop: 8,
        x: {
          type: "log",
          domain,
          ticks: powersOfTen(domain),
          tickFormat: "~g",
          label: narrow ? `${op}: field s (log) →` : `${op}: field seconds (log) →`,
          labelAnchor: "left",
        },
        y: { domain: names, label: null },
        color: { domain: percentileStats, range: percentileStats.map((s) => statColors[s]) },
        marks: [
          Plot.frame({ stroke: "#ddd" }),
          Plot.gridX({ stroke: "#eee", strokeOpacity: 1 }),
          Plot.ruleY(
            rows.filter((r) => r.lo !== undefined && r.hi !== undefined),
            { y: "scenario", x1: "lo", x2: "hi", stroke: "#888", strokeWidth: 1.5 },
          ),
          Plot.dot(mine, {
            x: "value",
            y: "scenario",
            fill: "stat",
            r: 4.5,
            stroke: "white",
            title: (p: ComparisonPoint) =>
              `${p.scenario} · ${p.op} · ${p.stat.replace("Ms", "")} of successful: ${duration(p.value * 1000)}`,
            className: "sl-stat",
          }),
          Plot.text(empty, {
            y: (n: string) => n,
            text: () => "no successful operation",
            frameAnchor: "left",
            dx: 6,
            fill: "#b00",
          }),
          Plot.text(failed, {
            y: "scenario",
            x: domain[1],
            text: (f: { rate: number }) =>
              `✘ ${Math.max(1, Math.round(f.rate * 100))} %${narrow ? "" : " failed"}`,
            textAnchor: "start",
            dx: 8,
            fill: "#b00",
            fontWeight: "bold",
            className: "sl-failed-rate",
          }),
        ],
      },
      `${op}: p50, p95 and p99 of successful operations per scenario, field seconds, log scale` +
        (failed.length ? `; failures in ${failed.map((f) => f.scenario).join(", ")}` : ""),
    );
    return { op, svg };
  });
  return { svgs, points, failures };
}

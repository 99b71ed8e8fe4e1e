import * as Plot from "@observablehq/plot";
import type { LabResult, Operation, ScenarioName } from "../types.js";
import { chartWidth, renderSvg } from "./dom.js";
import { formatStat } from "./format.js";
import { operations, percentileStats, type Stat, statColors } from "./palette.js";

export interface ComparisonBar {
  scenario: ScenarioName;
  op: Operation;
  stat: Stat;
  value: number;
}

export interface ComparisonChart {
  svg: string;
  bars: ComparisonBar[];
  log: boolean;
}

/** Past this max/min ratio a linear axis flattens the small bars to nothing. */
const logRatio = 50;

/** One bar per scenario, operation and percentile that has a value (no samples, no bar). */
export function comparisonBars(result: LabResult): ComparisonBar[] {
  return result.scenarios.flatMap((s) =>
    operations.flatMap((op) =>
      percentileStats.flatMap((stat) => {
        const value = s.operations[op]?.[stat];
        return s.operations[op]?.count && typeof value === "number" && Number.isFinite(value)
          ? [{ scenario: s.name, op, stat, value }]
          : [];
      }),
    ),
  );
}

export function comparisonChart(result: LabResult): ComparisonChart {
  const bars = comparisonBars(result);
  const positive = bars.map((b) => b.value).filter((v) => v > 0);
  const lo = positive.length ? Math.min(...positive) : 1;
  const hi = positive.length ? Math.max(...positive) : 1;
  const log = hi / lo > logRatio;
  // Log bars need a baseline above zero: the power of ten at or below the smallest value.
  const floor = 10 ** Math.floor(Math.log10(lo));
  const top = (b: ComparisonBar) => (log ? Math.max(b.value, floor) : b.value);

  const svg = renderSvg(
    {
      width: chartWidth,
      height: 3 * 130 + 70,
      marginLeft: 60,
      marginRight: 50,
      marginBottom: 30,
      fx: { domain: result.scenarios.map((s) => s.name), label: null, axis: "top" },
      fy: { domain: operations, label: null },
      x: { domain: percentileStats, tickFormat: (s: string) => s.replace("Ms", ""), label: null },
      y: log
        ? { type: "log", domain: [floor, hi * 1.5], tickFormat: "~g", label: "↑ ms (log)" }
        : { domain: [0, hi * 1.1], label: "↑ ms" },
      color: { domain: percentileStats, range: percentileStats.map((s) => statColors[s]) },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.barY(bars, {
          fx: "scenario",
          fy: "op",
          x: "stat",
          y1: log ? floor : 0,
          y2: top,
          fill: "stat",
          title: (b: ComparisonBar) =>
            `${b.scenario} · ${b.op} · ${b.stat.replace("Ms", "")}: ${formatStat(b.stat, b.value)} ms`,
          className: "sl-bar",
        }),
        // Plot leaves out a facet with no data; keep the panel and say why it is empty.
        Plot.text(
          result.scenarios.flatMap((s) =>
            operations
              .filter((op) => !bars.some((b) => b.scenario === s.name && b.op === op))
              .map((op) => ({ scenario: s.name, op })),
          ),
          {
            fx: "scenario",
            fy: "op",
            text: () => "no samples",
            frameAnchor: "middle",
            fill: "#777",
          },
        ),
      ],
    },
    `Comparison of p50, p95 and p99 latency per operation across ${result.scenarios.length} ` +
      `scenarios${log ? ", log scale" : ""}.`,
  );
  return { svg, bars, log };
}

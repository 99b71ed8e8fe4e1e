import * as Plot from "@observablehq/plot";
import type { Sample, ScenarioResult } from "../types.js";
import { chartWidth, renderSvg } from "./dom.js";
import { opColors, operations } from "./palette.js";
import { eventMarks } from "./timeline.js";

export interface LatencyChart {
  svg: string;
  /** Samples drawn: every `stride`-th of `total`. */
  drawn: number;
  total: number;
  stride: number;
  /** Samples under the log scale's floor, drawn at the floor. */
  clamped: number;
}

/** Dots per latency chart; past this the SVG grows without showing more. */
export const defaultMaxLatencyDots = 5000;

/** The log scale's floor: a loopback operation can take "0.0 ms". */
export const latencyFloorMs = 0.1;

export function latencySamples(samples: readonly Sample[], max: number): Sample[] {
  const stride = latencyStride(samples.length, max);
  return samples.filter((_, i) => i % stride === 0);
}

function latencyStride(count: number, max: number): number {
  return Math.max(1, Math.ceil(count / Math.max(1, max)));
}

export function latencyChart(
  s: ScenarioResult,
  attemptTimeoutMs: number,
  maxDots: number,
): LatencyChart {
  const stride = latencyStride(s.samples.length, maxDots);
  const drawn = latencySamples(s.samples, maxDots);
  const ok = drawn.filter((d) => d.ok);
  const failed = drawn.filter((d) => !d.ok);
  const clamped = drawn.filter((d) => !(d.durationMs >= latencyFloorMs)).length;
  const y = (d: Sample) => Math.max(latencyFloorMs, d.durationMs);
  const startMs = Math.min(0, ...drawn.map((d) => d.startMs));
  const endMs = Math.max(s.durationMs, ...drawn.map((d) => d.startMs), 1);
  const maxY = Math.max(attemptTimeoutMs, ...drawn.map(y), 1) * 1.5;

  const svg = renderSvg(
    {
      width: chartWidth,
      height: 3 * 110 + 60,
      marginLeft: 60,
      marginRight: 50,
      marginTop: 24,
      x: { domain: [startMs, endMs], label: "operation started, ms since the scenario started →" },
      // "~g" rather than Plot's SI default, which writes 0.1 ms as "100m".
      y: {
        type: "log",
        domain: [latencyFloorMs, maxY],
        tickFormat: "~g",
        label: "↑ duration (ms, log)",
      },
      fy: { domain: operations, label: null },
      color: { domain: operations, range: operations.map((o) => opColors[o]) },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.ruleY([attemptTimeoutMs], { stroke: "#999", strokeDasharray: "2,2", facet: false }),
        Plot.dot(ok, {
          x: "startMs",
          y,
          fy: "op",
          fill: "op",
          r: 1.6,
          className: "sl-ok",
        }),
        Plot.dot(failed, {
          x: "startMs",
          y,
          fy: "op",
          stroke: "op",
          symbol: "times",
          r: 3.5,
          strokeWidth: 1.5,
          className: "sl-failed",
        }),
        // Plot leaves out a facet with no data; keep the panel and say why it is empty.
        Plot.text(
          operations.filter((op) => !drawn.some((d) => d.op === op)),
          { fy: (op: string) => op, text: () => "no samples", frameAnchor: "middle", fill: "#777" },
        ),
        ...eventMarks(s.events, operations[0]),
      ],
    },
    `Latency over time for ${s.name}: ${drawn.length} of ${s.samples.length} operations ` +
      `(${failed.length} failed drawn as crosses), one panel per operation, log scale.`,
  );
  return { svg, drawn: drawn.length, total: s.samples.length, stride, clamped };
}

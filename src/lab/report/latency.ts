import * as Plot from "@observablehq/plot";
import { chartWidth, logDomain, powersOfTen, renderSvg } from "../../report/dom.js";
import type { Sample, ScenarioResult } from "../types.js";
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
  /** Failed operations drawn (as ×): the legend names × only when there are some. */
  failed: number;
}

/** Dots per latency chart; past this the SVG grows without showing more. */
export const defaultMaxLatencyDots = 5000;

/** The log scale's floor, field seconds: a loopback operation can take "0.0 ms". */
export const latencyFloorS = 0.01;

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
  timeScale: number,
  width = chartWidth,
): LatencyChart {
  const narrow = width < 600;
  const sec = (ms: number) => ms / timeScale / 1000;
  const stride = latencyStride(s.samples.length, maxDots);
  const drawn = latencySamples(s.samples, maxDots);
  const ok = drawn.filter((d) => d.ok);
  const failed = drawn.filter((d) => !d.ok);
  const clamped = drawn.filter((d) => !(sec(d.durationMs) >= latencyFloorS)).length;
  const y = (d: Sample) => Math.max(latencyFloorS, sec(d.durationMs));
  const startS = Math.min(0, ...drawn.map((d) => sec(d.startMs)));
  const endS = Math.max(sec(s.durationMs), ...drawn.map((d) => sec(d.startMs)), 0.001);
  const top = Math.max(sec(attemptTimeoutMs), ...drawn.map(y));

  const yDomain = logDomain(latencyFloorS, top);
  const svg = renderSvg(
    {
      width,
      height: 3 * 100 + 60,
      marginLeft: narrow ? 50 : 70,
      marginRight: 20,
      marginTop: 10,
      x: {
        domain: [startS, endS],
        label: narrow ? "started, field s →" : "operation started, field seconds →",
        ticks: narrow ? 5 : 10,
      },
      // "~g" rather than Plot's SI default, which writes 0.1 s as "100m".
      y: {
        type: "log",
        domain: yDomain,
        ticks: powersOfTen(yDomain),
        tickFormat: "~g",
        label: narrow ? "↑ field s" : "↑ field seconds (log)",
      },
      fy: { domain: operations, label: null },
      color: { domain: operations, range: operations.map((o) => opColors[o]) },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.ruleY([sec(attemptTimeoutMs)], {
          stroke: "#999",
          strokeDasharray: "2,2",
          facet: false,
        }),
        Plot.dot(ok, {
          x: (d: Sample) => sec(d.startMs),
          y,
          fy: "op",
          fill: "op",
          r: 1.8,
          className: "sl-ok",
        }),
        Plot.dot(failed, {
          x: (d: Sample) => sec(d.startMs),
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
        ...eventMarks(s.events, timeScale, true, operations[operations.length - 1]),
      ],
    },
    `Latency over time for ${s.name}: ${drawn.length} of ${s.samples.length} operations ` +
      `(${failed.length} failed drawn as crosses), one panel per operation, field seconds, log scale.`,
  );
  return {
    svg,
    drawn: drawn.length,
    total: s.samples.length,
    stride,
    clamped,
    failed: failed.length,
  };
}

import * as Plot from "@observablehq/plot";
import type { AttemptRecord, LabEvent, ScenarioResult } from "../types.js";
import { chartWidth, renderSvg } from "./dom.js";
import { outcomeSymbols, roleColors, roles } from "./palette.js";

export interface TimelineChart {
  svg: string;
  /** Attempts drawn (the first `drawn` by queuedAtMs) out of `total`. */
  drawn: number;
  total: number;
}

/** Attempts drawn per timeline: beyond a few hundred rows a bar is under 2 px tall. */
export const defaultMaxTimelineBars = 300;

/** Bars narrower than this many px vanish; a loopback connect lasts well under one. */
const minBarPx = 1.5;

interface Row {
  a: AttemptRecord;
  i: number;
}

/** The attempts to draw: the first `max` to ask for a slot, one row each. */
export function timelineRows(timeline: readonly AttemptRecord[], max: number): AttemptRecord[] {
  return [...timeline]
    .sort((a, b) => a.queuedAtMs - b.queuedAtMs || a.id - b.id)
    .slice(0, Math.max(0, max));
}

export function timelineChart(s: ScenarioResult, maxBars: number): TimelineChart {
  const drawnAttempts = timelineRows(s.timeline, maxBars);
  const rows: Row[] = drawnAttempts.map((a, i) => ({ a, i }));
  // Warm-up attempts can start before the window (negative times); show them.
  const startMs = Math.min(0, ...drawnAttempts.map((a) => a.queuedAtMs));
  const endMs = Math.max(
    s.durationMs,
    ...drawnAttempts.map((a) => a.endedAtMs),
    ...s.events.map((e) => e.atMs),
    1,
  );
  const minBarMs = ((endMs - startMs) / chartWidth) * minBarPx;
  // A never-started attempt waited until it was cancelled or rejected.
  const waitEnd = (a: AttemptRecord) => a.startedAtMs ?? a.endedAtMs;
  const waited = rows.filter((r) => waitEnd(r.a) > r.a.queuedAtMs);
  const started = rows.filter((r) => r.a.startedAtMs !== null);
  const marked = rows.filter((r) => outcomeSymbols[r.a.outcome] !== undefined);
  const n = Math.max(rows.length, 1);

  const svg = renderSvg(
    {
      width: chartWidth,
      height: Math.min(700, Math.max(160, rows.length * 2 + 70)),
      marginLeft: 50,
      marginTop: 24,
      x: { domain: [startMs, endMs], label: "ms since the scenario started →" },
      y: { domain: [0, n], reverse: true, label: "↓ attempts, in the order they asked for a slot" },
      color: { domain: roles, range: roles.map((r) => roleColors[r]) },
      symbol: { domain: Object.keys(outcomeSymbols), range: Object.values(outcomeSymbols) },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.rect(waited, {
          x1: (r: Row) => r.a.queuedAtMs,
          x2: (r: Row) => Math.max(waitEnd(r.a), r.a.queuedAtMs + minBarMs),
          y1: (r: Row) => r.i,
          y2: (r: Row) => r.i + 1,
          fill: (r: Row) => r.a.role,
          fillOpacity: 0.25,
          className: "sl-wait",
        }),
        Plot.rect(started, {
          x1: (r: Row) => r.a.startedAtMs,
          x2: (r: Row) => Math.max(r.a.endedAtMs, (r.a.startedAtMs ?? 0) + minBarMs),
          y1: (r: Row) => r.i,
          y2: (r: Row) => r.i + 1,
          fill: (r: Row) => r.a.role,
          className: "sl-syn",
        }),
        Plot.dot(marked, {
          x: (r: Row) => r.a.endedAtMs,
          y: (r: Row) => r.i + 0.5,
          symbol: (r: Row) => r.a.outcome,
          stroke: "#222",
          r: 2,
          className: "sl-outcome",
        }),
        ...eventMarks(s.events),
      ],
    },
    `Attempt timeline for ${s.name}: ${rows.length} of ${s.timeline.length} connect attempts, ` +
      `${started.length} reached SYN_SENT, ${rows.length - started.length} never started.`,
  );
  return { svg, drawn: rows.length, total: s.timeline.length };
}

/**
 * Markers for what happened to the system; shared with the latency chart,
 * which passes its top facet so the labels appear once, not once per panel.
 */
export function eventMarks(events: readonly LabEvent[], topFacet?: string): Plot.Markish[] {
  if (events.length === 0) return [];
  return [
    Plot.ruleX(events, {
      x: "atMs",
      stroke: "#000",
      strokeDasharray: "4,3",
      facet: false,
      className: "sl-event",
    }),
    Plot.text(events, {
      x: "atMs",
      text: (e: LabEvent) => e.kind.replaceAll("-", " "),
      // Inside the frame, haloed: above it the label would collide with the y-axis label.
      frameAnchor: "top",
      textAnchor: "start",
      dx: 4,
      dy: 8,
      fontWeight: "bold",
      stroke: "white",
      strokeWidth: 3,
      fill: "#000",
      ...(topFacet === undefined ? {} : { fy: () => topFacet }),
    }),
  ];
}

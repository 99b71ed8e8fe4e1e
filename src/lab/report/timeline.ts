import * as Plot from "@observablehq/plot";
import { chartWidth, renderSvg } from "../../report/dom.js";
import type { AttemptRecord, AttemptRole, LabEvent, ScenarioResult } from "../types.js";
import { duration } from "../units.js";
import { giveUpColor, outcomeSymbols, roleColors, roles, waitColors } from "./palette.js";

export interface TimelineChart {
  /** The lanes: every drawn attempt, waiting then in SYN_SENT. */
  svg: string;
  /** Queue depth over time, stacked by role. */
  depthSvg: string;
  /** Attempts drawn (the first `drawn` by queuedAtMs) out of `total`. */
  drawn: number;
  total: number;
  /** Roles and outcomes actually drawn: the legend lists these and nothing else. */
  rolesDrawn: AttemptRole[];
  /** Roles with a waiting bar, and with a SYN_SENT bar. */
  waitingDrawn: AttemptRole[];
  synDrawn: AttemptRole[];
  outcomesDrawn: string[];
  /** The busiest moment: who held the slot and how many waited behind it. */
  peak: { atMs: number; waiting: number; holder: AttemptRecord | null } | null;
  /** SYN (re)transmission ticks and give-up marks drawn on pending attempts. */
  synTicksDrawn: number;
  giveUpsDrawn: number;
  /** The schedule of the drawn attempts, field time ("SYN at 0, 3, 9 s; gives up at 21 s"), or null. */
  schedule: string | null;
}

/** One SYN (re)transmission, or the give-up, of a drawn attempt: a tick on its bar. */
export interface SynTick {
  row: Row;
  /** Lab ms since the window started. */
  atMs: number;
  /** 0 for the first SYN, 1 for the first retransmission, …; -1 for the give-up. */
  n: number;
}

/** Attempts drawn per timeline; past this the lanes grow without showing more. */
export const defaultMaxTimelineBars = 300;

/** Bars narrower than this many px vanish; a loopback connect lasts well under one. */
const minBarPx = 2;
/** A lane's row: tall enough to see and to point at. */
const rowPx = 9;
const maxLanesPx = 540;

export interface Row {
  a: AttemptRecord;
  /** Row index from the top, across all lanes. */
  row: number;
  title: string;
}

/** The attempts to draw: the first `max` to ask for a slot. */
export function timelineRows(timeline: readonly AttemptRecord[], max: number): AttemptRecord[] {
  return [...timeline]
    .sort((a, b) => a.queuedAtMs - b.queuedAtMs || a.id - b.id)
    .slice(0, Math.max(0, max));
}

const waitEnd = (a: AttemptRecord) => a.startedAtMs ?? a.endedAtMs;

/** Hover text: who, where, when, how long it waited and was pending, how it ended — in field time. */
export function attemptTitle(a: AttemptRecord, timeScale: number): string {
  const f = (ms: number) => duration(ms / timeScale);
  const waited = waitEnd(a) - a.queuedAtMs;
  const pending = a.startedAtMs === null ? null : a.endedAtMs - a.startedAtMs;
  const ending =
    a.outcome === "pending"
      ? "still pending when the app stopped"
      : a.startedAtMs === null
        ? `${a.outcome} before it started`
        : a.outcome;
  const schedule = sentText(a, timeScale);
  return [
    `#${a.id} ${a.role} → ${a.host}:${a.port}`,
    `asked for a slot at ${f(a.queuedAtMs)}, waited ${f(waited)}`,
    pending === null ? "never in SYN_SENT" : `SYN_SENT for ${f(pending)}`,
    ...(schedule ? [schedule] : []),
    ending,
  ].join("\n");
}

/** The emulated OS's schedule in field seconds: "SYN at 0, 3, 9 s; gives up at 21 s". */
export function scheduleText(a: AttemptRecord, timeScale: number): string | null {
  if (!a.synAtMs || a.synAtMs.length === 0) return null;
  const s = (ms: number) => `${Math.round(ms / timeScale / 100) / 10}`;
  const giveUp =
    a.giveUpMs === null || a.giveUpMs === undefined ? "" : `; gives up at ${s(a.giveUpMs)} s`;
  return `SYN at ${a.synAtMs.map(s).join(", ")} s${giveUp}`;
}

/** Slack for a timer that fired a little late: a give-up still counts as reached. */
const lateMs = 0.5;

/**
 * Hover text: the schedule, and which of its SYNs were sent when the attempt
 * ended first (a connect answered or cancelled at 1.7 s never sent the 3 s one).
 */
function sentText(a: AttemptRecord, timeScale: number): string | null {
  const schedule = scheduleText(a, timeScale);
  if (schedule === null || a.startedAtMs === null || !a.synAtMs || a.outcome === "pending") {
    return schedule;
  }
  const pendingMs = a.endedAtMs - a.startedAtMs;
  const sent = a.synAtMs.filter((offset) => offset <= pendingMs + lateMs);
  if (sent.length === a.synAtMs.length) return schedule;
  const s = (ms: number) => `${Math.round(ms / timeScale / 100) / 10}`;
  return `SYN sent at ${sent.map(s).join(", ")} s, then ended (${schedule})`;
}

/**
 * The SYN times and give-up of every attempt that stayed in SYN_SENT past its
 * first retransmission — a dead peer's attempt, the one that holds the slot —
 * as the emulated OS scheduled them; a connect that answered at once shows none.
 */
export function synTicks(rows: readonly Row[]): SynTick[] {
  const ticks: SynTick[] = [];
  for (const row of rows) {
    const a = row.a;
    const syn = a.synAtMs;
    if (a.startedAtMs === null || !syn || syn.length < 2) continue;
    const pendingMs = a.endedAtMs - a.startedAtMs;
    if (pendingMs < (syn[1] as number)) continue;
    syn.forEach((offset, n) => {
      if (offset <= pendingMs) ticks.push({ row, atMs: (a.startedAtMs as number) + offset, n });
    });
    if (
      a.giveUpMs !== null &&
      a.giveUpMs !== undefined &&
      (a.outcome === "timed-out" || pendingMs + lateMs >= a.giveUpMs)
    ) {
      ticks.push({ row, atMs: a.startedAtMs + a.giveUpMs, n: -1 });
    }
  }
  return ticks;
}

/**
 * Interval partitioning per role: an attempt takes the first row of its
 * lane that is free when it asks for a slot, so overlapping waits stack.
 */
function lanes(drawn: readonly AttemptRecord[], timeScale: number) {
  const rows: Row[] = [];
  const labels: Array<{ role: AttemptRole; row: number; rows: number }> = [];
  let next = 0;
  for (const role of roles) {
    const mine = drawn.filter((a) => a.role === role);
    if (mine.length === 0) continue;
    const ends: number[] = [];
    for (const a of mine) {
      let r = ends.findIndex((end) => end <= a.queuedAtMs);
      if (r < 0) {
        r = ends.length;
        ends.push(0);
      }
      ends[r] = a.endedAtMs;
      rows.push({ a, row: next + r, title: attemptTitle(a, timeScale) });
    }
    labels.push({ role, row: next, rows: ends.length });
    next += ends.length;
  }
  return { rows, labels, total: next };
}

/** Waiting attempts over time, per role, and the busiest moment with its slot holder. */
function queueDepth(drawn: readonly AttemptRecord[]) {
  const changes = drawn
    .flatMap((a) => [
      { t: a.queuedAtMs, d: 1, role: a.role },
      { t: waitEnd(a), d: -1, role: a.role },
    ])
    .sort((x, y) => x.t - y.t || x.d - y.d);
  const depth = new Map<AttemptRole, number>(roles.map((r) => [r, 0]));
  const points: Array<{ t: number; role: AttemptRole; n: number }> = [];
  let peak: { atMs: number; waiting: number } | null = null;
  for (const c of changes) {
    depth.set(c.role, (depth.get(c.role) ?? 0) + c.d);
    const total = [...depth.values()].reduce((s, n) => s + n, 0);
    if (total > 0 && (peak === null || total > peak.waiting)) peak = { atMs: c.t, waiting: total };
    for (const role of roles) points.push({ t: c.t, role, n: depth.get(role) ?? 0 });
  }
  const holder =
    peak === null
      ? null
      : (drawn.find(
          (a) => a.startedAtMs !== null && a.startedAtMs <= peak.atMs && a.endedAtMs > peak.atMs,
        ) ?? null);
  return { points, peak: peak && { ...peak, holder } };
}

export function timelineChart(
  s: ScenarioResult,
  maxBars: number,
  timeScale: number,
  width = chartWidth,
): TimelineChart {
  const narrow = width < 600;
  const drawn = timelineRows(s.timeline, maxBars);
  const sec = (ms: number) => ms / timeScale / 1000;
  const { rows, labels, total } = lanes(drawn, timeScale);
  const startMs = Math.min(0, ...drawn.map((a) => a.queuedAtMs));
  const endMs = Math.max(
    s.durationMs,
    s.stoppedAtMs ?? 0,
    ...drawn.map((a) => a.endedAtMs),
    ...s.events.map((e) => e.atMs),
    1,
  );
  const domain = [sec(startMs), sec(endMs)];
  const minBarS = ((domain[1] as number) - (domain[0] as number)) * (minBarPx / width);
  const waited = rows.filter((r) => waitEnd(r.a) > r.a.queuedAtMs);
  const started = rows.filter((r) => r.a.startedAtMs !== null);
  const marked = rows.filter((r) => outcomeSymbols[r.a.outcome] !== undefined);
  const ticks = synTicks(rows);
  const synMarks = ticks.filter((k) => k.n >= 0);
  const giveUps = ticks.filter((k) => k.n < 0);
  const tickTitle = (k: SynTick) =>
    `#${k.row.a.id} ${k.row.a.role}: ${
      k.n < 0 ? "the OS gives up" : k.n === 0 ? "first SYN" : `SYN retransmission ${k.n}`
    } at ${duration((k.atMs - (k.row.a.startedAtMs as number)) / timeScale)} in SYN_SENT`;
  const row = Math.max(3, Math.min(rowPx, maxLanesPx / Math.max(total, 1)));
  const { points, peak } = queueDepth(drawn);
  const holderRow = peak?.holder ? rows.find((r) => r.a === peak.holder) : undefined;
  const only = s.profile === "incident";
  const note =
    peak && holderRow
      ? `${peak.holder?.role} #${peak.holder?.id} holds ${only ? "the only" : "a"} slot; ${peak.waiting} waiting`
      : null;
  // Written in the queue-depth chart beside the peak, where no bar lies under it.
  const depthNote =
    peak && peak.waiting > 0
      ? note && !narrow
        ? `${peak.waiting} waiting behind ${peak.holder?.role} #${peak.holder?.id}, which holds ${only ? "the only" : "a"} slot`
        : `${peak.waiting} waiting${peak.holder ? ` behind ${peak.holder.role} #${peak.holder.id}` : ""}`
      : null;
  const rightHalf = peak
    ? sec(peak.atMs) > ((domain[0] as number) + (domain[1] as number)) / 2
    : false;
  const xAxis = {
    domain,
    label: narrow ? "field s →" : "field seconds since the window started →",
    ticks: narrow ? 5 : 10,
  };

  const svg = renderSvg(
    {
      width,
      height: Math.max(90, total * row + 50),
      marginLeft: narrow ? 58 : 70,
      marginRight: 20,
      marginTop: 10,
      marginBottom: 34,
      x: xAxis,
      y: { domain: [0, Math.max(total, 1)], reverse: true, axis: null },
      symbol: { domain: Object.keys(outcomeSymbols), range: Object.values(outcomeSymbols) },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.ruleY(labels.slice(1), { y: (l: { row: number }) => l.row, stroke: "#ccc" }),
        Plot.text(labels, {
          x: domain[0],
          y: (l: { row: number; rows: number }) => l.row + l.rows / 2,
          text: (l: { role: string }) => l.role,
          textAnchor: "end",
          dx: -6,
          fill: (l: { role: AttemptRole }) => roleColors[l.role],
          fontWeight: "bold",
        }),
        Plot.rect(waited, {
          x1: (r: Row) => sec(r.a.queuedAtMs),
          x2: (r: Row) => Math.max(sec(waitEnd(r.a)), sec(r.a.queuedAtMs) + minBarS),
          y1: (r: Row) => r.row + 0.1,
          y2: (r: Row) => r.row + 0.9,
          fill: (r: Row) => waitColors[r.a.role],
          title: (r: Row) => r.title,
          className: "sl-wait",
        }),
        Plot.rect(started, {
          x1: (r: Row) => sec(r.a.startedAtMs as number),
          x2: (r: Row) => Math.max(sec(r.a.endedAtMs), sec(r.a.startedAtMs as number) + minBarS),
          y1: (r: Row) => r.row + 0.1,
          y2: (r: Row) => r.row + 0.9,
          fill: (r: Row) => roleColors[r.a.role],
          title: (r: Row) => r.title,
          className: "sl-syn",
        }),
        // The emulated OS's SYN times on each long-pending bar: white ticks across the dark
        // bar (the field's 0, 3, 9 s), and the give-up (21 s) in orange, reaching past the bar.
        Plot.ruleX(synMarks, {
          x: (k: SynTick) => sec(k.atMs),
          y1: (k: SynTick) => k.row.row + 0.1,
          y2: (k: SynTick) => k.row.row + 0.9,
          stroke: "#fff",
          strokeWidth: 1.5,
          title: tickTitle,
          className: "sl-syn-tick",
        }),
        Plot.ruleX(giveUps, {
          x: (k: SynTick) => sec(k.atMs),
          y1: (k: SynTick) => k.row.row - 0.1,
          y2: (k: SynTick) => k.row.row + 1.1,
          stroke: giveUpColor,
          strokeWidth: 2,
          title: tickTitle,
          className: "sl-giveup",
        }),
        Plot.dot(marked, {
          x: (r: Row) => sec(r.a.endedAtMs),
          y: (r: Row) => r.row + 0.5,
          symbol: (r: Row) => r.a.outcome,
          stroke: "#000",
          r: 2.5,
          title: (r: Row) => r.title,
          className: "sl-outcome",
        }),
        ...(holderRow && note
          ? [
              Plot.dot([holderRow], {
                x: () => sec(peak?.atMs ?? 0),
                y: (r: Row) => r.row + 0.5,
                r: 6,
                stroke: "#000",
                strokeWidth: 2,
                className: "sl-holder",
              }),
            ]
          : []),
        ...eventMarks(s.events, timeScale),
      ],
    },
    `Attempt timeline for ${s.name}: ${rows.length} of ${s.timeline.length} connect attempts in lanes by role, ` +
      `${started.length} reached SYN_SENT${note ? `; at the busiest moment ${note}` : ""}.`,
  );

  const rolesDrawn = roles.filter((r) => drawn.some((a) => a.role === r));
  const maxDepth = peak?.waiting ?? 0;
  const depthSvg = renderSvg(
    {
      width,
      height: 130,
      marginLeft: narrow ? 58 : 70,
      marginRight: 20,
      marginTop: 16,
      marginBottom: 34,
      x: { ...xAxis, label: null },
      y: {
        domain: [0, Math.max(1, Math.ceil(maxDepth * 1.3))],
        label: "↑ waiting for a slot",
        ticks: Math.min(4, Math.max(1, maxDepth)),
        tickFormat: "d",
      },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.areaY(
          points.filter((p) => rolesDrawn.includes(p.role)),
          {
            x: (p: { t: number }) => sec(p.t),
            y: "n",
            z: "role",
            fill: (p: { role: AttemptRole }) => waitColors[p.role],
            curve: "step-after",
            order: roles,
            className: "sl-depth",
          },
        ),
        ...(peak && depthNote
          ? [
              Plot.text([peak], {
                x: (p: { atMs: number }) => sec(p.atMs),
                y: (p: { waiting: number }) => p.waiting,
                text: () => depthNote,
                textAnchor: rightHalf ? "end" : "start",
                dx: rightHalf ? -4 : 4,
                dy: -6,
                fontWeight: "bold",
                stroke: "white",
                strokeWidth: 3,
                fill: "#000",
              }),
            ]
          : []),
        ...eventMarks(s.events, timeScale, false),
      ],
    },
    `Queue depth for ${s.name}: attempts waiting for a slot over time, stacked by role; at most ${maxDepth}.`,
  );
  return {
    svg,
    depthSvg,
    drawn: rows.length,
    total: s.timeline.length,
    rolesDrawn,
    waitingDrawn: roles.filter((r) => waited.some((w) => w.a.role === r)),
    synDrawn: roles.filter((r) => started.some((w) => w.a.role === r)),
    outcomesDrawn: [...new Set(marked.map((r) => r.a.outcome))],
    peak,
    synTicksDrawn: synMarks.length,
    giveUpsDrawn: giveUps.length,
    schedule: ticks[0] ? scheduleText(ticks[0].row.a, timeScale) : null,
  };
}

/**
 * Markers for what happened to the system, shared by the charts; the label
 * sits at the top of the frame, haloed, and only where asked (once per figure).
 */
export function eventMarks(
  events: readonly LabEvent[],
  timeScale: number,
  labels = true,
  topFacet?: string,
): Plot.Markish[] {
  if (events.length === 0) return [];
  const x = (e: LabEvent) => e.atMs / timeScale / 1000;
  return [
    Plot.ruleX(events, {
      x,
      stroke: "#000",
      strokeDasharray: "4,3",
      facet: false,
      className: "sl-event",
    }),
    // Stacked upwards from the bottom of the frame so two close events never write over each other.
    ...(labels
      ? events.map((e, i) =>
          Plot.text([e], {
            x,
            text: (ev: LabEvent) => ev.kind.replaceAll("-", " "),
            frameAnchor: "bottom",
            textAnchor: "start",
            dx: 4,
            dy: -4 - 14 * i,
            fontWeight: "bold",
            stroke: "white",
            strokeWidth: 3,
            fill: "#000",
            ...(topFacet === undefined ? {} : { fy: () => topFacet }),
          }),
        )
      : []),
  ];
}

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import * as Plot from "@observablehq/plot";
import { chartWidth, renderSvg } from "../report/dom.js";
import { esc } from "../report/escape.js";
import { formatMs, renderSummary, renderSweep, toJson } from "./render.js";
import type { SimSummary } from "./summary.js";
import type { SweepResult } from "./sweep.js";

const style = `body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:13px}svg{max-width:100%;height:auto}figure{margin:1.5em 0}
.legend{display:flex;flex-wrap:wrap;gap:.2em 1.2em;list-style:none;padding:0;margin:.5em 0;font-size:13px}.legend svg{vertical-align:middle}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${style}</style></head><body><h1>${esc(title)}</h1>${body}</body></html>\n`;
}

/** The queue length over one simulated run. */
export function queueChart(s: SimSummary): string {
  const tl = s.queue.timeline;
  const rows = tl.max.map((max, i) => ({
    atS: (i * tl.bucketMs) / 1000,
    max,
    mean: tl.mean[i] as number,
  }));
  return renderSvg(
    {
      width: chartWidth,
      height: 260,
      x: { label: "time since the first request (s)" },
      y: { label: "attempts waiting for a slot", grid: true },
      marks: [
        Plot.areaY(rows, { x: "atS", y: "max", curve: "step-after", fill: "#c6dbef" }),
        Plot.lineY(rows, { x: "atS", y: "mean", curve: "step-after", stroke: "#08519c" }),
        Plot.ruleY([0]),
      ],
    },
    "queue length over time: longest (area) and average (line) per interval",
  );
}

/** Line colours (Tableau 10, Plot's default categorical scheme), cycled past ten. */
const palette = [
  "#4e79a7",
  "#f28e2c",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc949",
  "#af7aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ab",
];

/** p99 lines are dashed, mean lines solid: the legend says which is which. */
const p99Dash = "6,3";

interface SweepLine {
  /** The role and the other swept values: what the colour stands for. */
  group: string;
  stat: "mean" | "p99";
  color: string;
}

/**
 * Wait (mean and p99 per role) against the first swept parameter, and one
 * legend entry per line drawn. Labels at the lines' ends overlapped as soon
 * as two roles waited alike (most sweeps: every role waits the same at one
 * slot); a legend never does.
 */
export function sweepChart(results: readonly SweepResult[]): { svg: string; legend: string } {
  const param = Object.keys(results[0]?.labels ?? {})[0] ?? "";
  const numeric = results.every((r) => /^\d+(\.\d+)?$/.test(r.labels[param] ?? ""));
  const rows = results.flatMap((r) => {
    const x = numeric ? Number(r.labels[param]) : (r.labels[param] ?? "");
    const rest = Object.entries(r.labels)
      .filter(([k]) => k !== param)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    return Object.entries(r.summary.byRole).flatMap(([role, w]) => {
      const group = `${role}${rest ? ` (${rest})` : ""}`;
      return [
        { x, group, stat: "mean" as const, waitS: w.meanMs / 1000 },
        { x, group, stat: "p99" as const, waitS: w.p99Ms / 1000 },
      ];
    });
  });
  const groups = [...new Set(rows.map((r) => r.group))];
  const colors = groups.map((_, i) => palette[i % palette.length] as string);
  const lines: SweepLine[] = groups.flatMap((group, i) =>
    (["mean", "p99"] as const).map((stat) => ({ group, stat, color: colors[i] as string })),
  );
  const svg = renderSvg(
    {
      width: chartWidth,
      height: 360,
      x: { label: param, ...(numeric ? {} : { type: "point" as const }) },
      y: { label: "wait for a slot (s)", grid: true },
      color: { domain: groups, range: colors, legend: false },
      marks: [
        Plot.line(
          rows.filter((r) => r.stat === "mean"),
          { x: "x", y: "waitS", stroke: "group", marker: "circle" },
        ),
        Plot.line(
          rows.filter((r) => r.stat === "p99"),
          { x: "x", y: "waitS", stroke: "group", marker: "circle", strokeDasharray: p99Dash },
        ),
        Plot.ruleY([0]),
      ],
    },
    `wait for a slot against ${param}, per role`,
  );
  return { svg, legend: sweepLegend(lines) };
}

function sweepLegend(lines: readonly SweepLine[]): string {
  const items = lines.map(
    (l) =>
      `<li><svg width="28" height="10" aria-hidden="true"><line x1="0" y1="5" x2="28" y2="5" stroke="${l.color}" stroke-width="2"${l.stat === "p99" ? ` stroke-dasharray="${p99Dash}"` : ""}/></svg> ${esc(`${l.group} ${l.stat}`)}</li>`,
  );
  return `<ul class="legend">${items.join("")}</ul>`;
}

export async function writeSimulationReport(
  dir: string,
  title: string,
  summary: SimSummary,
  limiter: string,
): Promise<string> {
  const html = page(
    title,
    `<p>${esc(limiter)}</p><figure>${queueChart(summary)}<figcaption>Queue length over time (longest per ${esc(formatMs(summary.queue.timeline.bucketMs))}: area; average: line).</figcaption></figure><pre>${esc(renderSummary(summary, limiter))}</pre>`,
  );
  return write(dir, html, summary);
}

/**
 * `swept` names what was swept and over what, e.g. "max-in-flight over
 * winxp-sp2: 10 in flight …": the title and the table say it.
 */
export async function writeSweepReport(
  dir: string,
  title: string,
  results: readonly SweepResult[],
  swept: string,
): Promise<string> {
  const chart = sweepChart(results);
  const html = page(
    `${title}: sweep of ${swept}`,
    `<figure>${chart.svg}<figcaption>Mean (solid) and p99 (dashed) wait for a slot per role.${chart.legend}</figcaption></figure><pre>${esc(renderSweep(results, swept))}</pre>`,
  );
  return write(dir, html, results);
}

async function write(dir: string, html: string, data: unknown): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "results.json"), `${toJson(data)}\n`);
  const file = path.join(dir, "index.html");
  await writeFile(file, html);
  return file;
}

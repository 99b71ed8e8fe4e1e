import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import * as Plot from "@observablehq/plot";
import { chartWidth, renderSvg } from "../report/dom.js";
import { esc } from "../report/escape.js";
import { formatMs, renderSummary, renderSweep, toJson } from "./render.js";
import type { SimSummary } from "./summary.js";
import type { SweepResult } from "./sweep.js";

const style = `body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:13px}svg{max-width:100%;height:auto}figure{margin:1.5em 0}`;

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

/** Wait (mean and p99 per role) against the first swept parameter. */
export function sweepChart(results: readonly SweepResult[]): string {
  const param = Object.keys(results[0]?.labels ?? {})[0] ?? "";
  const numeric = results.every((r) => /^\d+(\.\d+)?$/.test(r.labels[param] ?? ""));
  const rows = results.flatMap((r) => {
    const x = numeric ? Number(r.labels[param]) : (r.labels[param] ?? "");
    const rest = Object.entries(r.labels)
      .filter(([k]) => k !== param)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    return Object.entries(r.summary.byRole).flatMap(([role, w]) => [
      { x, series: `${role} mean${rest ? ` (${rest})` : ""}`, waitS: w.meanMs / 1000 },
      { x, series: `${role} p99${rest ? ` (${rest})` : ""}`, waitS: w.p99Ms / 1000 },
    ]);
  });
  return renderSvg(
    {
      width: chartWidth,
      height: 360,
      x: { label: param, ...(numeric ? {} : { type: "point" as const }) },
      y: { label: "wait for a slot (s)", grid: true },
      color: { legend: false },
      marks: [
        Plot.line(rows, { x: "x", y: "waitS", stroke: "series", marker: "circle" }),
        Plot.text(
          rows,
          Plot.selectLast({
            x: "x",
            y: "waitS",
            z: "series",
            text: "series",
            textAnchor: "start",
            dx: 4,
          }),
        ),
        Plot.ruleY([0]),
      ],
      marginRight: 160,
    },
    `wait for a slot against ${param}, per role`,
  );
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

export async function writeSweepReport(
  dir: string,
  title: string,
  results: readonly SweepResult[],
): Promise<string> {
  const html = page(
    title,
    `<figure>${sweepChart(results)}<figcaption>Mean and p99 wait for a slot per role.</figcaption></figure><pre>${esc(renderSweep(results))}</pre>`,
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

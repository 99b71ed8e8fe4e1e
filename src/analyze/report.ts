import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import * as Plot from "@observablehq/plot";
import { chartWidth, renderSvg } from "../report/dom.js";
import { esc } from "../report/escape.js";
import type { AnalysisResult } from "./analyze.js";

/** Beyond a few hundred rows a bar is under 2 px tall (the lab's limit too). */
const maxBars = 300;

const colors: Record<string, string> = {
  connected: "#2b8cbe",
  refused: "#f03b20",
  "gave-up": "#fd8d3c",
  cancelled: "#969696",
  open: "#fdd0a2",
};

/** One bar per attempt from first SYN to end; dots at every SYN; inferred ends hatched lighter. */
export function timelineChart(result: AnalysisResult): string {
  const attempts = result.attempts.slice(0, maxBars);
  const t0 = result.captureStartMs;
  const rows = attempts.map((a, i) => ({
    row: i,
    from: (a.startMs - t0) / 1000,
    to: Math.max((a.endMs - t0) / 1000, (a.startMs - t0) / 1000 + 0.002),
    end: a.end,
    dest: `${a.h.dst}:${a.h.dstPort}`,
    inferred: a.inferred,
  }));
  const syns = attempts.flatMap((a, i) =>
    a.h.synAtMs.map((t) => ({ row: i, at: (t - t0) / 1000 })),
  );
  return renderSvg(
    {
      width: chartWidth,
      height: Math.max(160, 40 + rows.length * 6),
      x: { label: "time since the first packet (s)", grid: true },
      y: { label: "attempt (by first SYN)", axis: null, reverse: true },
      color: { domain: Object.keys(colors), range: Object.values(colors), legend: false },
      marks: [
        Plot.barX(rows, {
          x1: "from",
          x2: "to",
          y: "row",
          fill: "end",
          fillOpacity: (d: { inferred: boolean }) => (d.inferred ? 0.5 : 0.9),
          title: (d: { dest: string; end: string }) => `${d.dest}: ${d.end}`,
        }),
        Plot.dot(syns, { x: "at", y: "row", r: 1.5, fill: "#000" }),
      ],
    },
    "outbound handshake attempts over time: bars from first SYN to end, dots at each SYN",
  );
}

export async function writeAnalysisReport(
  dir: string,
  title: string,
  result: AnalysisResult,
  text: string,
): Promise<string> {
  const legend = Object.entries(colors)
    .map(
      ([k, c]) =>
        `<span style="display:inline-block;width:.9em;height:.9em;background:${c};margin:0 .3em 0 1em"></span>${esc(k)}`,
    )
    .join("");
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>body{font:15px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}pre{background:#f6f6f6;padding:1em;white-space:pre-wrap}svg{max-width:100%;height:auto}</style></head><body><h1>${esc(title)}</h1><pre>${esc(text)}</pre><figure>${timelineChart(result)}<figcaption>${legend}<br>Lighter bars: the end is inferred from the SYN schedule (giving up sends no packet).${result.attempts.length > maxBars ? ` First ${maxBars} of ${result.attempts.length} attempts.` : ""}</figcaption></figure></body></html>\n`;
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, "index.html");
  await writeFile(file, html);
  return file;
}

import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { LabResult } from "../types.js";
import { type ReportOptions, renderReport } from "./html.js";

/**
 * Writes DIR/index.html and DIR/results.json (the result exactly, pretty-printed),
 * creating DIR. Rendering happens first, so a chart error leaves no half-written report.
 */
export async function writeReport(
  dir: string,
  result: LabResult,
  options: ReportOptions = {},
): Promise<{ html: string; json: string }> {
  const page = renderReport(result, options);
  const json = `${JSON.stringify(result, null, 2)}\n`;
  await mkdir(dir, { recursive: true });
  const paths = { html: path.join(dir, "index.html"), json: path.join(dir, "results.json") };
  await writeFile(paths.json, json);
  await writeFile(paths.html, page);
  return paths;
}

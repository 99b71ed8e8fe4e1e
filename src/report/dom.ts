import * as Plot from "@observablehq/plot";
import { parseHTML } from "linkedom";

/** Chart width in px; the page's CSS lets SVGs shrink to the viewport. */
export const chartWidth = 960;

/** One stable class for every chart, so the page has a single style rule set. */
const className = "sl-plot";

/**
 * Renders a Plot chart on the server. Plot needs a DOM only to build the
 * SVG; linkedom gives it one without a browser (jsdom would need Node 22).
 */
export function renderSvg(options: Plot.PlotOptions, ariaLabel: string): string {
  const { document } = parseHTML("<!doctype html><html><head></head><body></body></html>");
  const node = Plot.plot({ ...options, className, document }) as unknown as LinkedomElement;
  // Plot wraps the SVG in a <figure> when it draws a legend or title; the report
  // draws its own figure and legends, so insist on the bare SVG.
  if (node.tagName.toLowerCase() !== "svg") throw new Error("expected Plot to return an <svg>");
  node.setAttribute("role", "img");
  node.setAttribute("aria-label", ariaLabel);
  return trimCoordinates(node.outerHTML);
}

/**
 * Plot writes coordinates like 94.65200838875776; a hundredth of a pixel is
 * plenty and the page shrinks by about a quarter. Only attribute values are
 * touched, never text a reader sees.
 */
function trimCoordinates(svg: string): string {
  return svg.replace(/="([^"]*)"/g, (_, v: string) => `="${v.replace(/(\.\d{2})\d+/g, "$1")}"`);
}

/** The part of linkedom's element type this module uses (the project has no DOM lib). */
interface LinkedomElement {
  tagName: string;
  outerHTML: string;
  setAttribute(name: string, value: string): void;
}

/**
 * A log axis from the power of ten at or below `lo` to the one strictly above
 * `hi`: the top tick is always above the data, so the highest value is read
 * against a labelled tick, not the frame's edge.
 */
export function logDomain(lo: number, hi: number): [number, number] {
  const floor = 10 ** Math.floor(Math.log10(lo));
  const ceil = 10 ** (Math.floor(Math.log10(Math.max(hi, floor))) + 1);
  return [floor, ceil];
}

/** The phone version of every chart (shown under 600 px by the page's CSS): readable at 390 px. */
export const narrowChartWidth = 370;

/** Both versions of a chart; CSS shows one. */
export function responsive(wide: string, narrow: string): string {
  return `<div class="chart-wide">${wide}</div><div class="chart-narrow">${narrow}</div>`;
}

/** Every power of ten of a log domain, both ends included: the top tick is labelled at any width. */
export function powersOfTen([lo, hi]: [number, number]): number[] {
  const ticks: number[] = [];
  for (let e = Math.round(Math.log10(lo)); e <= Math.round(Math.log10(hi)); e++)
    ticks.push(10 ** e);
  return ticks;
}

import { duration } from "../units.js";

export { esc } from "../../report/escape.js";

/**
 * How the report writes text and numbers. The number rule is part of the
 * report's contract (tests compare table cells against results.json with it):
 *
 * - missing → "—": null, NaN or ±Infinity (a NaN percentile becomes null in
 *   JSON), and the *Ms fields of an operation with count 0 or of a scenario
 *   with no attempts (the lab writes 0 there, but there is no value to show).
 * - a field whose name ends in "Ms" → field time, `duration(value / timeScale)`
 *   from src/lab/units.ts ("21 s", "2.1 s", "640 ms", "3.2 ms").
 * - `errorRate` → a whole percentage ("34 %"; "<1 %" for a rate under 0.5 % but above 0).
 * - any other number (counts, cores, time scale, GiB) → `String(value)`.
 */
export const MISSING = "—";

export function formatStat(field: string, value: number | null | undefined, timeScale = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  if (field.endsWith("Ms")) return duration(value / timeScale);
  if (field === "errorRate")
    return value > 0 && value < 0.005 ? "<1 %" : `${Math.round(value * 100)} %`;
  return String(value);
}

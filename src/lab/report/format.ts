/**
 * How the report writes text and numbers. The number rule is part of the
 * report's contract (tests compare table cells against results.json with it):
 *
 * - missing → "—": null, NaN or ±Infinity (a NaN percentile becomes null in
 *   JSON), and the *Ms fields of an operation with count 0 or of a scenario
 *   with no attempts (the lab writes 0 there, but there is no value to show).
 * - a field whose name ends in "Ms" → `value.toFixed(1)` (milliseconds, 0.1 ms).
 * - any other number (counts, cores, time scale, GiB) → `String(value)`.
 */
export const MISSING = "—";

export function formatStat(field: string, value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return MISSING;
  return field.endsWith("Ms") ? value.toFixed(1) : String(value);
}

const entities: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for element content and double- or single-quoted attributes. */
export function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => entities[c] ?? c);
}

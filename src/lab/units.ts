/**
 * Field time: what a person reads. The lab runs every emulated duration
 * multiplied by the time scale (0.02: Windows' 21 s attempt in 420 ms), so a
 * lab measurement divided by the scale is the time it stands for on the
 * incident's server. Real work (a loopback bind, a query) is stretched by the
 * same factor; it stays small next to the attempt timeout it is compared with.
 */

/** Lab (wall) milliseconds → field milliseconds. */
export function toField(labMs: number, timeScale: number): number {
  return labMs / timeScale;
}

/** Field milliseconds → lab (wall) milliseconds. */
export function toLab(fieldMs: number, timeScale: number): number {
  return fieldMs * timeScale;
}

/** A duration for a person: "21 s", "2.1 s", "640 ms", "3.2 ms"; "—" for no value. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "—";
  const abs = Math.abs(ms);
  if (abs >= 9_950) return `${(ms / 1000).toFixed(0)} s`;
  if (abs >= 995) return `${(ms / 1000).toFixed(1)} s`;
  if (abs >= 9.95) return `${ms.toFixed(0)} ms`;
  return `${ms.toFixed(1)} ms`;
}

/** A lab measurement in field time, with the lab time beside it: "21 s (lab: 420 ms)". */
export function fieldAndLab(labMs: number, timeScale: number): string {
  const field = duration(toField(labMs, timeScale));
  return timeScale === 1 ? field : `${field} (lab: ${duration(labMs)})`;
}

/** A lab measurement in field time only: "21 s". */
export function field(labMs: number, timeScale: number): string {
  return duration(toField(labMs, timeScale));
}

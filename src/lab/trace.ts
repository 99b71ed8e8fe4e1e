import { rm, writeFile } from "node:fs/promises";
import { loadTrace } from "../record/read.js";
import { formatRecord, type TraceRecord } from "../record/trace.js";
import type { AttemptRecord } from "./types.js";

export interface LabTraceInput {
  /** What the app's recorder wrote: lab ms since `recordStartedAt`, in the order attempts ended. */
  recorded: readonly TraceRecord[];
  /** Lab ms from the window's start to the recording's t = 0 (negative: it started before). */
  recordOffsetMs: number;
  /** The scenario's attempts as the timeline has them: which to keep, and their roles. */
  timeline: readonly AttemptRecord[];
  timeScale: number;
}

/**
 * A scenario's trace in the `record` format (docs/trace.md): the timeline's
 * attempts — the measured window, not the warm-up before it — with their
 * roles, in **field** milliseconds (lab ÷ time scale), so `synlimit simulate
 * --profile incident` replays them against the field's 21 s. `t = 0` is the
 * window's start, or the first kept attempt's request if earlier (the agent
 * starts just before the window). A cause outside the kept attempts (the
 * warm-up) is dropped: the effect is replayed at its recorded time.
 */
export function labTrace(input: LabTraceInput): TraceRecord[] {
  const { recorded, recordOffsetMs, timeline, timeScale } = input;
  const roles = new Map(timeline.map((a) => [a.id, a.role]));
  const kept = recorded.filter((r) => roles.has(r.id));
  const windowMs = (r: TraceRecord) => r.t + recordOffsetMs;
  const originMs = Math.min(0, ...kept.map(windowMs));
  const field = (labMs: number) => labMs / timeScale;
  const ids = new Set<number>();
  const out: TraceRecord[] = [];
  for (const r of kept) {
    const record: TraceRecord = {
      id: r.id,
      t: field(windowMs(r) - originMs),
      dest: r.dest,
      durationMs: field(r.durationMs),
      outcome: r.outcome,
      role: roles.get(r.id) as string,
    };
    if (r.after !== undefined && ids.has(r.after)) {
      record.after = r.after;
      record.gapMs = field(r.gapMs ?? 0);
    }
    if (r.waitMs !== undefined) record.waitMs = field(r.waitMs);
    ids.add(r.id);
    out.push(record);
  }
  return out;
}

/** Reads the app's raw recording, writes the scenario's trace to `file`, removes the raw one. */
export async function writeLabTrace(
  rawFile: string,
  file: string,
  rest: Omit<LabTraceInput, "recorded">,
): Promise<number> {
  const recorded = await loadTrace(rawFile);
  const records = labTrace({ ...rest, recorded });
  await writeFile(file, records.map(formatRecord).join(""));
  await rm(rawFile, { force: true });
  return records.length;
}

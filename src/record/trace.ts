import { invalidTrace } from "../errors.js";

/** How a recorded connect attempt ended (docs/trace.md). */
export const outcomes = ["connected", "refused", "timeout", "failed", "cancelled"] as const;
export type Outcome = (typeof outcomes)[number];

/** One line of a trace: one outbound connect attempt. */
export interface TraceRecord {
  /** Unique within the trace; `after` refers to it. */
  id: number;
  /** Milliseconds since the trace started when the program asked for the connect. */
  t: number;
  /** "host:port" ("[v6]:port" for IPv6). */
  dest: string;
  /** From the SYN leaving to the outcome. */
  durationMs: number;
  outcome: Outcome;
  role?: string;
  /** The attempt this one was made because of (a retry, a follow-up). */
  after?: number;
  /** Milliseconds from the end of `after` to this request. */
  gapMs?: number;
  /** Time spent waiting for a slot: on every line recorded under a limiter, on none without. */
  waitMs?: number;
}

const outcomeSet: ReadonlySet<string> = new Set(outcomes);

/** One JSON line, keys in the documented order; numbers to the microsecond. */
export function formatRecord(r: TraceRecord): string {
  let line = `{"id":${r.id},"t":${round(r.t)},"dest":${JSON.stringify(r.dest)},"durationMs":${round(r.durationMs)},"outcome":"${r.outcome}"`;
  if (r.role !== undefined) line += `,"role":${JSON.stringify(r.role)}`;
  if (r.after !== undefined) line += `,"after":${r.after},"gapMs":${round(r.gapMs ?? 0)}`;
  if (r.waitMs !== undefined) line += `,"waitMs":${round(r.waitMs)}`;
  return `${line}}\n`;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/**
 * Parses and checks one trace line; `where` and `lineNo` make the error
 * point at it. Unknown keys are allowed, so later versions can add fields.
 */
export function parseRecord(text: string, where: string, lineNo: number): TraceRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw invalidTrace(where, lineNo, "not a JSON object");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidTrace(where, lineNo, "not a JSON object");
  }
  const o = value as Record<string, unknown>;
  const bad = (field: string, expected: string) =>
    invalidTrace(where, lineNo, `"${field}" must be ${expected}, got ${shown(o[field])}`);
  if (!Number.isSafeInteger(o.id) || (o.id as number) < 0)
    throw bad("id", "a non-negative integer");
  if (!finiteAtLeast(o.t, 0)) throw bad("t", "a non-negative number of milliseconds");
  if (typeof o.dest !== "string" || !isHostPort(o.dest)) {
    throw bad("dest", '"host:port" ("[v6]:port" for IPv6)');
  }
  if (!finiteAtLeast(o.durationMs, 0)) throw bad("durationMs", "a non-negative number");
  if (typeof o.outcome !== "string" || !outcomeSet.has(o.outcome)) {
    throw bad("outcome", `one of ${outcomes.join(", ")}`);
  }
  const record: TraceRecord = {
    id: o.id as number,
    t: o.t as number,
    dest: o.dest,
    durationMs: o.durationMs as number,
    outcome: o.outcome as Outcome,
  };
  if (o.role !== undefined) {
    if (typeof o.role !== "string" || o.role === "") throw bad("role", "a non-empty string");
    record.role = o.role;
  }
  if (o.after !== undefined) {
    if (!Number.isSafeInteger(o.after) || (o.after as number) < 0) {
      throw bad("after", "the id of an earlier attempt");
    }
    if (o.after === o.id) throw bad("after", "another attempt's id");
    if (!finiteAtLeast(o.gapMs, 0)) throw bad("gapMs", "a non-negative number with after");
    record.after = o.after as number;
    record.gapMs = o.gapMs as number;
  } else if (o.gapMs !== undefined) {
    // A gap from nothing: the line meant a follow-up but lost its cause.
    throw invalidTrace(where, lineNo, `"gapMs" needs "after" (the attempt it follows)`);
  }
  if (o.waitMs !== undefined) {
    if (!finiteAtLeast(o.waitMs, 0)) throw bad("waitMs", "a non-negative number");
    record.waitMs = o.waitMs as number;
  }
  return record;
}

/** A field's value for an error: JSON.stringify would print an overflowing number (1e400) as null. */
function shown(v: unknown): string {
  if (typeof v === "number" && !Number.isFinite(v)) return `${v} (a number too large to be finite)`;
  return JSON.stringify(v);
}

const hostPort = /^(?:\[[0-9A-Fa-f:.%\w]+\]|[^\s:[\]]+):(\d{1,5})$/;

export function isHostPort(dest: string): boolean {
  const port = hostPort.exec(dest)?.[1];
  return port !== undefined && Number(port) >= 1 && Number(port) <= 65535;
}

function finiteAtLeast(v: unknown, min: number): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= min;
}

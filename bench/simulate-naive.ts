/**
 * The straightforward simulator the benchmark compares against: one object
 * per attempt and per event, a JS array as the queue, and the pending events
 * kept in order by sorting after every push. Same semantics as the core for
 * the queue policy (process scope, no follow-ups), so the waits must match.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { invalidTrace } from "../src/errors.js";
import { parseRecord, type TraceRecord } from "../src/record/trace.js";
import { type Workload, workloadFromRecords } from "../src/simulate/workload.js";

interface NaiveAttempt {
  t: number;
  durationMs: number;
  arrival: number;
  start: number;
}

interface NaiveEvent {
  t: number;
  attempt: NaiveAttempt;
}

export function simulateNaive(
  w: Workload,
  maxInFlight: number,
): { waits: number[]; events: number } {
  const attempts: NaiveAttempt[] = [];
  for (let i = 0; i < w.n; i++) {
    attempts.push({
      t: w.t[i] as number,
      durationMs: w.durationMs[i] as number,
      arrival: 0,
      start: 0,
    });
  }
  const arrivals = [...attempts].sort((a, b) => a.t - b.t);
  const ends: NaiveEvent[] = [];
  const queue: NaiveAttempt[] = [];
  let inFlight = 0;
  let events = 0;
  let next = 0;
  const begin = (a: NaiveAttempt, now: number) => {
    a.start = now;
    inFlight++;
    ends.push({ t: now + a.durationMs, attempt: a });
    ends.sort((x, y) => x.t - y.t);
  };
  while (next < arrivals.length || ends.length > 0) {
    events++;
    const arrival = arrivals[next];
    const end = ends[0];
    if (end && (!arrival || end.t <= arrival.t)) {
      ends.shift();
      inFlight--;
      const waiting = queue.shift();
      if (waiting) begin(waiting, end.t);
    } else if (arrival) {
      next++;
      arrival.arrival = arrival.t;
      if (inFlight < maxInFlight && queue.length === 0) begin(arrival, arrival.t);
      else queue.push(arrival);
    }
  }
  return { waits: attempts.map((a) => a.start - a.arrival), events };
}

/**
 * The straightforward trace reader the benchmark compares against (the
 * project's own before the byte scanner): readline over a UTF-8 stream,
 * JSON.parse and parseRecord per line, a record object per attempt, then
 * columns from the records.
 */
export async function loadWorkloadNaive(path: string): Promise<Workload> {
  const records: TraceRecord[] = [];
  const seen = new Set<number>();
  let lineNo = 0;
  const lines = createInterface({
    input: createReadStream(path, { encoding: "utf8" }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === "") continue;
    const r = parseRecord(line, path, lineNo);
    if (seen.has(r.id)) throw invalidTrace(path, lineNo, `id ${r.id} appears twice`);
    if (r.after !== undefined && !seen.has(r.after)) {
      throw invalidTrace(path, lineNo, `"after" ${r.after} is not an earlier attempt's id`);
    }
    seen.add(r.id);
    records.push(r);
  }
  return workloadFromRecords(records);
}

/**
 * The straightforward simulator the benchmark compares against: one object
 * per attempt and per event, a JS array as the queue, and the pending events
 * kept in order by sorting after every push. Same semantics as the core for
 * the queue policy (process scope, no follow-ups), so the waits must match.
 */
import type { Workload } from "../src/simulate/workload.js";

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

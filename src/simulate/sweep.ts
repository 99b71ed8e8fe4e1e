import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { simulate } from "./engine.js";
import { type LimiterSettings, resolveLimiter } from "./options.js";
import { type SimSummary, summarize } from "./summary.js";
import type { Workload } from "./workload.js";

export interface SweepPoint {
  labels: Record<string, string>;
  settings: LimiterSettings;
}

export interface SweepResult extends SweepPoint {
  limiter: string;
  summary: SimSummary;
}

/** One simulation: what a worker runs per point. */
export function runPoint(workload: Workload, point: SweepPoint): SweepResult {
  const limiter = resolveLimiter(point.settings);
  return {
    ...point,
    limiter: limiter.label,
    summary: summarize(simulate(workload, limiter.config)),
  };
}

/** The same columns on shared memory: workers read one copy instead of each parsing the trace. */
export function shareWorkload(w: Workload): Workload {
  const share = <T extends Float64Array | Int32Array | Uint8Array>(a: T): T => {
    const Ctor = a.constructor as new (b: SharedArrayBuffer) => T;
    const copy = new Ctor(new SharedArrayBuffer(a.byteLength));
    copy.set(a as never);
    return copy;
  };
  return {
    ...w,
    t: share(w.t),
    durationMs: share(w.durationMs),
    outcome: share(w.outcome),
    patienceMs: share(w.patienceMs),
    role: share(w.role),
    dest: share(w.dest),
    host: share(w.host),
    parent: share(w.parent),
    gapMs: share(w.gapMs),
  };
}

/**
 * Runs every point in a pool of worker threads (at most one per core) and
 * returns the results in the points' order.
 */
export async function runSweep(
  workload: Workload,
  points: readonly SweepPoint[],
  workers = availableParallelism(),
): Promise<SweepResult[]> {
  const shared = shareWorkload(workload);
  const results = new Array<SweepResult>(points.length);
  let next = 0;
  const size = Math.max(1, Math.min(workers, points.length));
  const url = new URL("./sweep-worker.js", import.meta.url);
  await Promise.all(
    Array.from({ length: size }, async () => {
      const worker = new Worker(url, { workerData: shared });
      try {
        for (;;) {
          const index = next++;
          if (index >= points.length) break;
          worker.postMessage({ index, point: points[index] });
          results[index] = await new Promise<SweepResult>((resolve, reject) => {
            const onError = (e: Error) => reject(e);
            worker.once("error", onError);
            worker.once("message", (m: SweepResult) => {
              worker.off("error", onError);
              resolve(m);
            });
          });
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  return results;
}

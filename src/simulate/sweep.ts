import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { startWorker } from "../worker-options.js";
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
      const worker = startWorker(url, { workerData: shared });
      const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
      let failed = false;
      try {
        for (;;) {
          const index = next++;
          if (index >= points.length) break;
          worker.postMessage({ index, point: points[index] });
          results[index] = await reply(worker, exited);
        }
      } catch (error) {
        failed = true;
        throw error;
      } finally {
        // A worker told to finish closes its port and exits on its own; see
        // startWorker for why neither way of ending it races V8's compiler.
        if (failed) await worker.terminate();
        else worker.postMessage({ done: true });
        await exited;
      }
    }),
  );
  return results;
}

/** The worker's answer to the last point, or why there is none. */
function reply(worker: Worker, exited: Promise<number>): Promise<SweepResult> {
  return new Promise<SweepResult>((resolve, reject) => {
    const onMessage = (m: SweepResult) => {
      worker.off("error", onError);
      resolve(m);
    };
    const onError = (e: Error) => {
      worker.off("message", onMessage);
      reject(e);
    };
    worker.once("message", onMessage);
    worker.once("error", onError);
    void exited.then((code) => {
      worker.off("message", onMessage);
      worker.off("error", onError);
      reject(new Error(`a sweep worker exited with code ${code} before it answered`));
    });
  });
}

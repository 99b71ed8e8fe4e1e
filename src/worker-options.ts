import v8 from "node:v8";
import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Starts a worker thread that Node 20 can end safely, with the parent's flags it
 * can take.
 *
 * - No concurrent TurboFan jobs in the worker's isolate. On Node 20, a worker
 *   ending while a background compile of its hot code is in flight either aborts
 *   the whole process (`terminate()`: "Assertion failed: (data.first) != nullptr"
 *   in NodePlatform::ForIsolate) or deadlocks it (a natural exit: the compile
 *   waits for a GC from the worker's thread, which waits in DrainTasks for the
 *   compile). A sweep of 8 points on 20 000 attempts crashed within 1 to 12
 *   sweeps, and hung about once in 100. The flag is read when an isolate is
 *   made, so it is off only until the worker is online; the workers compile on
 *   their own thread, the parent keeps its background compiler.
 * - No `--input-type`: a worker inherits process.execArgv, where it would make an
 *   eval'd CommonJS source (the tarpit's) ESM and a worker file is refused
 *   (ERR_INPUT_TYPE_NOT_ALLOWED), so `node --input-type=module -e …` could start
 *   neither. Only then is execArgv given: Node 24 refuses some inherited flags
 *   when it is passed.
 */
export function startWorker(filename: string | URL, options: WorkerOptions): Worker {
  if (starting++ === 0 && !compilerOffByUser)
    v8.setFlagsFromString("--no-concurrent-recompilation");
  let worker: Worker;
  try {
    worker = new Worker(filename, { ...workerExecArgv(), ...options });
  } catch (error) {
    started();
    throw error;
  }
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    started();
  };
  worker.once("online", once);
  worker.once("error", once);
  worker.once("exit", once);
  return worker;
}

let starting = 0;
const compilerOffByUser = [
  ...process.execArgv,
  ...(process.env.NODE_OPTIONS ?? "").split(/\s+/),
].some((a) => /^--no[-_]concurrent[-_]recompilation$/.test(a));

function started(): void {
  if (--starting === 0 && !compilerOffByUser) v8.setFlagsFromString("--concurrent-recompilation");
}

function workerExecArgv(): { execArgv?: string[] } {
  const execArgv = process.execArgv.filter((a) => !a.startsWith("--input-type"));
  return execArgv.length === process.execArgv.length ? {} : { execArgv };
}

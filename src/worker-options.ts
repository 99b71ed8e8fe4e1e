import v8 from "node:v8";
import { Worker, type WorkerOptions } from "node:worker_threads";

/**
 * Starts a worker thread that Node 20 can end safely, whatever flags started
 * the program. `filename` is a module's URL, or with `eval` a source that
 * must read the same as CommonJS and as ESM (import(), no require).
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
 * - The parent's flags are inherited as Node does by default, never passed
 *   as `execArgv` (which Node checks: `--expose-gc` or `--max-old-space-size`
 *   there is ERR_WORKER_INVALID_EXEC_ARGV). An inherited `--input-type`
 *   refuses a worker file (ERR_INPUT_TYPE_NOT_ALLOWED) and makes an eval'd
 *   source ESM, so a module runs through an eval'd `import()`, which reads the
 *   same either way.
 */
export function startWorker(filename: string | URL, options: WorkerOptions): Worker {
  if (starting++ === 0 && !compilerOffByUser)
    v8.setFlagsFromString("--no-concurrent-recompilation");
  let worker: Worker;
  try {
    worker =
      options.eval === true
        ? new Worker(filename, options)
        : new Worker(`import(${JSON.stringify(new URL(filename, "file:").href)});`, {
            ...options,
            eval: true,
          });
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

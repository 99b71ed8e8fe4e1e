import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

// Ending a sweep worker must not race V8's background compiler (see startWorker):
// on Node 20 that aborted the process (terminate) or hung it (natural exit), and one
// abort in CI took the whole simulate test file with it. Each case runs in a child
// so that an abort or a hang is a result, not the end of this file.
function runChild(
  script: string,
  flags: string[] = [],
): {
  signal: NodeJS.Signals | null;
  status: number | null;
  stdout: string;
  stderr: string;
} {
  return spawnSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
    encoding: "utf8",
    timeout: 100_000,
  });
}

/** What the child printed last, once it is clear it neither died nor failed. */
function survived(child: ReturnType<typeof runChild>): unknown {
  assert.equal(
    child.signal,
    null,
    `the process died of ${child.signal}: ${child.stderr.slice(0, 400)}`,
  );
  assert.equal(child.status, 0, child.stderr);
  return JSON.parse(child.stdout);
}

const url = (p: string) => JSON.stringify(new URL(p, import.meta.url).href);
const setup = `
  import { startWorker } from ${url("../../src/worker-options.js")};
  import { runSweep, runPoint, shareWorkload } from ${url("../../src/simulate/sweep.js")};
  import { parseSweep, sweepPoints } from ${url("../../src/simulate/options.js")};
  import { generatePoissonMix } from ${url("../../src/simulate/workload.js")};
  const w = generatePoissonMix({
    n: 20_000, seed: 3, meanInterarrivalMs: 5, deadFraction: 0.05, deadMs: 50, liveMs: 0.5,
  });
  const points = sweepPoints([parseSweep("max-in-flight=1..4"), parseSweep("policy=queue,reject")]);
`;

test("sweep workers terminated the moment they run out of points do not abort the process", () => {
  // The harshest ending: hot engine code just compiled, then terminate(). Without
  // startWorker's compiler flag this aborted within the first few rounds (3 of 3 runs).
  const child = runChild(`${setup}
    const shared = shareWorkload(w);
    const workerUrl = new URL(${url("../../src/simulate/sweep-worker.js")});
    // The pool as it was: two workers share the points; each is terminated as
    // soon as none are left for it.
    let rounds = 0;
    for (; rounds < 25; rounds++) {
      let next = 0;
      await Promise.all([0, 1].map(async () => {
        const worker = startWorker(workerUrl, { workerData: shared });
        while (next < points.length) {
          worker.postMessage({ index: next, point: points[next++] });
          await new Promise((resolve) => worker.once("message", resolve));
        }
        await worker.terminate();
      }));
    }
    console.log(JSON.stringify({ rounds }));
  `);
  assert.deepEqual(survived(child), { rounds: 25 });
});

test("sweeps in a loop end their workers and give the sequential results each time, under per-process flags", () => {
  const child = runChild(
    `${setup}
    const want = JSON.stringify(points.map((p) => runPoint(w, p)));
    let sweeps = 0;
    for (; sweeps < 10; sweeps++) {
      const got = JSON.stringify(await runSweep(w, points, 2));
      if (got !== want) throw new Error("sweep " + sweeps + " differs from the sequential run");
    }
    console.log(JSON.stringify({ sweeps }));
  `,
    // Refused in a worker's explicit execArgv (ERR_WORKER_INVALID_EXEC_ARGV).
    ["--expose-gc", "--max-old-space-size=512"],
  );
  assert.deepEqual(survived(child), { sweeps: 10 });
});

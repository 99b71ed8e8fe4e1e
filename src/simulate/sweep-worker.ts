import { parentPort, workerData } from "node:worker_threads";
import { runPoint, type SweepPoint } from "./sweep.js";
import type { Workload } from "./workload.js";

const workload = workerData as Workload;
type Request = { done: true } | { done?: false; index: number; point: SweepPoint };

parentPort?.on("message", (m: Request) => {
  // Closing the port lets the thread end by itself; see runSweep's finally.
  if (m.done) parentPort?.close();
  else parentPort?.postMessage(runPoint(workload, m.point));
});

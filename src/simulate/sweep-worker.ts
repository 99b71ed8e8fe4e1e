import { parentPort, workerData } from "node:worker_threads";
import { runPoint, type SweepPoint } from "./sweep.js";
import type { Workload } from "./workload.js";

const workload = workerData as Workload;
parentPort?.on("message", ({ point }: { index: number; point: SweepPoint }) => {
  parentPort?.postMessage(runPoint(workload, point));
});

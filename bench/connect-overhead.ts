import net from "node:net";
import { performance } from "node:perf_hooks";
import { install, uninstall } from "../src/emulate/install.js";
import { LiveListener } from "../src/targets/live.js";
import { max, median, min, percentile } from "./stats.js";

export interface OverheadOptions {
  rounds: number;
  /** Connects per round made one after another: latency without contention. */
  sequential: number;
  /** Connects per round with `concurrency` in flight: throughput. */
  concurrent: number;
  concurrency: number;
}

export type Mode = "plain" | "hooked";

/** One round's numbers for one mode; latencies in ms, rates in connects/s. */
export interface RoundResult {
  seqP50: number;
  seqP99: number;
  seqRate: number;
  concP50: number;
  concP99: number;
  concRate: number;
}

export type Metric = keyof RoundResult;

export interface OverheadResult {
  options: OverheadOptions;
  rounds: Record<Mode, RoundResult[]>;
}

/**
 * Hooked and plain blocks alternate inside every round, and which goes first
 * flips each round, so drift (thermal, page cache, TIME_WAIT buildup) lands
 * on both sides equally instead of biasing the ratio.
 */
export async function runConnectOverhead(options: OverheadOptions): Promise<OverheadResult> {
  const live = await LiveListener.listen({ host: "127.0.0.1" });
  const rounds: Record<Mode, RoundResult[]> = { plain: [], hooked: [] };
  try {
    // Unrecorded: lets both code paths get optimised before anything counts.
    for (const mode of ["plain", "hooked"] as const) await block(mode, live.port, options);
    for (let r = 0; r < options.rounds; r++) {
      const order: Mode[] = r % 2 === 0 ? ["plain", "hooked"] : ["hooked", "plain"];
      for (const mode of order) rounds[mode].push(await block(mode, live.port, options));
    }
  } finally {
    await live.close();
  }
  return { options, rounds };
}

async function block(mode: Mode, port: number, o: OverheadOptions): Promise<RoundResult> {
  // Uncontended: the hook and gate run on every connect but never make one wait.
  if (mode === "hooked") install({ maxInFlight: Number.POSITIVE_INFINITY });
  try {
    const seq: number[] = [];
    const seqStart = performance.now();
    for (let i = 0; i < o.sequential; i++) seq.push(await connectOnce(port));
    const seqMs = performance.now() - seqStart;

    const conc: number[] = [];
    let left = o.concurrent;
    const worker = async () => {
      while (left-- > 0) conc.push(await connectOnce(port));
    };
    const concStart = performance.now();
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    const concMs = performance.now() - concStart;

    return {
      seqP50: median(seq),
      seqP99: percentile(seq, 99),
      seqRate: (o.sequential / seqMs) * 1000,
      concP50: median(conc),
      concP99: percentile(conc, 99),
      concRate: (o.concurrent / concMs) * 1000,
    };
  } finally {
    if (mode === "hooked") uninstall();
  }
}

/** Milliseconds from `net.connect` to 'connect', stamped inside the listener. */
function connectOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("error", reject);
    socket.once("connect", () => {
      const elapsed = performance.now() - t0;
      socket.destroy();
      resolve(elapsed);
    });
  });
}

export interface MetricSummary {
  plain: number;
  hooked: number;
  /** hooked / plain of the medians across rounds. */
  ratio: number;
  /** Spread of the same ratio taken round by round: the noise floor. */
  ratioMin: number;
  ratioMax: number;
}

export function summarize(result: OverheadResult, metric: Metric): MetricSummary {
  const plain = result.rounds.plain.map((r) => r[metric]);
  const hooked = result.rounds.hooked.map((r) => r[metric]);
  const paired = hooked.map((h, i) => h / (plain[i] as number));
  return {
    plain: median(plain),
    hooked: median(hooked),
    ratio: median(hooked) / median(plain),
    ratioMin: min(paired),
    ratioMax: max(paired),
  };
}

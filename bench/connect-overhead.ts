import net from "node:net";
import { performance } from "node:perf_hooks";
import { install, uninstall } from "../src/emulate/install.js";
import { LiveListener } from "../src/targets/live.js";
import { median, percentile } from "./stats.js";

export interface OverheadOptions {
  rounds: number;
  /** Connects per round made one after another: latency without contention. */
  sequential: number;
  /** Connects per round with `concurrency` in flight: throughput. */
  concurrent: number;
  concurrency: number;
  /** A/A control: the "hooked" blocks run without the hook, to show the method's noise. */
  control?: boolean;
}

export type Mode = "plain" | "hooked";

/**
 * One round's numbers for one mode: latencies and CPU time per connect in ms,
 * rates in connects/s. CPU time (user + sys, client and listener together)
 * does not count time the VM spent running someone else, unlike wall time.
 */
export interface RoundResult {
  seqP50: number;
  seqP99: number;
  seqRate: number;
  seqCpu: number;
  concP50: number;
  concP99: number;
  concRate: number;
  concCpu: number;
}

export type Metric = keyof RoundResult;

export interface OverheadResult {
  options: OverheadOptions;
  rounds: Record<Mode, RoundResult[]>;
}

/**
 * Hooked and plain blocks alternate inside every round, and which goes first
 * flips each round, so drift (noisy VM neighbours, TIME_WAIT buildup) lands
 * on both sides equally instead of biasing the ratio. Many short rounds beat
 * few long ones: adjacent blocks see nearly the same machine.
 */
export async function runConnectOverhead(options: OverheadOptions): Promise<OverheadResult> {
  const listener = await LiveListener.listen({ host: "127.0.0.1" });
  const live = new AcceptWatch(listener);
  const rounds: Record<Mode, RoundResult[]> = { plain: [], hooked: [] };
  try {
    // Unrecorded: lets both code paths get optimised before anything counts.
    for (const mode of ["plain", "hooked"] as const) await block(mode, live, options);
    for (let r = 0; r < options.rounds; r++) {
      const order: Mode[] = r % 2 === 0 ? ["plain", "hooked"] : ["hooked", "plain"];
      for (const mode of order) rounds[mode].push(await block(mode, live, options));
    }
  } finally {
    live.close();
    await listener.close();
  }
  return { options, rounds };
}

async function block(mode: Mode, live: AcceptWatch, o: OverheadOptions): Promise<RoundResult> {
  // Uncontended: the hook and gate run on every connect but never make one wait.
  const hook = mode === "hooked" && !o.control;
  if (hook) install({ maxInFlight: Number.POSITIVE_INFINITY });
  try {
    const seq = await connectMany(live, o.sequential, 1);
    const conc = await connectMany(live, o.concurrent, o.concurrency);
    return {
      seqP50: median(seq.latencies),
      seqP99: percentile(seq.latencies, 99),
      seqRate: seq.rate,
      seqCpu: seq.cpu,
      concP50: median(conc.latencies),
      concP99: percentile(conc.latencies, 99),
      concRate: conc.rate,
      concCpu: conc.cpu,
    };
  } finally {
    if (hook) uninstall();
  }
}

/**
 * A client that destroys at 'connect' never waits for accept(), so an open
 * loop outruns an in-process listener, overflows its accept queue and eats
 * 1 s SYN retransmits. Counting a connect as in flight until the listener
 * accepted it keeps the queue short, and no block leaves accepts behind for
 * the next one to pay for.
 */
async function connectMany(live: AcceptWatch, total: number, concurrency: number) {
  const latencies: number[] = [];
  const base = live.count;
  let issued = 0;
  const worker = async () => {
    while (issued < total) {
      const n = ++issued;
      await live.reach(base + n - concurrency);
      latencies.push(await connectOnce(live.port));
    }
  };
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  await live.reach(base + total);
  const rate = (total / (performance.now() - start)) * 1000;
  const { user, system } = process.cpuUsage(cpuStart);
  return { latencies, rate, cpu: (user + system) / 1000 / total };
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

/** Accepted-connection count of a listener, with a way to wait for it. */
class AcceptWatch {
  count = 0;
  readonly port: number;
  // At most one waiter per worker, so a scan per accept is cheap.
  readonly #waiters: Array<{ target: number; resolve: () => void }> = [];
  readonly #onConnection = () => {
    this.count++;
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i] as { target: number; resolve: () => void };
      if (this.count < w.target) continue;
      this.#waiters.splice(i, 1);
      w.resolve();
    }
  };

  constructor(readonly listener: LiveListener) {
    this.port = listener.port;
    listener.server.on("connection", this.#onConnection);
  }

  /** Resolves once `target` connections in all were accepted. */
  reach(target: number): Promise<void> {
    if (this.count >= target) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ target, resolve }));
  }

  close(): void {
    this.listener.server.off("connection", this.#onConnection);
  }
}

export interface MetricSummary {
  plain: number;
  hooked: number;
  /** hooked / plain of the medians across rounds. */
  ratio: number;
  /** hooked / plain taken round by round (adjacent blocks): median and quartiles. */
  paired: number;
  pairedQ1: number;
  pairedQ3: number;
}

export function summarize(result: OverheadResult, metric: Metric): MetricSummary {
  const plain = result.rounds.plain.map((r) => r[metric]);
  const hooked = result.rounds.hooked.map((r) => r[metric]);
  const paired = hooked.map((h, i) => h / (plain[i] as number));
  return {
    plain: median(plain),
    hooked: median(hooked),
    ratio: median(hooked) / median(plain),
    paired: median(paired),
    pairedQ1: percentile(paired, 25),
    pairedQ3: percentile(paired, 75),
  };
}

import net from "node:net";
import { performance } from "node:perf_hooks";
import { max, percentile } from "../stats.js";

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function summarize(sample: readonly number[]): LatencySummary {
  return {
    count: sample.length,
    p50Ms: percentile(sample, 50),
    p95Ms: percentile(sample, 95),
    p99Ms: percentile(sample, 99),
    maxMs: sample.length ? max(sample) : Number.NaN,
  };
}

/**
 * A login as `ADsOpenObject` does it: a fresh TCP connection each time. The
 * latency is the time to connect — the part a connect-attempt limit delays.
 */
export function connectLogin(host: string, port: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(performance.now() - started);
    });
    socket.once("error", reject);
  });
}

/** Runs `count` logins one after another, `gapMs` apart; returns each latency. */
export async function runLogins(
  login: () => Promise<number>,
  count: number,
  gapMs: number,
): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    latencies.push(await login());
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return latencies;
}

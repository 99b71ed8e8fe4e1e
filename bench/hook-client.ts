// The client of bench/hook-overhead.ts: a process of its own, started plain
// or with `--import synlimit/register`, that makes connects to a loopback
// target and prints one JSON line: connects/s and its CPU per connect.
//   node [--import …/register.js] dist/bench/hook-client.js PORT seq|par COUNT [CONCURRENCY]
import net from "node:net";
import { performance } from "node:perf_hooks";

const [portText = "", mode = "seq", countText = "1000", concText = "32"] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const concurrency = mode === "seq" ? 1 : Number(concText);

function connectOnce(): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve();
    });
    s.once("error", reject);
  });
}

async function run(n: number): Promise<void> {
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started++;
      await connectOnce();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

// Warm-up: both builds get their connect path optimised before anything counts.
await run(Math.min(1_000, count));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await run(count);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  `${JSON.stringify({
    perSecond: count / seconds,
    cpuMicros: (cpu.user + cpu.system) / count,
    // Whether synlimit/register installed its emulation here (a check on the harness).
    hooked: (globalThis as Record<symbol, unknown>)[Symbol.for("synlimit.emulation")] !== undefined,
  })}\n`,
);

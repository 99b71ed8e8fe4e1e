// Connection setups per second and bulk throughput through `synlimit gate`
// (no limit hit) against a direct connection, microsocks and dante, all on
// loopback in one run. Run alone: node dist/bench/proxy-throughput.js [--quick]
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import {
  cliPath,
  directTunnel,
  freePort,
  mib,
  readExactly,
  socks5Tunnel,
  stop,
  waitForPort,
} from "./proxy-common.js";
import { median } from "./stats.js";

interface Subject {
  readonly name: string;
  /** One process (threads allowed), so its CPU time is all in /proc/<pid>/stat. */
  readonly singleProcess: boolean;
  start(): Promise<{ port: number | null; child: ChildProcess | null; cleanup?: () => void }>;
}

function which(name: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function gateSubject(identity: "global" | "process"): Subject {
  return {
    name: `synlimit gate (identity ${identity})`,
    singleProcess: true,
    async start() {
      const port = await freePort();
      // The `windows` profile has no limit: this measures the proxy, not the gate's waits.
      const child = spawn(
        process.execPath,
        [
          cliPath,
          "gate",
          "--port",
          String(port),
          "--no-admin",
          "--profile",
          "windows",
          "--identity",
          identity,
          "--log-level",
          "warn",
        ],
        { stdio: ["ignore", "ignore", "inherit"] },
      );
      await waitForPort(port, child);
      return { port, child };
    },
  };
}

const subjects: Subject[] = [
  {
    name: "direct (no proxy)",
    singleProcess: false,
    start: async () => ({ port: null, child: null }),
  },
  gateSubject("global"),
  gateSubject("process"),
  {
    name: "microsocks",
    singleProcess: true,
    async start() {
      const bin = which("microsocks");
      if (!bin) throw new Error("microsocks is not installed (apt-get install microsocks)");
      const port = await freePort();
      const child = spawn(bin, ["-i", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
      await waitForPort(port, child);
      return { port, child };
    },
  },
  {
    name: "dante (danted)",
    // It forks a process per client batch; children that exit take their CPU time along.
    singleProcess: false,
    async start() {
      const bin = which("danted");
      if (!bin) throw new Error("danted is not installed (apt-get install dante-server)");
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), "synlimit-dante-"));
      const conf = join(dir, "danted.conf");
      writeFileSync(
        conf,
        [
          "logoutput: /dev/null",
          `internal: 127.0.0.1 port = ${port}`,
          "external: 127.0.0.1",
          "clientmethod: none",
          "socksmethod: none",
          "user.privileged: root",
          "user.unprivileged: nobody",
          "client pass { from: 127.0.0.0/8 to: 127.0.0.0/8 }",
          "socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 }",
          "",
        ].join("\n"),
      );
      const child = spawn(bin, ["-f", conf, "-p", join(dir, "danted.pid")], { stdio: "ignore" });
      await waitForPort(port, child);
      return { port, child, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
];

/** A target that greets each connection with one byte, and a sink that counts bytes. */
class Targets {
  readonly hello = net.createServer((s) => {
    s.on("error", () => {});
    s.end("x");
  });
  readonly sink = net.createServer((s) => {
    s.on("error", () => {});
    s.on("data", (d: Buffer) => {
      this.received += d.length;
      if (this.received >= this.#expect) this.#done?.();
    });
  });
  received = 0;
  #expect = Number.POSITIVE_INFINITY;
  #done: (() => void) | null = null;

  async listen(): Promise<this> {
    this.hello.listen(0, "127.0.0.1");
    this.sink.listen(0, "127.0.0.1");
    await Promise.all([once(this.hello, "listening"), once(this.sink, "listening")]);
    return this;
  }

  port(server: net.Server): number {
    return (server.address() as net.AddressInfo).port;
  }

  expect(bytes: number): Promise<void> {
    this.received = 0;
    this.#expect = bytes;
    return new Promise((resolve) => {
      this.#done = resolve;
    });
  }

  close(): void {
    this.hello.close();
    this.sink.close();
  }
}

async function tunnel(proxyPort: number | null, port: number): Promise<net.Socket> {
  const target = { host: "127.0.0.1", port };
  return proxyPort === null ? directTunnel(target) : socks5Tunnel(proxyPort, target);
}

async function setupsPerSecond(
  proxyPort: number | null,
  targets: Targets,
  total: number,
  concurrency: number,
) {
  let started = 0;
  const port = targets.port(targets.hello);
  const worker = async () => {
    while (started < total) {
      started++;
      const s = await tunnel(proxyPort, port);
      await readExactly(s, 1);
      s.destroy();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return total / ((performance.now() - t0) / 1000);
}

async function throughput(proxyPort: number | null, targets: Targets, bytes: number) {
  const s = await tunnel(proxyPort, targets.port(targets.sink));
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const done = targets.expect(bytes);
  const t0 = performance.now();
  let sent = 0;
  while (sent < bytes) {
    sent += chunk.length;
    if (!s.write(chunk)) await once(s, "drain");
  }
  await done;
  const seconds = (performance.now() - t0) / 1000;
  s.destroy();
  return bytes / mib / seconds;
}

/** CPU seconds (user + system, all threads) of one process, from /proc. */
function processCpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which may contain spaces: utime and stime are the 12th and 13th.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / clockTicks;
}

const clockTicks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

interface Running {
  readonly subject: Subject;
  readonly port: number | null;
  readonly child: ChildProcess | null;
  readonly cleanup?: () => void;
  readonly setups: number[];
  readonly cpuMicrosPerSetup: number[];
  readonly mbPerSecond: number[];
}

export async function runProxyBench(options: { quick: boolean }): Promise<{ markdown: string }> {
  const rounds = options.quick ? 2 : 7;
  const setups = options.quick ? 1_000 : 3_000;
  const bytes = (options.quick ? 64 : 256) * mib;
  const concurrency = 32;
  const targets = await new Targets().listen();
  const running: Running[] = [];
  const failures: string[] = [];
  try {
    // Every subject runs from the start; idle, a proxy costs nothing, so each
    // round measures all of them within seconds of each other, in an order
    // rotated per round: a slow spell of the machine hits all alike.
    for (const subject of subjects) {
      try {
        const started = await subject.start();
        running.push({ subject, ...started, setups: [], cpuMicrosPerSetup: [], mbPerSecond: [] });
      } catch (error) {
        failures.push(`${subject.name}: ${(error as Error).message}`);
      }
    }
    // Warm up before measuring, every path alike: a JIT-compiled proxy
    // reaches its pace after a few thousand setups (300 left the gate's first
    // two rounds at half speed), and a C one loses nothing by waiting.
    const warmUp = options.quick ? 500 : 3_000;
    for (const r of running) await setupsPerSecond(r.port, targets, warmUp, concurrency);
    const rotated = (round: number) =>
      running.map((_, i) => running[(i + round) % running.length] as Running);
    // Setups first, bulk after: a bulk run leaves a proxy's heap and
    // buffers grown, which is not the state a setup benchmark is about.
    for (let round = 0; round < rounds; round++) {
      for (const r of rotated(round)) {
        const pid = r.subject.singleProcess ? r.child?.pid : undefined;
        const cpu0 = pid ? processCpuSeconds(pid) : 0;
        r.setups.push(await setupsPerSecond(r.port, targets, setups, concurrency));
        if (pid) r.cpuMicrosPerSetup.push(((processCpuSeconds(pid) - cpu0) * 1e6) / setups);
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const r of rotated(round)) r.mbPerSecond.push(await throughput(r.port, targets, bytes));
    }
  } finally {
    for (const r of running) {
      if (r.child) await stop(r.child);
      r.cleanup?.();
    }
    targets.close();
  }
  return { markdown: render(running, failures, { rounds, setups, bytes, concurrency }) };
}

function ratios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x / (b[i] as number));
}

function render(
  running: Running[],
  failures: string[],
  p: { rounds: number; setups: number; bytes: number; concurrency: number },
): string {
  const micro = running.find((r) => r.subject.name === "microsocks");
  const lines = [
    `Loopback, one run: per round, ${p.setups} SOCKS5 setups (connect, greeting, CONNECT, first byte from the target, close) with ${p.concurrency} in parallel through each path, then ${p.bytes / mib} MiB through one tunnel of each; ${p.rounds} rounds, the order of the paths rotated every round. Medians; "vs microsocks" is the median of the per-round ratios (paired: both measured within seconds of each other), with the lowest and highest round in brackets. The machine's pace drifts between rounds, so the median of a column and the median of its ratios can disagree; the ratio is the comparison, and the rounds are listed below. CPU per setup is the proxy process's user + system time, from /proc (not for dante, whose forked children take theirs along when they exit). The gate runs the \`windows\` profile (no limit), so no attempt waits. The load generator and the target servers are one Node process sharing the 2 cores with the proxy.`,
    "",
    "| path | setups/s | setups vs microsocks | proxy CPU per setup | throughput (MiB/s) | throughput vs microsocks |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  const rel = (a: readonly number[], b: readonly number[] | undefined) => {
    if (!b) return "–";
    const r = ratios(a, b);
    return `${median(r).toFixed(2)}× (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})`;
  };
  for (const r of running) {
    const cpu =
      r.cpuMicrosPerSetup.length > 0 ? `${median(r.cpuMicrosPerSetup).toFixed(0)} µs` : "–";
    lines.push(
      `| ${r.subject.name} | ${median(r.setups).toFixed(0)} | ${rel(r.setups, micro?.setups)} | ${cpu} | ${median(r.mbPerSecond).toFixed(0)} | ${rel(r.mbPerSecond, micro?.mbPerSecond)} |`,
    );
  }
  // Every round, so the medians above can be checked against what they summarize.
  lines.push(
    "",
    `Setups/s per round (the machine's pace changes within seconds; compare within a row):`,
    "",
    `| round | ${running.map((r) => r.subject.name).join(" | ")} |`,
    `| ---: | ${running.map(() => "---:").join(" | ")} |`,
  );
  for (let i = 0; i < p.rounds; i++) {
    lines.push(`| ${i + 1} | ${running.map((r) => (r.setups[i] ?? 0).toFixed(0)).join(" | ")} |`);
  }
  // No verdict here: this harness shares its process between the load
  // generator and the targets; bench/proxy-setups.ts measures setups as a
  // user would (separate processes) and is the one the speed goals use.
  lines.push(
    "",
    "Setups/s as a user would measure them (proxies, client and target as separate processes): see bench/proxy-setups.ts.",
  );
  if (failures.length > 0) lines.push("", ...failures.map((f) => `- not measured: ${f}`));
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown } = await runProxyBench({ quick: process.argv.includes("--quick") });
  process.stdout.write(`${markdown}\n`);
}

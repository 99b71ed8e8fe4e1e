// Connection setups per second and bulk throughput through `synlimit gate`
// (no limit hit) against a direct connection, microsocks and dante, all on
// loopback in one run. Run alone: node dist/bench/proxy-throughput.js [--quick]
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
  start(): Promise<{ port: number | null; child: ChildProcess | null; cleanup?: () => void }>;
}

interface Result {
  readonly name: string;
  readonly setupsPerSecond: number;
  readonly mbPerSecond: number;
}

function which(name: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function gateSubject(identity: "global" | "process"): Subject {
  return {
    name: `synlimit gate (identity ${identity})`,
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
  { name: "direct (no proxy)", start: async () => ({ port: null, child: null }) },
  gateSubject("global"),
  gateSubject("process"),
  {
    name: "microsocks",
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

export async function runProxyBench(options: { quick: boolean }): Promise<{ markdown: string }> {
  const rounds = options.quick ? 1 : 3;
  const setups = options.quick ? 1_000 : 4_000;
  const bytes = (options.quick ? 64 : 512) * mib;
  const concurrency = 32;
  const targets = await new Targets().listen();
  const results: Result[] = [];
  const failures: string[] = [];
  try {
    for (const subject of subjects) {
      let started: Awaited<ReturnType<Subject["start"]>>;
      try {
        started = await subject.start();
      } catch (error) {
        failures.push(`${subject.name}: ${(error as Error).message}`);
        continue;
      }
      try {
        // Warm up (JIT, the proxy's first connections) before measuring.
        await setupsPerSecond(started.port, targets, 200, concurrency);
        const s: number[] = [];
        const t: number[] = [];
        for (let r = 0; r < rounds; r++) {
          s.push(await setupsPerSecond(started.port, targets, setups, concurrency));
          t.push(await throughput(started.port, targets, bytes));
        }
        results.push({ name: subject.name, setupsPerSecond: median(s), mbPerSecond: median(t) });
      } finally {
        if (started.child) await stop(started.child);
        started.cleanup?.();
      }
    }
  } finally {
    targets.close();
  }
  return { markdown: render(results, failures, { rounds, setups, bytes, concurrency }) };
}

function render(
  results: Result[],
  failures: string[],
  p: { rounds: number; setups: number; bytes: number; concurrency: number },
): string {
  const micro = results.find((r) => r.name === "microsocks");
  const lines = [
    `Loopback, one run: ${p.setups} SOCKS5 setups (connect, greeting, CONNECT, first byte from the target, close) with ${p.concurrency} in parallel, and ${p.bytes / mib} MiB through one tunnel; median of ${p.rounds} round(s). The gate runs the \`windows\` profile (no limit), so no attempt waits.`,
    "",
    "| path | setups/s | throughput (MiB/s) | setups vs microsocks | throughput vs microsocks |",
    "| --- | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    const rel = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}×` : "–");
    lines.push(
      `| ${r.name} | ${r.setupsPerSecond.toFixed(0)} | ${r.mbPerSecond.toFixed(0)} | ${rel(r.setupsPerSecond, micro?.setupsPerSecond)} | ${rel(r.mbPerSecond, micro?.mbPerSecond)} |`,
    );
  }
  const gate = results.find((r) => r.name === "synlimit gate (identity global)");
  if (gate && micro) {
    const setupsOk = gate.setupsPerSecond >= micro.setupsPerSecond;
    const bulkOk = gate.mbPerSecond >= micro.mbPerSecond / 2;
    lines.push(
      "",
      `Targets: setups/s ≥ microsocks — ${setupsOk ? "met" : "**not met**"}; throughput ≥ half of microsocks — ${bulkOk ? "met" : "**not met**"}.`,
    );
  }
  if (failures.length > 0) lines.push("", ...failures.map((f) => `- not measured: ${f}`));
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown } = await runProxyBench({ quick: process.argv.includes("--quick") });
  process.stdout.write(`${markdown}\n`);
}

// Connection setups per second through `synlimit gate` and microsocks (and
// dante when installed), measured as a user would: every proxy a process
// of its own started by its CLI, the client a separate Node process (plain
// `net`, by-the-book SOCKS5) and the target a third, many short rounds with
// the order of the proxies rotated every round, and each gate round divided
// by the microsocks round next to it (paired ratios).
//
//   node dist/bench/proxy-setups.js [--rounds 21] [--setups 1000]
//     [--concurrency 32] [--cpu-prof DIR]
import { type ChildProcess, fork, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { cliPath, freePort, stop, waitForPort } from "./proxy-common.js";
import { median } from "./stats.js";

interface Proxy {
  readonly name: string;
  /** One process, so its CPU time is all in /proc/<pid>/stat. */
  readonly singleProcess: boolean;
  start(): Promise<{ port: number; child: ChildProcess; cleanup?: () => void }>;
}

function which(name: string): string | null {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

function gate(identity: "global" | "process", profDir: string | null): Proxy {
  return {
    name: `gate (identity ${identity})`,
    singleProcess: true,
    async start() {
      const port = await freePort();
      const child = spawn(
        process.execPath,
        [
          ...(profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []),
          cliPath,
          "gate",
          "--port",
          String(port),
          "--no-admin",
          // No limit: this measures the proxy, not the gate's waits.
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

const microsocks: Proxy = {
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
};

const dante: Proxy = {
  name: "dante",
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
};

const clockTicks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout) || 100;

function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / clockTicks;
}

interface ClientResult {
  perSecond: number;
  seconds: number;
  cpuMicros: number;
  failed: number;
}

class Client {
  readonly child = fork(fileURLToPath(new URL("./proxy-client.js", import.meta.url)), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });

  async run(job: {
    proxyPort: number;
    targetPort: number;
    setups: number;
    concurrency: number;
  }): Promise<ClientResult> {
    this.child.send(job);
    const [answer] = (await once(this.child, "message")) as [ClientResult & { error?: string }];
    if (answer.error) throw new Error(answer.error);
    return answer;
  }
}

async function startTarget(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL("./proxy-target.js", import.meta.url))],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout?.setEncoding("utf8");
  while (!out.includes("\n")) out += (await once(child.stdout as NodeJS.ReadableStream, "data"))[0];
  return { child, port: Number(out.trim()) };
}

interface Running {
  readonly proxy: Proxy;
  readonly port: number;
  readonly child: ChildProcess;
  readonly cleanup?: () => void;
  readonly rates: number[];
  readonly cpuMicros: number[];
  failed: number;
}

export interface SetupsOptions {
  rounds: number;
  setups: number;
  concurrency: number;
  profDir: string | null;
}

export async function runProxySetups(o: SetupsOptions): Promise<{ markdown: string }> {
  const loadAtStart = os.loadavg()[0] ?? 0;
  const target = await startTarget();
  const client = new Client();
  const running: Running[] = [];
  const missing: string[] = [];
  try {
    for (const proxy of [
      gate("global", o.profDir),
      gate("process", o.profDir),
      microsocks,
      dante,
    ]) {
      try {
        const s = await proxy.start();
        running.push({ proxy, ...s, rates: [], cpuMicros: [], failed: 0 });
      } catch (error) {
        missing.push(`${proxy.name}: ${(error as Error).message}`);
      }
    }
    const job = (r: Running, setups: number) => ({
      proxyPort: r.port,
      targetPort: target.port,
      setups,
      concurrency: o.concurrency,
    });
    // Warm-up, every proxy alike: a JIT-compiled one reaches its pace after
    // a few thousand setups; a C one loses nothing by waiting.
    for (const r of running) await client.run(job(r, 3_000));
    // Within a round the proxies take turns in slices of the round's setups,
    // so a round's pair is measured within tens of milliseconds, not seconds:
    // on a machine shared with other work, pace changes faster than that.
    const slices = 5;
    const perSlice = Math.ceil(o.setups / slices);
    for (let round = 0; round < o.rounds; round++) {
      const order = running.map((_, i) => running[(i + round) % running.length] as Running);
      const seconds = new Map<Running, number>(running.map((r) => [r, 0]));
      const cpu0 = new Map<Running, number>();
      for (const r of running)
        if (r.proxy.singleProcess && r.child.pid) cpu0.set(r, cpuSeconds(r.child.pid));
      for (let slice = 0; slice < slices; slice++) {
        // Alternating direction: neither end of the order is always first.
        const turn = slice % 2 === 0 ? order : [...order].reverse();
        for (const r of turn) {
          const result = await client.run(job(r, perSlice));
          seconds.set(r, (seconds.get(r) ?? 0) + result.seconds);
          r.failed += result.failed;
        }
      }
      for (const r of running) {
        r.rates.push((perSlice * slices) / (seconds.get(r) ?? 1));
        const c0 = cpu0.get(r);
        if (c0 !== undefined && r.child.pid)
          r.cpuMicros.push(((cpuSeconds(r.child.pid) - c0) * 1e6) / (perSlice * slices));
      }
    }
  } finally {
    for (const r of running) {
      await stop(r.child);
      r.cleanup?.();
    }
    client.child.kill();
    await stop(target.child);
  }
  return { markdown: render(running, missing, o, [loadAtStart, os.loadavg()[0] ?? 0]) };
}

function render(
  running: Running[],
  missing: string[],
  o: SetupsOptions,
  [loadAtStart, loadAtEnd]: [number, number],
): string {
  const micro = running.find((r) => r.proxy === microsocks);
  const lines = [
    `Command: \`npm run build && node dist/bench/proxy-setups.js --rounds ${o.rounds} --setups ${o.setups}\` (microsocks and dante-server from apt). Load average (1 min) at the start: ${loadAtStart.toFixed(1)}, at the end: ${loadAtEnd.toFixed(1)}.`,
    "",
    `Every proxy a separate process started by its CLI; the client a separate Node process (plain \`net\`, greeting and CONNECT each answered before the next, the target's first byte, close), ${o.concurrency} setups in parallel; the target a third process. ${o.rounds} rounds of ${o.setups} setups through each proxy, taken in 5 slices per round with the proxies in turn (order rotated every round, alternating direction every slice), after 3,000 warm-up setups each. "vs microsocks" divides each round by the microsocks round measured next to it: median (lowest–highest); "lowest" is the worst round. CPU is the proxy process's user + system time per setup, from /proc. The gate runs the \`windows\` profile (no limit), so no attempt waits.`,
    "",
    "| proxy | setups/s (median) | vs microsocks | lowest round | proxy CPU per setup | failed |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of running) {
    let vs = "–";
    let low = "–";
    if (micro && r !== micro) {
      const ratios = r.rates.map((x, i) => x / (micro.rates[i] as number));
      vs = `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
      low = `${Math.min(...ratios).toFixed(2)}×`;
    }
    const cpu = r.cpuMicros.length > 0 ? `${median(r.cpuMicros).toFixed(0)} µs` : "–";
    lines.push(
      `| ${r.proxy.name} | ${median(r.rates).toFixed(0)} | ${vs} | ${low} | ${cpu} | ${r.failed} |`,
    );
  }
  lines.push(
    "",
    "Setups/s per round (compare within a row: the machine's pace changes between rounds):",
    "",
    `| round | ${running.map((r) => r.proxy.name).join(" | ")} |`,
    `| ---: | ${running.map(() => "---:").join(" | ")} |`,
  );
  for (let i = 0; i < o.rounds; i++) {
    lines.push(`| ${i + 1} | ${running.map((r) => (r.rates[i] ?? 0).toFixed(0)).join(" | ")} |`);
  }
  if (micro) {
    for (const [identity, goal, lowGoal] of [
      ["global", 1.0, 0.9],
      ["process", 0.9, null],
    ] as const) {
      const gate = running.find((r) => r.proxy.name === `gate (identity ${identity})`);
      if (!gate) continue;
      const ratios = gate.rates.map((x, i) => x / (micro.rates[i] as number));
      const med = median(ratios);
      const low = Math.min(...ratios);
      const met = med >= goal && (lowGoal === null || low >= lowGoal);
      lines.push(
        "",
        `Goal, identity ${identity}: median ≥ ${goal.toFixed(1)}× microsocks${lowGoal === null ? "" : `, lowest round ≥ ${lowGoal.toFixed(1)}×`} — ${met ? "met" : "**not met**"} (median ${med.toFixed(2)}×, lowest round ${low.toFixed(2)}×).`,
      );
    }
  }
  if (missing.length > 0) lines.push("", ...missing.map((m) => `- not measured: ${m}`));
  lines.push("", setupsAnalysis);
  return lines.join("\n");
}

/** What a profile of the gate shows (`--cpu-prof DIR` writes one per gate), in words that hold from run to run. */
export const setupsAnalysis = `What dominates the gate's CPU (\`node dist/bench/proxy-setups.js --cpu-prof DIR\`, or \`node --cpu-prof\` on \`synlimit gate\` under this client): the upstream \`connect(2)\` and the \`write(2)\`s of the replies and the forwarded byte (on loopback the kernel runs the handshake and the peer's receive path inside those calls; about a third of the gate's busy time, and the same calls microsocks makes), then building two \`net.Socket\`s per setup (Socket, Duplex, Readable/WritableState: about 15 %), garbage collection and V8's own work (about 7 % each). synlimit's own code — parsers, connection state machine, gate, limiter, ACL, dial — is about a tenth. For identity \`process\`, reading the client's \`/proc/<pid>/fd\` links adds to that (a recent client's non-socket fds are now read last). The gap to microsocks is Node's per-socket machinery, not the gate's logic: the gate spends about twice microsocks' CPU per setup, and on a machine shared with other work CPU per setup decides.`;

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "21" },
      setups: { type: "string", default: "1000" },
      concurrency: { type: "string", default: "32" },
      "cpu-prof": { type: "string" },
    },
  });
  const { markdown } = await runProxySetups({
    rounds: Number(values.rounds),
    setups: Number(values.setups),
    concurrency: Number(values.concurrency),
    profDir: values["cpu-prof"] ?? null,
  });
  process.stdout.write(`${markdown}\n`);
}

import { type ChildProcess, spawn } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Agent as UndiciAgent, request as undiciRequest } from "undici";
import { install } from "../src/emulate/install.js";
import { channelNames } from "../src/gate/channels.js";
import { GuardedAgent } from "../src/guard/adapters/http.js";
import { guardedConnect } from "../src/guard/adapters/undici.js";
import { ReconnectingLink } from "../src/guard/link.js";
import { connectLogin } from "../src/lab/logins.js";
import { NaiveAgent } from "../src/lab/naive-agent.js";
import { percentile } from "../src/stats.js";
import { EchoServer } from "../src/targets/echo.js";
import { LiveListener } from "../src/targets/live.js";
import { SilentUdpPort } from "../src/targets/silent-udp.js";
import { Tarpit } from "../src/targets/tarpit.js";

/**
 * The field case, measured: an agent connected to its collector when the
 * collector's host is switched off (its connections close, its port and
 * echo port fall silent). Each client runs in its own process under the
 * `incident` emulation while that process's own logins (fresh connects to a
 * live directory) are timed; one round runs every case once, in rotated
 * order, so the cases share the machine's noise.
 */
export interface FieldBenchOptions {
  quick: boolean;
}

const cases = [
  "no agent",
  "naive client",
  "GuardedAgent",
  "GuardedAgent + echo",
  "guardedConnect",
  "guardedConnect + echo",
  "ReconnectingLink",
  "ReconnectingLink + echo",
] as const;
type CaseName = (typeof cases)[number];

// 60 s of outage at 0.05: 3 s of real time per case; Windows' 21 s attempt is 1.05 s.
const timeScale = 0.05;
const outageModelMs = 60_000;
const sendEveryMs = 50;
const loginEveryMs = 5;

interface ChildConfig {
  name: CaseName;
  collectorHttpPort: number;
  collectorTcpPort: number;
  echoPort: number;
  directoryPort: number;
}

interface CaseSample {
  name: CaseName;
  /** Login connect times before the outage (ms). */
  before: number[];
  /** During the outage. */
  during: number[];
  /** The agent's TCP attempts to the collector during the outage. */
  agentAttempts: number;
  /** Time the agent's attempts held the process's connect slot during the outage (real ms). */
  agentSlotMs: number;
  /** Real length of the outage as this process saw it. */
  outageMs: number;
}

// ---- child: one client, under the incident emulation -----------------------

async function runChild(config: ChildConfig): Promise<void> {
  install({ profile: "incident", timeScale });
  const collectorPorts = new Set([config.collectorHttpPort, config.collectorTcpPort]);
  let outage = false;
  let agentAttempts = 0;
  let agentSlotMs = 0;
  const onStart = (m: unknown) => {
    const e = m as { port: number };
    if (outage && collectorPorts.has(e.port)) agentAttempts++;
  };
  const onEnd = (m: unknown) => {
    const e = m as { port: number; pendingMs: number };
    if (outage && collectorPorts.has(e.port)) agentSlotMs += e.pendingMs;
  };
  diagnostics.subscribe(channelNames.start, onStart);
  for (const c of ["connected", "failed", "timeout", "cancelled"] as const)
    diagnostics.subscribe(channelNames[c], onEnd);

  const echo = config.name.endsWith("+ echo") ? { udpEchoPort: config.echoPort } : undefined;
  const guard = { budget: "bench-field", ...(echo ? { preflight: echo } : {}) };
  const base = config.name.replace(" + echo", "");
  let stop: () => Promise<void> = async () => {};
  let healthy: Promise<unknown> = Promise.resolve();
  if (base === "naive client") {
    const agent = new NaiveAgent("127.0.0.1", config.collectorTcpPort).start();
    stop = async () => agent.stop();
  } else if (base === "GuardedAgent") {
    const agent = new GuardedAgent(guard, { keepAlive: true });
    const post = () =>
      new Promise<void>((resolve) => {
        const req = http.request(
          {
            host: "127.0.0.1",
            port: config.collectorHttpPort,
            method: "POST",
            path: "/v1/traces",
            agent,
          },
          (res) => res.resume().once("end", () => resolve()),
        );
        req.once("error", () => resolve());
        req.end("span");
      });
    healthy = post();
    const timer = setInterval(post, sendEveryMs);
    stop = async () => {
      clearInterval(timer);
      agent.destroy();
    };
  } else if (base === "guardedConnect") {
    const dispatcher = new UndiciAgent({ connect: guardedConnect(guard) });
    const post = () =>
      undiciRequest(`http://127.0.0.1:${config.collectorHttpPort}/v1/traces`, {
        method: "POST",
        body: "span",
        dispatcher,
      }).then(
        (r) => r.body.dump(),
        () => {},
      );
    healthy = post();
    const timer = setInterval(post, sendEveryMs);
    stop = async () => {
      clearInterval(timer);
      await dispatcher.destroy();
    };
  } else if (base === "ReconnectingLink") {
    const link = new ReconnectingLink({
      host: "127.0.0.1",
      port: config.collectorTcpPort,
      ...(echo ? { udpEchoPort: echo.udpEchoPort } : {}),
      guard: { budget: "bench-field" },
    });
    healthy = once(link, "connected");
    const timer = setInterval(() => link.send("span\n"), sendEveryMs);
    stop = async () => {
      clearInterval(timer);
      await link.close();
    };
  }
  await healthy;
  const before: number[] = [];
  const during: number[] = [];
  let running = true;
  let warm = 0;
  const loop = (async () => {
    while (running) {
      const ms = await connectLogin("127.0.0.1", config.directoryPort);
      if (outage) during.push(ms);
      else if (++warm > 20) before.push(ms); // the first connects of a process are cold
      await new Promise((r) => setTimeout(r, loginEveryMs));
    }
  })();
  process.stdout.write("ready\n");
  let outageStarted = 0;
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line === "off") {
      outage = true;
      outageStarted = performance.now();
      process.stdout.write("off\n");
    }
    if (line === "end") break;
  }
  const outageMs = performance.now() - outageStarted;
  running = false;
  await loop;
  await stop();
  const sample: CaseSample = {
    name: config.name,
    before,
    during,
    agentAttempts,
    agentSlotMs,
    outageMs,
  };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
  process.exit(0);
}

// ---- parent: peers, switch-off, rounds --------------------------------------

/** A collector host that can be switched off: its connections close, its ports fall silent. */
class SwitchableCollector {
  readonly #http = http.createServer((req, res) => {
    req.resume().once("end", () => res.end("{}"));
  });
  readonly #sinkSockets = new Set<net.Socket>();
  readonly #sink = net.createServer((s) => {
    this.#sinkSockets.add(s);
    s.once("close", () => this.#sinkSockets.delete(s));
    s.on("error", () => {});
    s.resume();
  });
  #echo: EchoServer | null = null;
  #silent: Array<{ close(): Promise<void> }> = [];
  httpPort = 0;
  tcpPort = 0;
  echoPort = 0;

  async start(): Promise<this> {
    this.#http.listen(0, "127.0.0.1");
    this.#sink.listen(0, "127.0.0.1");
    await Promise.all([once(this.#http, "listening"), once(this.#sink, "listening")]);
    this.httpPort = (this.#http.address() as net.AddressInfo).port;
    this.tcpPort = (this.#sink.address() as net.AddressInfo).port;
    this.#echo = await EchoServer.listen();
    this.echoPort = this.#echo.udpPort;
    return this;
  }

  /** The host goes away: established connections end, new SYNs and echoes go unanswered. */
  async switchOff(): Promise<void> {
    // Silent listeners first (a tarpit fills its own backlog before it
    // resolves), so no reconnect can slip into an accepting port.
    // close() stops listening at once; its callback would wait for the connections.
    this.#http.close();
    this.#sink.close();
    await this.#echo?.close();
    this.#silent = await Promise.all([
      Tarpit.listen({ port: this.httpPort }),
      Tarpit.listen({ port: this.tcpPort }),
      SilentUdpPort.listen({ port: this.echoPort }),
    ]);
    this.#http.closeAllConnections();
    for (const s of this.#sinkSockets) s.destroy();
  }

  async close(): Promise<void> {
    await Promise.all(this.#silent.map((s) => s.close()));
  }
}

async function runCase(name: CaseName, directoryPort: number): Promise<CaseSample> {
  const collector = await new SwitchableCollector().start();
  const script = fileURLToPath(import.meta.url);
  const config: ChildConfig = {
    name,
    collectorHttpPort: collector.httpPort,
    collectorTcpPort: collector.tcpPort,
    echoPort: collector.echoPort,
    directoryPort,
  };
  const child: ChildProcess = spawn(process.execPath, [script, "--child", JSON.stringify(config)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    const out = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const lines = out[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.value !== "ready") throw new Error(`bench child ${name}: ${String(first.value)}`);
    await new Promise((r) => setTimeout(r, 1000)); // a healthy stretch to compare with
    child.stdin?.write("off\n");
    await lines.next(); // the child counts from here
    await collector.switchOff();
    await new Promise((r) => setTimeout(r, outageModelMs * timeScale));
    child.stdin?.write("end\n");
    const result = await lines.next();
    return JSON.parse(String(result.value)) as CaseSample;
  } finally {
    child.kill();
    await collector.close();
  }
}

interface CaseRow {
  name: CaseName;
  rounds: Array<{
    p99Ms: number;
    maxMs: number;
    slowLogins: number;
    attempts: number;
    slotMs: number;
    share: number;
    baseP99Ms: number;
  }>;
}

export async function runFieldBench(
  options: FieldBenchOptions,
): Promise<{ rows: CaseRow[]; markdown: string }> {
  const rounds = options.quick ? 1 : 3;
  const directory = await LiveListener.listen();
  const rows: CaseRow[] = cases.map((name) => ({ name, rounds: [] }));
  try {
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < cases.length; k++) {
        const i = (k + round) % cases.length; // rotated: no case always first or last
        const row = rows[i] as CaseRow;
        const s = await runCase(row.name, directory.port);
        const baseP99Ms = percentile(s.before, 99);
        row.rounds.push({
          p99Ms: percentile(s.during, 99),
          maxMs: Math.max(...s.during),
          // A login that waited: more than 5 ms over this process's own healthy p99.
          slowLogins: s.during.filter((ms) => ms > baseP99Ms + 5).length,
          attempts: s.agentAttempts,
          slotMs: s.agentSlotMs,
          share: s.agentSlotMs / s.outageMs,
          baseP99Ms,
        });
      }
    }
  } finally {
    await directory.close();
  }
  return { rows, markdown: markdown(rows, rounds) };
}

function markdown(rows: CaseRow[], rounds: number): string {
  const f = (n: number) => n.toFixed(1);
  const med = (xs: number[]) => percentile(xs, 50);
  const baseline = rows.find((r) => r.name === "no agent");
  const lines = rows.map((r) => {
    const p99 = r.rounds.map((x) => x.p99Ms);
    const ratio = r.rounds.map((x, j) => x.p99Ms / ((baseline?.rounds[j]?.p99Ms ?? x.p99Ms) || 1));
    return `| ${r.name} | ${f(med(r.rounds.map((x) => x.baseP99Ms)))} | ${f(med(p99))} (${f(Math.min(...p99))}–${f(Math.max(...p99))}) | ${f(med(ratio))}× (${f(Math.min(...ratio))}–${f(Math.max(...ratio))}) | ${f(med(r.rounds.map((x) => x.maxMs)))} | ${med(r.rounds.map((x) => x.slowLogins))} | ${med(r.rounds.map((x) => x.attempts))} | ${f(med(r.rounds.map((x) => x.slotMs)))} (${f(100 * med(r.rounds.map((x) => x.share)))} %, max ${f(100 * Math.max(...r.rounds.map((x) => x.share)))} %) |`;
  });
  return [
    `Field case: the agent is connected when the collector's host is switched off (connections closed, TCP and UDP echo ports silent); ${outageModelMs / 1000} s of outage under the \`incident\` profile at time scale ${timeScale} (${(outageModelMs * timeScale) / 1000} s real; Windows' 21 s attempt lasts ${21_000 * timeScale} ms). Each case is its own process (the client, and logins = fresh connects to a live directory every ${loginEveryMs} ms); ${rounds} round(s), cases rotated each round; medians over rounds, (min–max). "ratio" = the case's outage p99 / the no-agent case's in the same round. "slow" = logins more than 5 ms over the process's own healthy p99. Attempts and slot time: the agent's TCP attempts to the collector during the outage, and how long they held the process's one connect slot (share of the outage as the process measured it, from the switch-off to the end).`,
    "",
    "| case | healthy p99 ms | outage p99 ms | p99 ratio vs no agent | outage max ms | slow logins | agent TCP attempts | agent slot ms (share) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...lines,
  ].join("\n");
}

if (process.argv[2] === "--child") {
  await runChild(JSON.parse(process.argv[3] ?? "{}") as ChildConfig);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { markdown: md } = await runFieldBench({ quick: process.argv.includes("--quick") });
  console.log(md);
}

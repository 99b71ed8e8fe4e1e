import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import { readlinkSync } from "node:fs";
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
import { guardChannelNames } from "../src/guard/channels.js";
import { ReconnectingLink } from "../src/guard/link.js";
import { connectLogin } from "../src/lab/logins.js";
import { percentile } from "../src/stats.js";
import { EchoServer } from "../src/targets/echo.js";
import { LiveListener } from "../src/targets/live.js";
import { SilentUdpPort } from "../src/targets/silent-udp.js";
import { Tarpit } from "../src/targets/tarpit.js";

/**
 * The field case, measured: an agent connected to its collector when the
 * collector's host disappears. The bench runs in a network namespace it
 * creates, where the switch-off is an iptables DROP of everything to and
 * from the collector's ports: new SYNs and echoes go unanswered and
 * established connections stall, as when a host is switched off. Without
 * namespaces (not root, no `ip`), it falls back to closing the collector and
 * putting tarpits on its ports (FIN/RST first: kinder than the field). Each
 * client runs in its own process under the `incident` emulation while that
 * process's own logins (fresh connects to a live directory) are timed; one
 * round runs every case once, in rotated order, so the cases share the
 * machine's noise.
 */
export interface FieldBenchOptions {
  quick: boolean;
}

const cases = [
  "no agent",
  "naive http.Agent",
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
// An OTLP exporter's default request timeout (10 s), scaled like the rest.
const requestTimeoutMs = 10_000 * timeScale;
const slotWindowMs = 60_000 * timeScale;
const maxSlotShare = 0.05;
const netnsEnv = "SYNLIMIT_FIELD_NETNS";

type OutageKind = "netns" | "tarpit";

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
  /** The agent's slot holds during the outage, ms from its start (clipped to it). */
  holds: Array<{ start: number; end: number }>;
  /** Largest guard deadline (ms, whole run) and lateness past a deadline (ms, outage). */
  maxDeadlineMs: number;
  maxLateMs: number;
  /** ReconnectingLink: real ms from the switch-off to the link's first `disconnected` (null: never). */
  linkDetectedMs?: number | null;
  /** ReconnectingLink: records put back after the dead connection, and records dropped. */
  linkRequeued?: number;
  linkDropped?: number;
}

// ---- child: one client, under the incident emulation -----------------------

async function runChild(config: ChildConfig): Promise<void> {
  install({ profile: "incident", timeScale });
  const collectorPorts = new Set([config.collectorHttpPort, config.collectorTcpPort]);
  let outage = false;
  let outageStarted = 0;
  let agentAttempts = 0;
  let agentSlotMs = 0;
  let maxDeadlineMs = 0;
  let maxLateMs = 0;
  let ended = false;
  const holds: Array<{ start: number; end: number }> = [];
  // Slots held by the agent right now (emulation attempt id → start); the
  // emulation's clock is performance.now(), as is outageStarted.
  const open = new Map<number, number>();
  const onStart = (m: unknown) => {
    const e = m as { port: number; id: number; at: number };
    if (!collectorPorts.has(e.port) || ended) return;
    open.set(e.id, e.at);
    if (outage) agentAttempts++;
  };
  const hold = (startAt: number, endAt: number) => {
    const start = Math.max(0, startAt - outageStarted);
    const end = endAt - outageStarted;
    if (end > start) holds.push({ start, end });
  };
  const onEnd = (m: unknown) => {
    const e = m as { port: number; id: number; at: number };
    const startAt = open.get(e.id);
    if (startAt === undefined || ended) return;
    open.delete(e.id);
    if (outage) hold(startAt, e.at);
  };
  diagnostics.subscribe(channelNames.start, onStart);
  for (const c of ["connected", "failed", "timeout", "cancelled"] as const)
    diagnostics.subscribe(channelNames[c], onEnd);
  diagnostics.subscribe(guardChannelNames.connectStart, (m) => {
    // Over the whole run: an attempt that began just before the switch-off holds into the outage.
    const e = m as { deadlineMs: number };
    maxDeadlineMs = Math.max(maxDeadlineMs, e.deadlineMs);
  });
  diagnostics.subscribe(guardChannelNames.connectEnd, (m) => {
    const e = m as { lateMs?: number };
    if (outage) maxLateMs = Math.max(maxLateMs, e.lateMs ?? 0);
  });

  const echo = config.name.endsWith("+ echo") ? { udpEchoPort: config.echoPort } : undefined;
  const guard = { budget: "bench-field", ...(echo ? { preflight: echo } : {}) };
  const base = config.name.replace(" + echo", "");
  let stop: () => Promise<void> = async () => {};
  let healthy: Promise<unknown> = Promise.resolve();
  let linkReport: () => Partial<CaseSample> = () => ({});
  if (base === "naive http.Agent" || base === "GuardedAgent") {
    // The same exporter-like client; only its agent differs.
    const agent =
      base === "GuardedAgent"
        ? new GuardedAgent(guard, { keepAlive: true })
        : new http.Agent({ keepAlive: true });
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
        req.setTimeout(requestTimeoutMs, () => req.destroy());
        req.end("span");
      });
    healthy = post();
    const timer = setInterval(post, sendEveryMs);
    stop = async () => {
      clearInterval(timer);
      agent.destroy();
    };
  } else if (base === "guardedConnect") {
    const dispatcher = new UndiciAgent({
      connect: guardedConnect(guard),
      headersTimeout: requestTimeoutMs,
      bodyTimeout: requestTimeoutMs,
    });
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
    let detectedMs: number | null = null;
    link.on("disconnected", () => {
      if (outage && detectedMs === null) detectedMs = performance.now() - outageStarted;
    });
    linkReport = () => {
      const stats = link.stats();
      return {
        linkDetectedMs: detectedMs,
        linkRequeued: stats.requeued,
        linkDropped: stats.dropped,
      };
    };
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
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line === "off") {
      outage = true;
      outageStarted = performance.now();
      process.stdout.write("off\n");
    }
    if (line === "end") break;
  }
  const outageEnd = performance.now();
  const outageMs = outageEnd - outageStarted;
  ended = true;
  // Slots still held at the end count up to it.
  for (const startAt of open.values()) hold(startAt, outageEnd);
  agentSlotMs = holds.reduce((sum, h) => sum + h.end - h.start, 0);
  running = false;
  await loop;
  const linkSample = linkReport();
  await stop();
  const sample: CaseSample = {
    name: config.name,
    before,
    during,
    agentAttempts,
    agentSlotMs,
    outageMs,
    holds,
    maxDeadlineMs,
    maxLateMs,
    ...linkSample,
  };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
  process.exit(0);
}

// ---- parent: peers, switch-off, rounds --------------------------------------

interface Collector {
  httpPort: number;
  tcpPort: number;
  echoPort: number;
  switchOff(): Promise<void>;
  close(): Promise<void>;
}

/** The collector's servers; how they are switched off is the subclass's. */
class CollectorServers {
  readonly http = http.createServer((req, res) => {
    req.resume().once("end", () => res.end("{}"));
  });
  readonly sinkSockets = new Set<net.Socket>();
  readonly sink = net.createServer((s) => {
    this.sinkSockets.add(s);
    s.once("close", () => this.sinkSockets.delete(s));
    s.on("error", () => {});
    s.resume();
  });
  echo: EchoServer | null = null;
  httpPort = 0;
  tcpPort = 0;
  echoPort = 0;

  async start(): Promise<this> {
    this.http.listen(0, "127.0.0.1");
    this.sink.listen(0, "127.0.0.1");
    await Promise.all([once(this.http, "listening"), once(this.sink, "listening")]);
    this.httpPort = (this.http.address() as net.AddressInfo).port;
    this.tcpPort = (this.sink.address() as net.AddressInfo).port;
    this.echo = await EchoServer.listen();
    this.echoPort = this.echo.udpPort;
    return this;
  }

  /** Ends every connection and listener (close() alone would wait for the connections). */
  async stopServing(): Promise<void> {
    this.http.close();
    this.sink.close();
    this.http.closeAllConnections();
    for (const s of this.sinkSockets) s.destroy();
    await this.echo?.close();
    this.echo = null;
  }
}

/**
 * The field's switch-off, inside the bench's own network namespace: DROP
 * every packet to or from the collector's ports on arrival (INPUT: a DROP in
 * OUTPUT would fail the sender's send() with EPERM, which no switched-off
 * host causes). The servers keep running behind the rule, so established
 * connections stall instead of closing.
 */
class SilencedCollector extends CollectorServers implements Collector {
  #rules: string[][] = [];

  async switchOff(): Promise<void> {
    assertOwnNamespace();
    const ports: Array<["tcp" | "udp", number]> = [
      ["tcp", this.httpPort],
      ["tcp", this.tcpPort],
      ["udp", this.echoPort],
    ];
    for (const [proto, port] of ports) {
      for (const side of ["--dport", "--sport"]) {
        const rule = ["INPUT", "-p", proto, side, String(port), "-j", "DROP"];
        execFileSync("iptables", ["-w", "-A", ...rule]);
        this.#rules.push(rule);
      }
    }
  }

  async close(): Promise<void> {
    await this.stopServing();
    for (const rule of this.#rules.splice(0)) execFileSync("iptables", ["-w", "-D", ...rule]);
  }
}

/** Without namespaces: close the collector, then tarpits on its ports (FIN/RST first). */
class TarpittedCollector extends CollectorServers implements Collector {
  #silent: Array<{ close(): Promise<void> }> = [];

  async switchOff(): Promise<void> {
    // Silent listeners first (a tarpit fills its own backlog before it
    // resolves), so no reconnect can slip into an accepting port.
    this.http.close();
    this.sink.close();
    await this.echo?.close();
    this.echo = null;
    this.#silent = await Promise.all([
      Tarpit.listen({ port: this.httpPort }),
      Tarpit.listen({ port: this.tcpPort }),
      SilentUdpPort.listen({ port: this.echoPort }),
    ]);
    this.http.closeAllConnections();
    for (const s of this.sinkSockets) s.destroy();
  }

  async close(): Promise<void> {
    await this.stopServing();
    await Promise.all(this.#silent.map((s) => s.close()));
  }
}

/** iptables is only ever run in a namespace this bench created, never in the host's. */
function assertOwnNamespace(): void {
  const own = readlinkSync("/proc/self/ns/net");
  const outer = process.env[`${netnsEnv}_OUTER`];
  if (!process.env[netnsEnv] || !outer || own === outer) {
    throw new Error("guard-field: refusing to touch iptables outside the bench's own namespace");
  }
}

async function runCase(
  name: CaseName,
  directoryPort: number,
  kind: OutageKind,
): Promise<CaseSample> {
  const collector: Collector = await (kind === "netns"
    ? new SilencedCollector()
    : new TarpittedCollector()
  ).start();
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
    // Switched off first, then the child counts: its outage is the silence itself.
    await collector.switchOff();
    child.stdin?.write("off\n");
    await lines.next();
    await new Promise((r) => setTimeout(r, outageModelMs * timeScale));
    child.stdin?.write("end\n");
    const result = await lines.next();
    return JSON.parse(String(result.value)) as CaseSample;
  } finally {
    child.kill();
    await collector.close();
  }
}

/** The most slot time the holds take in any window of `windowMs`, anywhere in the outage. */
export function maxWindowHeldMs(
  holds: ReadonlyArray<{ start: number; end: number }>,
  windowMs: number,
): number {
  let most = 0;
  for (const s of [...holds.map((h) => h.start), ...holds.map((h) => h.end - windowMs)]) {
    let sum = 0;
    for (const h of holds) sum += Math.max(0, Math.min(h.end, s + windowMs) - Math.max(h.start, s));
    most = Math.max(most, sum);
  }
  return most;
}

interface RoundResult {
  p99Ms: number;
  maxMs: number;
  slowLogins: number;
  attempts: number;
  slotMs: number;
  share: number;
  /** Largest share of any slot window (60 s scaled) held by the agent's attempts. */
  windowShare: number;
  maxDeadlineMs: number;
  maxLateMs: number;
  baseP99Ms: number;
  linkDetectedMs?: number | null;
  linkRequeued?: number;
  linkDropped?: number;
}

interface CaseRow {
  name: CaseName;
  rounds: RoundResult[];
}

export interface FieldBenchResult {
  rows: CaseRow[];
  markdown: string;
  outage: OutageKind;
}

/** A namespace of the bench's own, or why there is none. */
function createNamespace(): { name: string } | { reason: string } {
  if (process.platform !== "linux") return { reason: "not Linux" };
  const name = `synlimit-field-${process.pid}`;
  try {
    execFileSync("ip", ["netns", "add", name], { stdio: "pipe" });
  } catch (error) {
    const text = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    return { reason: text.split("\n")[0] ?? "ip netns add failed" };
  }
  try {
    execFileSync("ip", ["netns", "exec", name, "ip", "link", "set", "lo", "up"], { stdio: "pipe" });
    execFileSync("ip", ["netns", "exec", name, "iptables", "-w", "-L", "INPUT"], { stdio: "pipe" });
  } catch (error) {
    execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
    return { reason: `iptables unusable in a namespace: ${String(error).split("\n")[0]}` };
  }
  return { name };
}

export async function runFieldBench(options: FieldBenchOptions): Promise<FieldBenchResult> {
  if (process.env[netnsEnv]) return runRounds(options, "netns");
  const ns = createNamespace();
  if ("reason" in ns) {
    console.error(
      `guard-field: no network namespace (${ns.reason}); falling back to close + tarpit, where established connections end with FIN/RST (kinder than the field)`,
    );
    return runRounds(options, "tarpit");
  }
  try {
    const script = fileURLToPath(import.meta.url);
    const args = ["netns", "exec", ns.name, process.execPath, script, "--netns-run"];
    if (options.quick) args.push("--quick");
    const child = spawn("ip", args, {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        [netnsEnv]: ns.name,
        [`${netnsEnv}_OUTER`]: readlinkSync("/proc/self/ns/net"),
      },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const [code] = (await once(child, "exit")) as [number | null];
    if (code !== 0) throw new Error(`guard-field: the run in namespace ${ns.name} exited ${code}`);
    return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as FieldBenchResult;
  } finally {
    execFileSync("ip", ["netns", "del", ns.name], { stdio: "ignore" });
  }
}

async function runRounds(
  options: FieldBenchOptions,
  outage: OutageKind,
): Promise<FieldBenchResult> {
  const rounds = options.quick ? 1 : 3;
  const directory = await LiveListener.listen();
  const rows: CaseRow[] = cases.map((name) => ({ name, rounds: [] }));
  try {
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < cases.length; k++) {
        const i = (k + round) % cases.length; // rotated: no case always first or last
        const row = rows[i] as CaseRow;
        const s = await runCase(row.name, directory.port, outage);
        const baseP99Ms = percentile(s.before, 99);
        row.rounds.push({
          p99Ms: percentile(s.during, 99),
          maxMs: Math.max(...s.during),
          // A login that waited: more than 5 ms over this process's own healthy p99.
          slowLogins: s.during.filter((ms) => ms > baseP99Ms + 5).length,
          attempts: s.agentAttempts,
          slotMs: s.agentSlotMs,
          share: s.agentSlotMs / s.outageMs,
          windowShare: maxWindowHeldMs(s.holds, slotWindowMs) / slotWindowMs,
          maxDeadlineMs: s.maxDeadlineMs,
          maxLateMs: s.maxLateMs,
          baseP99Ms,
          ...(s.linkDetectedMs !== undefined
            ? {
                linkDetectedMs: s.linkDetectedMs,
                linkRequeued: s.linkRequeued ?? 0,
                linkDropped: s.linkDropped ?? 0,
              }
            : {}),
        });
      }
    }
  } finally {
    await directory.close();
  }
  return { rows, markdown: markdown(rows, rounds, outage), outage };
}

function markdown(rows: CaseRow[], rounds: number, outage: OutageKind): string {
  const f = (n: number) => n.toFixed(1);
  const pct = (n: number) => `${(100 * n).toFixed(1)} %`;
  const med = (xs: number[]) => percentile(xs, 50);
  const baseline = rows.find((r) => r.name === "no agent");
  const lines = rows.map((r) => {
    const p99 = r.rounds.map((x) => x.p99Ms);
    const ratio = r.rounds.map((x, j) => x.p99Ms / ((baseline?.rounds[j]?.p99Ms ?? x.p99Ms) || 1));
    const windows = r.rounds.map((x) => x.windowShare);
    return `| ${r.name} | ${f(med(r.rounds.map((x) => x.baseP99Ms)))} | ${f(med(p99))} (${f(Math.min(...p99))}–${f(Math.max(...p99))}) | ${f(med(ratio))}× (${f(Math.min(...ratio))}–${f(Math.max(...ratio))}) | ${f(med(r.rounds.map((x) => x.maxMs)))} | ${med(r.rounds.map((x) => x.slowLogins))} | ${med(r.rounds.map((x) => x.attempts))} | ${f(med(r.rounds.map((x) => x.slotMs)))} (${pct(med(r.rounds.map((x) => x.share)))}) | ${pct(med(windows))} (max ${pct(Math.max(...windows))}) |`;
  });
  const perRound = rows.flatMap((r) =>
    r.rounds.map(
      (x, j) =>
        `| ${r.name} | ${j + 1} | ${f(x.p99Ms)} | ${f(baseline?.rounds[j]?.p99Ms ?? Number.NaN)} | ${f(x.maxMs)} | ${x.attempts} | ${f(x.slotMs)} | ${pct(x.windowShare)} | ${f(x.maxDeadlineMs)} | ${f(x.maxLateMs)} |`,
    ),
  );
  const how =
    outage === "netns"
      ? "the bench's own network namespace; at the switch-off an iptables DROP of every packet to and from the collector's TCP ports and UDP echo port: new SYNs and echoes go unanswered, established connections stall (no FIN, no RST)"
      : "no network namespace was available, so the collector's connections were closed (FIN/RST) and tarpits put on its ports: kinder than the field";
  return [
    `Field case: the agent is connected when the collector's host disappears — ${how}. ${outageModelMs / 1000} s of outage under the \`incident\` profile at time scale ${timeScale} (${(outageModelMs * timeScale) / 1000} s real; Windows' 21 s attempt lasts ${21_000 * timeScale} ms; the 60 s slot window ${slotWindowMs} ms). Each case is its own process (the client, and logins = fresh connects to a live directory every ${loginEveryMs} ms); the HTTP clients post every ${sendEveryMs} ms with an OTLP exporter's 10 s request timeout (scaled); ${rounds} round(s), cases rotated each round; medians over rounds, (min–max). "ratio" = the case's outage p99 / the no-agent case's in the same round. "slow" = logins more than 5 ms over the process's own healthy p99. Attempts and slot time: the agent's TCP attempts to the collector during the outage and how long they held the process's one connect slot (the emulation's own count), as a share of the outage, and the largest share of any 60 s (scaled) window — the guarantee's measure.`,
    "",
    "| case | healthy p99 ms | outage p99 ms | p99 ratio vs no agent | outage max ms | slow logins | agent TCP attempts | agent slot ms (share of outage) | slot share of any 60 s window |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...lines,
    "",
    "Per round (deadline and lateness: the guard's largest deadline and largest lateness past a deadline during the outage, real ms):",
    "",
    "| case | round | outage p99 ms | no-agent p99 ms | outage max ms | attempts | slot ms | max 60 s window share | max deadline ms | max late ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...perRound,
    "",
    ...linkRows(rows),
    ...guarantees(rows, baseline),
  ].join("\n");
}

/** When each ReconnectingLink found its connection dead, and what became of the records in it. */
function linkRows(rows: CaseRow[]): string[] {
  const links = rows.filter((r) => r.name.startsWith("ReconnectingLink"));
  if (links.length === 0) return [];
  const ms = (x: number | null | undefined) =>
    x === null || x === undefined
      ? "never"
      : `${x.toFixed(0)} (${(x / timeScale / 1000).toFixed(1)} s model)`;
  return [
    "ReconnectingLink: real ms from the switch-off to the link's `disconnected` (its own verdict on the silent connection; the model time at the bench's scale), records put back in the queue from the dead connection, records dropped:",
    "",
    "| case | round | dead connection found after ms | records put back | records dropped |",
    "| --- | --- | --- | --- | --- |",
    ...links.flatMap((r) =>
      r.rounds.map(
        (x, j) =>
          `| ${r.name} | ${j + 1} | ${ms(x.linkDetectedMs)} | ${x.linkRequeued ?? 0} | ${x.linkDropped ?? 0} |`,
      ),
    ),
    "",
  ];
}

/** Whether each guarantee of docs/guard.md held, round by round. */
function guarantees(rows: CaseRow[], baseline: CaseRow | undefined): string[] {
  const out = ["| guarantee | case | held in every round |", "| --- | --- | --- |"];
  const yes = (ok: boolean[]) =>
    ok.every(Boolean)
      ? "yes"
      : `**no** (rounds ${ok
          .map((o, i) => (o ? "" : i + 1))
          .filter(Boolean)
          .join(", ")})`;
  for (const r of rows) {
    if (r.name === "no agent" || r.name.startsWith("naive")) continue;
    const base = (j: number) => baseline?.rounds[j]?.p99Ms ?? Number.NaN;
    if (r.name.endsWith("+ echo")) {
      out.push(
        `| zero TCP attempts while the collector is down | ${r.name} | ${yes(r.rounds.map((x) => x.attempts === 0))} |`,
      );
      out.push(
        `| outage p99 ≤ no-agent p99 + 5 ms | ${r.name} | ${yes(r.rounds.map((x, j) => x.p99Ms <= base(j) + 5))} |`,
      );
      out.push(
        `| outage p99 ≤ own healthy p99 + 5 ms | ${r.name} | ${yes(r.rounds.map((x) => x.p99Ms <= x.baseP99Ms + 5))} |`,
      );
      out.push(
        `| longest login of the outage ≤ 250 ms | ${r.name} | ${yes(r.rounds.map((x) => x.maxMs <= 250))} |`,
      );
    } else {
      out.push(
        `| ≤ ${100 * maxSlotShare} % of any 60 s window | ${r.name} | ${yes(r.rounds.map((x) => x.windowShare <= maxSlotShare))} |`,
      );
      out.push(
        `| outage p99 ≤ no-agent p99 + one deadline | ${r.name} | ${yes(r.rounds.map((x, j) => x.p99Ms <= base(j) + x.maxDeadlineMs))} |`,
      );
      out.push(
        `| outage p99 ≤ own healthy p99 + one deadline | ${r.name} | ${yes(r.rounds.map((x) => x.p99Ms <= x.baseP99Ms + x.maxDeadlineMs))} |`,
      );
    }
  }
  return out;
}

if (process.argv[2] === "--child") {
  await runChild(JSON.parse(process.argv[3] ?? "{}") as ChildConfig);
} else if (process.argv.includes("--netns-run")) {
  // Inside the namespace runFieldBench made: one JSON line for it.
  const result = await runFieldBench({ quick: process.argv.includes("--quick") });
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { markdown: md } = await runFieldBench({ quick: process.argv.includes("--quick") });
  console.log(md);
}

import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { defaults } from "../defaults.js";
import { invalidOption, SynlimitError } from "../errors.js";
import { SilentUdpPort } from "../targets/silent-udp.js";
import { Tarpit } from "../targets/tarpit.js";
import type { AppConfig, AppMessage, LabMessage, RawAttempt } from "./app/config.js";
import { labDefaults } from "./defaults.js";
import { LoadGenerator } from "./load.js";
import { redact } from "./preflight.js";
import { scenarios as allScenarios, type Scenario } from "./scenarios.js";
import { summarizeScenario } from "./summarize.js";
import { writeLabTrace } from "./trace.js";
import type {
  AgentModel,
  LabEvent,
  LabResult,
  Operation,
  ScenarioName,
  ScenarioResult,
} from "./types.js";
import { Upstream } from "./upstream.js";

/** The directory and database the app talks to: embedded, or real servers. */
export interface LabServices {
  ldap: { url: string; bindDN: string; password: string };
  postgresUrl: string;
}

export interface LabOptions {
  services: LabServices;
  scenarios?: readonly ScenarioName[];
  /** 0.02 runs Windows' 21 s attempt in 420 ms; 1 is real time. */
  timeScale?: number;
  /** The measured window of each scenario, field milliseconds (wall = this × timeScale). */
  fieldWindowMs?: number;
  /** Field milliseconds between operations of each kind (open loop). */
  fieldIntervalMs?: Record<Operation, number>;
  /** The naive agent: reconnect loops and retry pause (field milliseconds). */
  agent?: Partial<AgentModel>;
  /**
   * Write each scenario's connect attempts here as DIR/SCENARIO.trace, in the
   * `record` format in field milliseconds (docs/trace.md), for `synlimit simulate`.
   */
  traceDir?: string;
  /** Replace a scenario's agent or API pools: how the checks are seen failing on a broken setup. */
  overrides?: Partial<Record<ScenarioName, Partial<Pick<Scenario, "agent" | "apiPools">>>>;
  onProgress?: (event: {
    scenario: ScenarioName;
    index: number;
    total: number;
    phase: string;
  }) => void;
}

export { labDefaults } from "./defaults.js";

const appMain = fileURLToPath(new URL("./app/main.js", import.meta.url));

interface Plan {
  timeScale: number;
  windowMs: number;
  intervalMs: Record<Operation, number>;
  agentModel: AgentModel;
}

/** Runs the scenarios one after another, each in a fresh app process. */
export async function runLab(options: LabOptions): Promise<LabResult> {
  const timeScale = options.timeScale ?? labDefaults.timeScale;
  if (!(Number.isFinite(timeScale) && timeScale > 0))
    throw invalidOption("timeScale", "a positive number", timeScale);
  const fieldWindowMs = options.fieldWindowMs ?? labDefaults.fieldWindowMs;
  if (!(Number.isFinite(fieldWindowMs) && fieldWindowMs > 0))
    throw invalidOption("fieldWindowMs", "a positive number", fieldWindowMs);
  const fieldIntervalMs = options.fieldIntervalMs ?? labDefaults.fieldIntervalMs;
  for (const [op, v] of Object.entries(fieldIntervalMs)) {
    if (!(Number.isFinite(v) && v > 0))
      throw invalidOption(`fieldIntervalMs.${op}`, "a positive number", v);
  }
  const agentModel: AgentModel = { ...labDefaults.agent, ...options.agent };
  if (
    !(Number.isInteger(agentModel.channels) && agentModel.channels >= 1 && agentModel.channels <= 8)
  )
    throw invalidOption("agent.channels", "an integer from 1 to 8", agentModel.channels);
  if (!(Number.isFinite(agentModel.retryPauseMs) && agentModel.retryPauseMs >= 0))
    throw invalidOption("agent.retryPauseMs", "a non-negative number", agentModel.retryPauseMs);
  const plan: Plan = {
    timeScale,
    windowMs: fieldWindowMs * timeScale,
    intervalMs: Object.fromEntries(
      Object.entries(fieldIntervalMs).map(([op, v]) => [op, v * timeScale]),
    ) as Record<Operation, number>,
    agentModel,
  };
  const chosen = (options.scenarios ?? allScenarios.map((s) => s.name)).map((name) => {
    const found = allScenarios.find((s) => s.name === name);
    if (!found)
      throw invalidOption(
        "scenarios",
        `names from ${allScenarios.map((s) => s.name).join(", ")}`,
        name,
      );
    return { ...found, ...options.overrides?.[name] };
  });
  if (options.traceDir !== undefined) await mkdir(options.traceDir, { recursive: true });
  const results: ScenarioResult[] = [];
  const startedAt = new Date().toISOString();
  for (const [index, scenario] of chosen.entries()) {
    const progress = (phase: string) =>
      options.onProgress?.({ scenario: scenario.name, index, total: chosen.length, phase });
    results.push(await runScenario(scenario, options, plan, progress));
  }
  const cpus = os.cpus();
  return {
    version: 2,
    startedAt,
    timeScale,
    attemptTimeoutMs: defaults.windowsFailAtMs * timeScale,
    agentModel,
    fieldIntervalMs,
    services: {
      ldap: redact(options.services.ldap.url),
      postgres: redact(options.services.postgresUrl),
    },
    machine: {
      cpus: cpus[0]?.model ?? "unknown",
      cores: cpus.length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      os: `${os.type()} ${os.release()}`,
    },
    scenarios: results,
  };
}

async function runScenario(
  scenario: Scenario,
  options: LabOptions,
  plan: Plan,
  progress: (phase: string) => void,
): Promise<ScenarioResult> {
  const { timeScale, windowMs } = plan;
  progress("starting services");
  const upstreams = await Promise.all(
    Array.from({ length: labDefaults.upstreams }, () => new Upstream().listen()),
  );
  const collector = await Tarpit.listen();
  const silentEcho = await SilentUdpPort.listen();
  const events: LabEvent[] = [];
  let app: ChildProcess | null = null;
  const traceFile =
    options.traceDir === undefined ? null : path.join(options.traceDir, `${scenario.name}.trace`);
  const rawTraceFile = traceFile && `${traceFile}.recording`;
  try {
    const config: AppConfig = {
      profile: scenario.profile,
      timeScale,
      ldap: options.services.ldap,
      postgresUrl: options.services.postgresUrl,
      upstreams: upstreams.map((u) => ({ host: "127.0.0.1", port: u.port })),
      collector: { host: "127.0.0.1", port: collector.port, udpEchoPort: silentEcho.port },
      agent: scenario.agent,
      agentModel: plan.agentModel,
      apiPools: scenario.apiPools,
      dbPoolSize: labDefaults.dbPoolSize,
      apiConnectionsPerUpstream: labDefaults.apiConnectionsPerUpstream,
      ...(rawTraceFile ? { recordFile: rawTraceFile } : {}),
    };
    progress("starting the app");
    const child = fork(appMain, [JSON.stringify(config)], {
      stdio: ["ignore", "inherit", "pipe", "ipc"],
      execArgv: [],
    });
    app = child;
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const ready = await nextMessage(child, "ready", () => stderr);
    const epochAtT0 = () => performance.timeOrigin + performance.now();

    const load = new LoadGenerator({
      appPort: ready.port,
      intervalMs: plan.intervalMs,
      upstreams: upstreams.length,
    });
    await load.warmUp();
    if (scenario.agent !== "none") {
      child.send({ type: "start-agent" } satisfies LabMessage);
      await nextMessage(child, "agent-started", () => stderr);
    }
    progress("measuring");
    const t0 = performance.now();
    const t0Epoch = epochAtT0();
    load.start(t0);
    const timers: NodeJS.Timeout[] = [];
    let deadSince = Number.POSITIVE_INFINITY;
    const deadPorts = new Set<number>();
    if (scenario.upstreamsDie) {
      const { count, atFraction } = scenario.upstreamsDie;
      timers.push(
        setTimeout(() => {
          deadSince = performance.now() - t0;
          const dying = upstreams.slice(0, count);
          for (const u of dying) deadPorts.add(u.port);
          const detail = `${count} of ${upstreams.length} API upstreams died`;
          Promise.all(dying.map((u) => u.die())).then(
            () => events.push({ atMs: deadSince, kind: "upstreams-died", detail }),
            (error: Error) =>
              events.push({
                atMs: deadSince,
                kind: "upstreams-died",
                detail: `${detail} (partly: ${error.message})`,
              }),
          );
        }, windowMs * atFraction),
      );
    }
    if (scenario.flushAtFraction !== undefined) {
      timers.push(
        setTimeout(() => {
          events.push({
            atMs: performance.now() - t0,
            kind: "pools-flushed",
            detail: "every pool flushed at once (iisreset)",
          });
          child.send({ type: "flush-pools" } satisfies LabMessage);
        }, windowMs * scenario.flushAtFraction),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    load.stop();
    progress("draining");
    await load.drain(labDefaults.drainAttemptTimeouts * defaults.windowsFailAtMs * timeScale);
    load.closeOpenSamples(performance.now());
    for (const t of timers) clearTimeout(t);
    // Attempts still pending now end here, whenever they were queued.
    const stoppedAtMs = performance.now() - t0;

    const attemptsMessage = nextMessage(child, "attempts", () => stderr);
    child.send({ type: "stop" } satisfies LabMessage);
    const { records, recordStartedAt } = await attemptsMessage;
    await exited(child);
    app = null;
    const result = summarizeScenario({
      scenario,
      durationMs: windowMs,
      stoppedAtMs,
      samples: load.samples,
      records: records.map((r) => relative(r, t0Epoch)),
      events,
      roleOf: (r) => roleOf(r, config, deadPorts, deadSince),
    });
    if (traceFile && rawTraceFile && recordStartedAt !== null) {
      await writeLabTrace(rawTraceFile, traceFile, {
        recordOffsetMs: recordStartedAt - t0Epoch,
        timeline: result.timeline,
        timeScale,
      });
      result.trace = path.basename(traceFile);
    }
    return result;
  } finally {
    if (app) app.kill("SIGKILL");
    // A run that failed half-way leaves no half-written recording behind.
    if (rawTraceFile) await rm(rawTraceFile, { force: true });
    await Promise.all([...upstreams.map((u) => u.close()), collector.close(), silentEcho.close()]);
  }
}

/** Attempt times relative to the start of the measured window. */
function relative(r: RawAttempt, t0Epoch: number): RawAttempt {
  const rel = (t: number | null) => (t === null ? null : t - t0Epoch);
  return {
    ...r,
    queuedAt: r.queuedAt - t0Epoch,
    startedAt: rel(r.startedAt),
    endedAt: rel(r.endedAt),
  };
}

function roleOf(r: RawAttempt, config: AppConfig, deadPorts: Set<number>, deadSince: number) {
  if (r.port === config.collector.port) return "agent" as const;
  if (r.port === portOf(config.ldap.url)) return "login" as const;
  if (r.port === portOf(config.postgresUrl)) return "db" as const;
  if (config.upstreams.some((u) => u.port === r.port)) {
    return deadPorts.has(r.port) && r.queuedAt >= deadSince
      ? ("api-dead" as const)
      : ("api" as const);
  }
  return "other" as const;
}

function portOf(url: string): number {
  try {
    const u = new URL(url);
    return Number(u.port || (u.protocol === "ldap:" ? 389 : 5432));
  } catch {
    return -1;
  }
}

function nextMessage<T extends AppMessage["type"]>(
  child: ChildProcess,
  type: T,
  stderr: () => string,
): Promise<Extract<AppMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: AppMessage) => {
      if (m.type !== type) return;
      cleanup();
      resolve(m as Extract<AppMessage, { type: T }>);
    };
    const onExit = (code: number | null) => {
      cleanup();
      const why = childErrorLine(stderr());
      reject(
        new SynlimitError(
          "SYNLIMIT_CHILD_FAILED",
          `the lab's app exited (${code}) before '${type}': ${why || "no output"}`,
        ),
      );
    };
    const cleanup = () => {
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.once("exit", onExit);
  });
}

/**
 * The line of a dead child's stderr that says why: the thrown error's own
 * "Error: …" / "TypeError [CODE]: …" line, not the source line Node quotes
 * above it (which may start with "Error.captureStackTrace(err)"), a stack
 * frame or Node's version banner. Else the last three lines.
 */
export function childErrorLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  const own = lines.find((l) => /^\w*(?:Error|Exception)(?: \[[\w-]+\])?: /.test(l));
  return own ?? lines.slice(-3).join(" | ");
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await once(child, "exit");
}

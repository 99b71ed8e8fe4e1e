/**
 * The lab's web app: one process, as the incident's w3wp.exe, with the
 * emulated limiter installed before anything connects. Logins bind to the
 * directory over a fresh TCP connection each (ldapts), DB calls use a pg
 * pool, API calls keep-alive undici pools; an agent keeps a link to its
 * collector. Driven over IPC by the lab (src/lab/run.ts).
 */
import diagnostics from "node:diagnostics_channel";
import http from "node:http";
import { performance } from "node:perf_hooks";
import { install } from "../../emulate/install.js";
import { profiles } from "../../emulate/profiles.js";
import { channelNames } from "../../gate/channels.js";
import type { AttemptEvent } from "../../gate/types.js";
import { Recorder } from "../../record/recorder.js";
import { type RunningAgent, startAgent } from "./agent.js";
import { Backends } from "./backends.js";
import type { AppConfig, AppMessage, LabMessage, RawAttempt } from "./config.js";

const config = JSON.parse(process.argv[2] ?? "{}") as AppConfig;
// The emulation's gate is named after its profile; the recorder follows that gate only.
// Under a profile without a limit (baseline) the trace is an unlimited one: no waitMs.
const recorder =
  config.profile && config.recordFile
    ? new Recorder({
        file: config.recordFile,
        gate: config.profile,
        limited: Number.isFinite(profiles[config.profile].options.maxInFlight),
      })
    : null;
if (config.profile) install({ profile: config.profile, timeScale: config.timeScale });

const send = (message: AppMessage) => process.send?.(message);
const epochNow = () => performance.timeOrigin + performance.now();

// Every attempt of this process, from the gate's events.
const attempts = new Map<number, RawAttempt>();
const track = (update: (a: RawAttempt, e: AttemptEvent) => void) => (message: unknown) => {
  const e = message as AttemptEvent;
  let a = attempts.get(e.id);
  if (!a) {
    a = {
      id: e.id,
      host: e.host,
      port: e.port,
      queuedAt: epochNow(),
      startedAt: null,
      endedAt: null,
      outcome: null,
    };
    attempts.set(e.id, a);
  }
  update(a, e);
};
const subscriptions: Array<[string, (m: unknown) => void]> = [
  [channelNames.queued, track(() => {})],
  [
    channelNames.start,
    track((a, e) => {
      a.startedAt = epochNow();
      a.queuedAt = a.startedAt - e.waitMs;
      a.synAtMs = e.synAtMs;
      a.giveUpMs = e.giveUpMs;
    }),
  ],
  ...(["connected", "failed", "timeout", "cancelled", "rejected"] as const).map(
    (channel): [string, (m: unknown) => void] => [
      channelNames[channel],
      track((a, e) => {
        a.endedAt = epochNow();
        a.outcome = e.state === "pending" || e.state === "queued" ? "cancelled" : e.state;
      }),
    ],
  ),
];
for (const [name, fn] of subscriptions) diagnostics.subscribe(name, fn);

const backends = new Backends(config);
await backends.warm();
let agent: RunningAgent | null = null;

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://app");
  const reply = (status: number, body: string) =>
    res.writeHead(status, { "content-type": "text/plain" }).end(body);
  const route =
    url.pathname === "/login"
      ? backends.login()
      : url.pathname === "/db"
        ? backends.query()
        : url.pathname === "/api"
          ? backends.callUpstream(Number(url.searchParams.get("u") ?? 0))
          : Promise.reject(new Error(`no route ${url.pathname}`));
  route.then(
    () => reply(200, "ok"),
    // The lab reports why an operation failed: the error's kind and first line.
    (error: Error) =>
      reply(502, `${error.name}: ${String(error.message).split("\n")[0]}`.slice(0, 200)),
  );
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  send({ type: "ready", port: (server.address() as { port: number }).port });
});

process.on("message", (message: LabMessage) => {
  if (message.type === "start-agent") {
    agent = startAgent(config);
    send({ type: "agent-started", at: epochNow() });
  } else if (message.type === "flush-pools") {
    backends.flush();
    send({ type: "flushed", at: epochNow() });
  } else if (message.type === "stop") {
    void stop();
  }
});

async function stop(): Promise<void> {
  await agent?.stop();
  // Attempts still open now are written as cancelled, as at a recorded program's exit.
  recorder?.close();
  send({
    type: "attempts",
    records: [...attempts.values()],
    recordStartedAt: recorder ? performance.timeOrigin + recorder.startedAt : null,
  });
  server.closeAllConnections();
  server.close();
  await backends.close();
  process.disconnect();
  // Pending attempts to dead upstreams may still hold sockets: leave now.
  process.exit(0);
}

import { once } from "node:events";
import { pathToFileURL } from "node:url";
import { install, uninstall } from "../src/emulate/install.js";
import { ReconnectingLink } from "../src/guard/link.js";
import { connectLogin, type LatencySummary, runLogins, summarize } from "../src/lab/logins.js";
import { NaiveAgent } from "../src/lab/naive-agent.js";
import { LiveListener } from "../src/targets/live.js";
import { SilentUdpPort } from "../src/targets/silent-udp.js";
import { Tarpit } from "../src/targets/tarpit.js";

export interface GuardBenchOptions {
  quick: boolean;
}

interface CaseResult {
  name: string;
  logins: LatencySummary;
  agentTcpAttempts: number;
}

// The incident's 21 s attempt runs as 420 ms: long enough to dwarf loopback
// noise, short enough that the naive case finishes in seconds.
const timeScale = 0.02;

/**
 * The incident, fixed, measured: login connect latency under the `incident`
 * limiter with no agent, with a naive agent retrying a dead collector, and
 * with the guard's ReconnectingLink doing the same — side by side, one run.
 */
export async function runGuardBench(
  options: GuardBenchOptions,
): Promise<{ cases: CaseResult[]; markdown: string }> {
  const fastLogins = options.quick ? 40 : 400;
  const slowLogins = options.quick ? 5 : 25; // each waits ~420 ms behind the naive agent
  const collector = await Tarpit.listen();
  const silentEcho = await SilentUdpPort.listen();
  const directory = await LiveListener.listen();
  const login = () => connectLogin("127.0.0.1", directory.port);
  const cases: CaseResult[] = [];
  try {
    for (const name of ["baseline", "naive agent", "guarded agent"] as const) {
      install({ profile: "incident", timeScale });
      let stop = async () => {};
      let agentTcpAttempts = () => 0;
      try {
        if (name === "naive agent") {
          const agent = new NaiveAgent("127.0.0.1", collector.port).start();
          stop = async () => agent.stop();
          agentTcpAttempts = () => agent.attempts;
        } else if (name === "guarded agent") {
          const link = new ReconnectingLink({
            host: "127.0.0.1",
            port: collector.port,
            udpEchoPort: silentEcho.port,
            guard: { budget: "bench-guarded" },
          });
          link.send("span\n");
          await once(silentEcho.socket, "message");
          stop = () => link.close();
          agentTcpAttempts = () => link.stats().connects;
        }
        await runLogins(login, 5, 0); // warm up
        const latencies = await runLogins(
          login,
          name === "naive agent" ? slowLogins : fastLogins,
          2,
        );
        cases.push({ name, logins: summarize(latencies), agentTcpAttempts: agentTcpAttempts() });
      } finally {
        await stop();
        uninstall();
      }
    }
  } finally {
    await Promise.all([collector.close(), silentEcho.close(), directory.close()]);
  }
  return { cases, markdown: markdown(cases) };
}

function markdown(cases: CaseResult[]): string {
  const ms = (n: number) => n.toFixed(2);
  const baseline = cases.find((c) => c.name === "baseline");
  const guarded = cases.find((c) => c.name === "guarded agent");
  const rows = cases.map(
    (c) =>
      `| ${c.name} | ${c.logins.count} | ${ms(c.logins.p50Ms)} | ${ms(c.logins.p95Ms)} | ${ms(c.logins.p99Ms)} | ${ms(c.logins.maxMs)} | ${c.name === "baseline" ? "—" : c.agentTcpAttempts} |`,
  );
  const verdict =
    baseline && guarded
      ? `Guarded p99 − baseline p99 = ${ms(guarded.logins.p99Ms - baseline.logins.p99Ms)} ms (target ≤ 5 ms): ${guarded.logins.p99Ms <= baseline.logins.p99Ms + 5 ? "met" : "NOT met"}.`
      : "";
  return [
    `Login = a fresh TCP connect to a live listener (as \`ADsOpenObject\` does), under the \`incident\` profile (1 attempt per process, FIFO, Windows timing at time scale ${timeScale}: a pending attempt lives ${21_000 * timeScale} ms). The collector is a tarpit; its UDP echo port is silent.`,
    "",
    "| case | logins | p50 ms | p95 ms | p99 ms | max ms | agent TCP attempts |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    verdict,
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { markdown: md } = await runGuardBench({ quick: process.argv.includes("--quick") });
  console.log(md);
}

import assert from "node:assert/strict";
import { once } from "node:events";
import { type TestContext, test } from "node:test";
import { install, uninstall } from "../../src/emulate/install.js";
import { ReconnectingLink } from "../../src/guard/link.js";
import { connectLogin, runLogins } from "../../src/lab/logins.js";
import { NaiveAgent } from "../../src/lab/naive-agent.js";
import { synSentOf } from "../../src/os/linux/tcp-table.js";
import { LiveListener } from "../../src/targets/live.js";
import { SilentUdpPort } from "../../src/targets/silent-udp.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";

// Windows' 21 s attempt, compressed to 210 ms.
const timeScale = 0.01;
const LOGINS = 6;

/** The incident's process: 1 attempt at a time, a dead collector, a live directory. */
async function incidentHost(t: TestContext) {
  const collector = await Tarpit.listen();
  t.after(() => collector.close());
  const silentEcho = await SilentUdpPort.listen();
  t.after(() => silentEcho.close());
  const directory = await LiveListener.listen();
  t.after(() => directory.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  install({ profile: "incident", timeScale });
  t.after(uninstall);
  const login = () => connectLogin("127.0.0.1", directory.port);
  const loginAttempts = (channel: "queued" | "start") =>
    recorder.of(channel).filter((e) => e.port === directory.port);
  return { collector, silentEcho, directory, recorder, login, loginAttempts };
}

test("baseline: no agent, no login waits", async (t) => {
  const host = await incidentHost(t);
  await runLogins(host.login, LOGINS, 5);
  assert.equal(host.loginAttempts("start").length, LOGINS);
  assert.equal(host.loginAttempts("queued").length, 0);
});

test("naive agent: every login queues behind the agent's pending attempt to the dead collector", async (t) => {
  const host = await incidentHost(t);
  const agent = new NaiveAgent("127.0.0.1", host.collector.port).start();
  t.after(() => agent.stop());
  await host.recorder.next("start", (e) => e.port === host.collector.port);
  const latencies = await runLogins(host.login, LOGINS, 5);
  agent.stop();
  const queued = host.loginAttempts("queued");
  assert.equal(queued.length, LOGINS, "every login waited for the agent");
  // Each login's SYN went out only when an agent attempt timed out.
  const timeouts = host.recorder.of("timeout").filter((e) => e.port === host.collector.port);
  for (const start of host.loginAttempts("start")) {
    assert.ok(
      timeouts.some((to) => to.at <= start.at && start.at - to.at < 50),
      "a login starts right after an agent attempt times out",
    );
  }
  assert.equal(latencies.length, LOGINS);
});

test("guarded agent (ReconnectingLink with echo preflight): no SYN_SENT to the dead collector, no login waits", async (t) => {
  const host = await incidentHost(t);
  const link = new ReconnectingLink({
    host: "127.0.0.1",
    port: host.collector.port,
    udpEchoPort: host.silentEcho.port,
    guard: { budget: "incident-fixed", preflight: { timeoutMs: 20 } },
  });
  t.after(() => link.close());
  link.send("span\n");
  await once(host.silentEcho.socket, "message"); // the agent is trying, by UDP
  await runLogins(host.login, LOGINS, 5);
  assert.equal(host.loginAttempts("queued").length, 0, "no login ever waited");
  assert.equal(host.loginAttempts("start").length, LOGINS);
  const agentAttempts = host.recorder.of("start").filter((e) => e.port === host.collector.port);
  assert.equal(agentAttempts.length, 0, "the agent created no TCP attempt at all");
  assert.deepEqual(
    (await synSentOf()).filter((e) => e.remote.port === host.collector.port),
    [],
  );
  assert.ok(link.stats().failures >= 1);
  assert.equal(link.stats().queued, 1, "the record waits for the collector");
});

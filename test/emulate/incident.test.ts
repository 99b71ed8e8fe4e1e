import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import { install, uninstall } from "../../src/emulate/install.js";
import type { ProfileName } from "../../src/emulate/profiles.js";
import { WINDOWS_TIMEOUT_TEXT } from "../../src/errors.js";
import { connectTest } from "../../src/probe/connect-test.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";

// 21 s × 0.02 = 420 ms: the incident's timing, compressed fifty-fold.
const timeScale = 0.02;
const delayMs = 500 * timeScale;

async function runIncident(t: TestContext, profile: ProfileName) {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  install({ profile, timeScale });
  t.after(uninstall);
  const result = await connectTest({
    host: "127.0.0.1",
    port: tarpit.port,
    livePort: live.port,
    delayMs,
  });
  return { result, recorder, tarpit, live };
}

test("a normal machine: the live connect completes at once, the dead one fails at 21 s with Windows' text", async (t) => {
  const { result, recorder, tarpit, live } = await runIncident(t, "windows");
  assert.equal(result.verdict.kind, "not-serialized");
  assert.ok(result.live.connected);
  assert.ok(
    result.live.endedAtMs < result.pending.endedAtMs,
    "B finished while A was still pending",
  );
  assert.equal(result.pending.error?.code, "ETIMEDOUT");
  assert.ok(result.pending.error?.message.startsWith(WINDOWS_TIMEOUT_TEXT));
  assert.deepEqual(
    result.lines.map((l) => `${l.who}:${l.kind}`),
    ["pending:trying", "live:trying", "live:connected", "pending:error"],
  );
  assert.deepEqual(recorder.of("queued"), [], "nothing waited");
  const timeout = recorder.of("timeout")[0];
  assert.equal(timeout?.port, tarpit.port);
  assert.ok(
    (timeout?.pendingMs ?? 0) >= 21_000 * timeScale,
    "the attempt lived its full 21 s, scaled",
  );
  assert.equal(recorder.of("connected")[0]?.port, live.port);
});

test("the customer's server: the live connect waits for the pending one and completes as it fails", async (t) => {
  const { result, recorder, tarpit, live } = await runIncident(t, "incident");
  assert.equal(result.verdict.kind, "serialized", result.verdict.text);
  assert.deepEqual(
    result.lines.map((l) => `${l.who}:${l.kind}`),
    ["pending:trying", "live:trying", "pending:error", "live:connected"],
  );
  assert.deepEqual(recorder.sequence(), [
    `start:${tarpit.port}`,
    "limitReached:",
    `queued:${live.port}`,
    `timeout:${tarpit.port}`,
    `start:${live.port}`,
    `connected:${live.port}`,
  ]);
  const timeout = recorder.of("timeout")[0];
  const queued = recorder.of("queued")[0];
  const start = recorder.of("start").find((e) => e.port === live.port);
  assert.ok(timeout && queued && start);
  assert.ok(start.at >= timeout.at, "the live SYN went out only after the pending attempt failed");
  // B waited from its own start until A's deadline: 20.5 s, scaled.
  assert.ok(start.waitMs >= timeout.at - queued.at);
  assert.ok(result.live.endedAtMs >= result.pending.endedAtMs);
});

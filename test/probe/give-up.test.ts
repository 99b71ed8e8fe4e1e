import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProbeResult } from "../../src/probe/report.js";
import { netnsCommand, netnsSupported } from "../helpers/netns.js";
import { cliPath, runCli, runCommand } from "../helpers/run-cli.js";

/**
 * `synlimit probe --measure-give-up` in a namespace of the test's own where
 * the kernel gives up on an unanswered connect after 3 s (tcp_syn_retries 1:
 * SYN at 0 and 1 s; linear timeouts off so the model is that simple).
 */
function probeInNamespace(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const inner = [
    "sh",
    "-c",
    'sysctl -qw net.ipv4.tcp_syn_linear_timeouts=0 2>/dev/null; exec "$@"',
    "sh",
    process.execPath,
    cliPath,
    "probe",
    ...args,
  ];
  const [cmd, ...rest] = netnsCommand(inner, 1);
  return runCommand(cmd as string, rest);
}

test("--measure-give-up: one attempt to the tarpit is kept until the kernel gives up; measured ≈ model, in the JSON", {
  skip: netnsSupported() ? false : "needs root to create a network namespace",
}, async () => {
  const r = await probeInNamespace(["--measure-give-up", "--json", "--quiet"]);
  let json: ProbeResult;
  try {
    json = JSON.parse(r.stdout) as ProbeResult;
  } catch {
    assert.fail(`no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  assert.equal(r.code, 0, json.verdict.text);
  const g = json.giveUp;
  assert.ok(g, "giveUp is reported");
  assert.equal(g.outcome, "gave-up", g.text);
  assert.equal(g.code, "ETIMEDOUT");
  assert.equal(g.modelMs, json.synSchedule.giveUpAtMs);
  assert.equal(g.modelMs, 3_000, json.synSchedule.source);
  // Generous: the kernel's timers fire late on a busy machine, never early.
  assert.ok(
    g.measuredMs > 0.8 * g.modelMs && g.measuredMs < 3 * g.modelMs,
    `measured ${g.measuredMs} ms`,
  );
  assert.equal(g.target.host, json.targets.blackhole?.host);
  assert.ok(json.timeline.some((e) => e.step === "giveup" && e.result === "gave-up"));
});

test("--measure-give-up, human output: the measured give-up beside the model, and a progress line while waiting", {
  skip: netnsSupported() ? false : "needs root to create a network namespace",
}, async () => {
  const r = await probeInNamespace(["--measure-give-up"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\nhost gives up after \d+\.\d s \(model: 3 s\)/, r.stdout);
  assert.match(r.stderr, /keeping one attempt to 127\.0\.0\.2:\d+ open until this host gives up/);
});

test("without --measure-give-up nothing waits for the give-up: giveUp is null", async () => {
  const r = await runCli(["probe", "--json", "--quiet", "--max", "4"]);
  const json = JSON.parse(r.stdout) as ProbeResult;
  assert.equal(json.giveUp, null);
});

/**
 * The probe against limiters nobody here wrote: the Linux kernel's own
 * netfilter, in a network namespace each test creates (loopback only), with
 * the probe's CLI run inside it. These limiters drop SYNs over their limit;
 * a connect then gets through only on a SYN resend.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { formatProbe } from "../../src/cli/render/probe.js";
import type { ProbeResult } from "../../src/probe/report.js";
import { missingForNetns, NetNamespace } from "./netns.js";

before(() => {
  // Nothing is skipped: without what they need, every test here fails with this line.
  const missing = missingForNetns();
  if (missing) throw new Error(missing);
});

async function inNamespace(t: import("node:test").TestContext, rule: string[] | null) {
  const ns = await NetNamespace.create();
  t.after(() => ns.close());
  if (rule) await ns.iptables("-A", "OUTPUT", "-o", "lo", "-p", "tcp", "--syn", ...rule);
  return ns;
}

const human = (j: ProbeResult) => formatProbe(j, { startedAt: new Date(), emulation: null });

const story = (j: ProbeResult) =>
  `${j.verdict.text}\n${j.timeline.map((e) => `  ${e.text}`).join("\n")}\n${j.notes.join("\n")}`;

test("no rule: no limit, and no SYN was resent", async (t) => {
  const ns = await inNamespace(t, null);
  const { code, json } = await ns.probe();
  assert.equal(code, 0, story(json));
  assert.equal(json.verdict.kind, "no-limit");
  assert.deepEqual(json.retransmitted, []);
  assert.ok(json.synSchedule.retransmitAtMs.length > 0);
  assert.match(json.synSchedule.source, /tcp_syn_retries/);
});

for (const [rate, rule] of [
  [2, ["-m", "limit", "--limit", "2/sec", "--limit-burst", "2", "-j", "RETURN"]],
  [
    5,
    [
      "-m",
      "hashlimit",
      "--hashlimit-above",
      "5/sec",
      "--hashlimit-burst",
      "5",
      "--hashlimit-name",
      "syn5",
      "-j",
      "DROP",
    ],
  ],
] as const) {
  test(`SYN rate limit ${rate}/s (${rule[1]}): limited, rate-limited, about ${rate}/s, excess dropped`, async (t) => {
    const ns = await inNamespace(t, [...rule]);
    // `limit` matches what is under the rate: those SYNs return, the rest are dropped.
    if (rule[1] === "limit")
      await ns.iptables("-A", "OUTPUT", "-o", "lo", "-p", "tcp", "--syn", "-j", "DROP");
    const { code, json } = await ns.probe();
    assert.equal(code, 3, story(json));
    assert.equal(json.limit?.behaviour, "rate-limited", story(json));
    assert.equal(json.limit?.excessDropped, true);
    assert.equal(json.limit?.maxInFlight, null);
    // Every connect went to one destination: per destination is not claimed.
    assert.equal(json.limit?.appliesTo, "unknown");
    assert.equal(json.limit?.countsEstablished, null);
    assert.match(human(json), /one new connect released every/);
    assert.doesNotMatch(human(json), /new destination released/);
    const measured = json.limit?.ratePerSecond ?? 0;
    assert.ok(
      measured >= rate * 0.6 && measured <= rate * 1.6,
      `about ${rate}/s: ${measured}\n${story(json)}`,
    );
    assert.ok(
      json.retransmitted.length > 0,
      "the connects that went through on a resend are reported",
    );
    for (const r of json.retransmitted) assert.ok(r.resend >= 1 && r.ms >= r.resentAtMs - 5);
  });
}

for (const k of [1, 3, 6]) {
  test(`connlimit ${k}, mask 0, DROP (counts established): limited, k = ${k}, established count, dropped, machine-wide`, async (t) => {
    const ns = await inNamespace(t, [
      "-m",
      "connlimit",
      "--connlimit-above",
      String(k),
      "--connlimit-mask",
      "0",
      "-j",
      "DROP",
    ]);
    const { code, json } = await ns.probe();
    assert.equal(code, 3, story(json));
    assert.equal(json.limit?.maxInFlight, k, story(json));
    assert.equal(json.limit?.countsEstablished, true);
    assert.equal(json.limit?.behaviour, "dropped", story(json));
    assert.equal(json.limit?.excessDropped, true);
    assert.equal(json.limit?.scope, "machine", story(json));
    assert.equal(json.limit?.appliesTo, "unknown");
    assert.match(human(json), /a second process on this host was delayed too/);
    // The waiting connect went through on a resend once one connection ended.
    assert.ok(json.retransmitted.length > 0, story(json));
    // The probe's own tarpit would use such a limit up: it measured without
    // it, and says so instead of blaming the live target.
    assert.ok(
      json.notes.some((n) => /tarpit/.test(n)),
      story(json),
    );
    assert.doesNotMatch(json.verdict.text, /live target/);
  });
}

for (const k of [2, 4]) {
  test(`connlimit ${k} with REJECT --reject-with tcp-reset: limited, k = ${k}, refused (ECONNREFUSED)`, async (t) => {
    const ns = await inNamespace(t, [
      "-m",
      "connlimit",
      "--connlimit-above",
      String(k),
      "--connlimit-mask",
      "0",
      "-j",
      "REJECT",
      "--reject-with",
      "tcp-reset",
    ]);
    const { code, json } = await ns.probe();
    assert.equal(code, 3, story(json));
    assert.equal(json.limit?.maxInFlight, k, story(json));
    assert.equal(json.limit?.behaviour, "refused");
    assert.equal(json.limit?.errorCode, "ECONNREFUSED");
    assert.equal(json.limit?.countsEstablished, true);
    assert.equal(json.limit?.scope, "machine", story(json));
    assert.equal(json.limit?.appliesTo, "unknown");
    // The helper was refused, not delayed.
    assert.match(human(json), /a second process on this host was refused too/);
  });
}

test("30 % random SYN loss (statistic), no limiter: no limit, and the loss is reported", async (t) => {
  const ns = await inNamespace(t, [
    "-m",
    "statistic",
    "--mode",
    "random",
    "--probability",
    "0.3",
    "-j",
    "DROP",
  ]);
  const { code, json } = await ns.probe();
  assert.equal(code, 0, story(json));
  assert.equal(json.verdict.kind, "no-limit");
  assert.ok(json.loss.resent + json.loss.unanswered > 0, story(json));
  assert.match(json.verdict.text, /SYNs were lost \(random loss, not a limit\)/);
  // Lost SYNs are abandoned for fresh connects, not waited out: the baseline
  // keeps its full sample count and no baseline connect waits past its first resend.
  assert.ok((json.baseline?.samplesMs.length ?? 0) >= 5, story(json));
  const baselineAt = json.timeline.find((e) => e.step === "baseline")?.atMs ?? 0;
  for (const r of json.retransmitted.filter((x) => x.atMs < baselineAt)) {
    assert.equal(r.resend, 1, story(json));
  }
});

test("connlimit 9 with --max 4: no limit up to --max, no loss claimed, established connections not declared uncounted", async (t) => {
  const ns = await inNamespace(t, [
    "-m",
    "connlimit",
    "--connlimit-above",
    "9",
    "--connlimit-mask",
    "0",
    "-j",
    "DROP",
  ]);
  const { code, json } = await ns.probe(["--max", "4"]);
  assert.equal(code, 0, story(json));
  assert.equal(json.verdict.kind, "no-limit");
  // A SYN dropped by the limit just above --max is not random loss.
  assert.doesNotMatch(json.verdict.text, /random loss/, story(json));
  assert.doesNotMatch(story(json), /established connections do not count/);
  assert.match(story(json), /no limit on established connections up to 4/);
});

test("a limit already used up by another process: could not test, both explanations named", async (t) => {
  const ns = await inNamespace(t, [
    "-m",
    "connlimit",
    "--connlimit-above",
    "1",
    "--connlimit-mask",
    "0",
    "-j",
    "DROP",
  ]);
  // Another process in the namespace holds the one connection allowed.
  const holder = await ns.holdConnection();
  t.after(() => holder.close());
  const { code, json } = await ns.probe();
  assert.equal(code, 2, story(json));
  assert.equal(json.verdict.kind, "could-not-test");
  assert.equal(json.alternatives.length, 2, story(json));
  assert.match(json.alternatives.join("\n"), /used up by connections other processes/);
  assert.match(json.alternatives.join("\n"), /dropping every SYN|down/);
});

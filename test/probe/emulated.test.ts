import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProbeResult } from "../../src/probe/report.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { registerUrl, runCli } from "../helpers/run-cli.js";

type ProbeJson = ProbeResult & { emulation: { profile: string | null; timeScale: number } | null };

/** `node --import synlimit/register synlimit probe --json` under a limiter set by env. */
async function probeUnder(env: Record<string, string>, args: string[] = []) {
  const r = await runCli(["probe", "--json", "--quiet", ...args], {
    env,
    nodeArgs: ["--import", registerUrl],
  });
  assert.equal(r.stderr, "", "--quiet: nothing on stderr");
  let json: ProbeJson;
  try {
    json = JSON.parse(r.stdout) as ProbeJson;
  } catch {
    assert.fail(`no JSON on stdout (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  assert.equal(json.schema, "synlimit.probe");
  assert.equal(json.version, 1);
  return { code: r.code, json };
}

const summary = (j: ProbeJson) =>
  `${j.verdict.text}\n${j.timeline.map((e) => e.text).join("\n")}\n${j.notes.join("\n")}`;

// k = 1 is the incident itself, checked through the human output below.
for (const k of [2, 3, 10]) {
  test(`${k} attempt(s) per process, queued: k = ${k}, per process, queued FIFO, across destinations`, async () => {
    const { code, json } = await probeUnder({
      SYNLIMIT_PROFILE: "incident",
      SYNLIMIT_MAX_IN_FLIGHT: String(k),
      SYNLIMIT_TIMING: "none",
    });
    assert.equal(code, 3, summary(json));
    assert.equal(json.verdict.kind, "limited");
    assert.equal(json.limit?.maxInFlight, k, summary(json));
    assert.equal(json.limit?.scope, "process", summary(json));
    assert.equal(json.limit?.behaviour, "queued");
    assert.equal(json.limit?.fifo, true);
    assert.equal(json.limit?.appliesTo, "all-destinations");
    // The emulation counts pending attempts only: held established connections pass.
    assert.equal(json.limit?.countsEstablished, false, summary(json));
    assert.equal(json.limit?.excessDropped, false);
    assert.deepEqual(json.retransmitted, [], "nothing resent under a queue");
    assert.equal(typeof json.limit?.handoffMs, "number");
    assert.equal(json.targets.blackhole?.verified, true);
    assert.equal(json.emulation?.profile, "incident");
    // The incident's own program needs 21 s for a yes/no; k itself costs O(log k) trials.
    assert.ok(json.timeline.filter((e) => e.step === "trial").length <= 2 * Math.log2(k + 1) + 3);
  });
}

test("the incident (k = 1), human output: the verdict first, then the evidence and what to do", async () => {
  const r = await runCli(["probe", "--quiet"], {
    env: { SYNLIMIT_PROFILE: "incident", SYNLIMIT_TIMING: "none" },
    nodeArgs: ["--import", registerUrl],
  });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  const lines = r.stdout.split("\n");
  assert.equal(
    lines[0],
    "limit: 1 concurrent connect attempt per process, queued FIFO; a pending attempt delays others until it ends",
    r.stdout,
  );
  assert.match(r.stdout, /per process: a second process on this host was not delayed/);
  assert.match(r.stdout, /\n {2}\+\d+\.\d{3}s 1 pending attempt → live blocked/);
  assert.match(r.stdout, /cancelled 1 pending attempt → the first waiting connect completed/);
  assert.match(r.stdout, /\nwhat to do:\n {2}- Keep attempts short/);
  assert.match(r.stdout, /synlimit emulation: profile incident/);
});

test("rfc6455: 1 attempt per destination, per process, queued; other destinations not delayed", async () => {
  const { code, json } = await probeUnder({ SYNLIMIT_PROFILE: "rfc6455" });
  assert.equal(code, 3, summary(json));
  assert.equal(json.limit?.maxInFlight, 1, summary(json));
  assert.equal(json.limit?.appliesTo, "each-destination");
  assert.equal(json.limit?.scope, "process", summary(json));
  assert.equal(json.limit?.behaviour, "queued");
  assert.ok(
    json.timeline.some((e) => e.step === "trial" && e.held === 64 && e.result === "through"),
    "64 pending attempts to the blackhole did not delay the live target",
  );
});

test("reject policy: k = 2, refused at once with ECONNREFUSED", async () => {
  const { code, json } = await probeUnder({
    SYNLIMIT_PROFILE: "incident",
    SYNLIMIT_MAX_IN_FLIGHT: "2",
    SYNLIMIT_POLICY: "reject",
    SYNLIMIT_TIMING: "none",
  });
  assert.equal(code, 3, summary(json));
  assert.equal(json.limit?.maxInFlight, 2, summary(json));
  assert.equal(json.limit?.behaviour, "refused");
  assert.equal(json.limit?.errorCode, "ECONNREFUSED");
  assert.equal(json.limit?.scope, "process", summary(json));
  assert.equal(json.limit?.appliesTo, "all-destinations");
});

test("williamson: new destinations rate-limited (1/s, time-compressed), per process, no k", async () => {
  // One release every 300 ms: well above the settle window the test pins,
  // so a busy machine cannot hide the throttle.
  const { code, json } = await probeUnder(
    { SYNLIMIT_PROFILE: "williamson", SYNLIMIT_TIME_SCALE: "0.3" },
    ["--settle", "100"],
  );
  assert.equal(code, 3, summary(json));
  assert.equal(json.limit?.behaviour, "rate-limited", summary(json));
  assert.equal(json.limit?.maxInFlight, null);
  assert.equal(json.limit?.scope, "process", summary(json));
  // The same shape for every verdict: a rate is not a count, and nothing was dropped.
  assert.equal(json.limit?.countsEstablished, null);
  assert.equal(json.limit?.excessDropped, false);
  const rate = json.limit?.ratePerSecond ?? 0;
  assert.ok(rate > 1000 / 600 && rate < 1000 / 150, `rate ${rate}/s\n${summary(json)}`);
});

test("a host without a limit (the windows profile: timing only): exit 0, no limit up to --max", async () => {
  const { code, json } = await probeUnder({ SYNLIMIT_PROFILE: "windows" }, ["--max", "16"]);
  assert.equal(code, 0, summary(json));
  assert.equal(json.verdict.kind, "no-limit");
  assert.equal(json.limit, null);
  assert.equal(json.max, 16);
  assert.deepEqual(json.advice.length, 1);
});

test("the probe's own tarpit is not on the live listener's host (Linux): a known-reachable exemption cannot cover it", async () => {
  const { json } = await probeUnder({ SYNLIMIT_PROFILE: "rfc6455" });
  const blackhole = json.targets.blackhole?.host;
  assert.equal(json.targets.live?.host, "127.0.0.1");
  assert.equal(blackhole, process.platform === "linux" ? "127.0.0.2" : "127.0.0.1");
});

test("winxp-sp2 with a blackhole on a never-reached host: 10, and 'known-reachable hosts exempt' is offered beside 'per destination'", async (t) => {
  // This test process is not under the emulation: the probe has never reached 127.0.0.5.
  const tarpit = await Tarpit.listen({ host: "127.0.0.5" });
  t.after(() => tarpit.close());
  const { code, json } = await probeUnder({ SYNLIMIT_PROFILE: "winxp-sp2" }, [
    "--blackhole",
    `127.0.0.5:${tarpit.port}`,
  ]);
  assert.equal(code, 3, summary(json));
  assert.equal(json.limit?.maxInFlight, 10, summary(json));
  assert.match(json.verdict.text, /known-reachable hosts exempt \(as Windows XP SP2\)/);
  assert.ok(
    json.alternatives.some((a) => /known-reachable hosts exempt/.test(a)),
    json.alternatives.join("\n"),
  );
  assert.ok(json.alternatives.some((a) => /per destination/.test(a)));
});

test("emulation note: timing by its profile name, no '(scaled)' at scale 1; timing none leaves the host's give-up", async () => {
  const incident = await runCli(["probe", "--quiet", "--max", "2"], {
    env: { SYNLIMIT_PROFILE: "incident" },
    nodeArgs: ["--import", registerUrl],
  });
  assert.match(
    incident.stdout,
    /under an emulated limiter \(timing windows-2008\): emulated attempts give up after 21 s, so/,
  );
  assert.doesNotMatch(incident.stdout, /scaled|syn:0,3000/);
  const rfc = await runCli(["probe", "--quiet", "--max", "2"], {
    env: { SYNLIMIT_PROFILE: "rfc6455" },
    nodeArgs: ["--import", registerUrl],
  });
  assert.match(
    rfc.stdout,
    /the emulation adds no deadline, so attempts end at the host's own give-up/,
  );
  assert.doesNotMatch(rfc.stdout, /never time out/);
  const windows = await runCli(["probe", "--quiet", "--max", "2"], {
    env: { SYNLIMIT_PROFILE: "windows" },
    nodeArgs: ["--import", registerUrl],
  });
  assert.match(windows.stdout, /under emulated windows timing, no limit:/);
  assert.doesNotMatch(windows.stdout, /emulated limiter/);
});

test("winxp-sp2 with the probe's own tarpit: the limit shows (the tarpit's fillers are not emulated)", async () => {
  const r = await runCli(["probe", "--quiet", "--max", "16", "--json"], {
    env: { SYNLIMIT_PROFILE: "winxp-sp2" },
    nodeArgs: ["--import", registerUrl],
  });
  const json = JSON.parse(r.stdout.trim().split("\n").at(-1) as string);
  assert.equal(json.verdict.kind, "limited", r.stdout);
  assert.equal(json.limit.maxInFlight, 10);
  assert.notEqual(json.targets.blackhole.host, json.targets.live.host);
  assert.match(json.verdict.text, /known-reachable hosts exempt/);
});

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { optionsFromEnv } from "../../src/emulate/env.js";

const packageRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Runs a module under `--import synlimit/register`, resolved through the package's exports. */
function runRegistered(env: Record<string, string>, script = "console.log('app ran')") {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("SYNLIMIT_")),
  );
  return spawnSync(
    process.execPath,
    ["--import", "synlimit/register", "--input-type=module", "-e", script],
    { cwd: packageRoot, env: { ...clean, ...env }, encoding: "utf8" },
  );
}

test("--import synlimit/register installs the profile named in the environment", () => {
  const script = `
    const { currentEmulation } = await import("synlimit");
    const e = currentEmulation();
    console.log(JSON.stringify({ profile: e.profile, max: e.gate.options.maxInFlight, scale: e.timeScale, timing: e.gate.options.timing.kind }));
  `;
  const r = runRegistered({ SYNLIMIT_PROFILE: "winxp-sp2", SYNLIMIT_TIME_SCALE: "0.5" }, script);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    profile: "winxp-sp2",
    max: 10,
    scale: 0.5,
    timing: "windows-2008",
  });
});

test("SYNLIMIT_TIMING takes a SYN schedule in milliseconds", () => {
  assert.deepEqual(optionsFromEnv({ SYNLIMIT_TIMING: "syn:0, 500 ,1500;giveup:4000" }), {
    profile: "incident",
    timing: "syn:0,500,1500;giveup:4000",
  });
  assert.deepEqual(optionsFromEnv({ SYNLIMIT_TIMING: "windows-2008" }).timing, "windows-2008");
});

test("the default profile is the incident's", () => {
  assert.deepEqual(optionsFromEnv({}), { profile: "incident" });
});

test("every variable is parsed", () => {
  assert.deepEqual(
    optionsFromEnv({
      SYNLIMIT_PROFILE: "rfc6455",
      SYNLIMIT_MAX_IN_FLIGHT: "unlimited",
      SYNLIMIT_SCOPE: "destination",
      SYNLIMIT_POLICY: "rate",
      SYNLIMIT_TIMING: "1500",
      SYNLIMIT_TIME_SCALE: "0.1",
      SYNLIMIT_RATE: "2",
      SYNLIMIT_WORKING_SET: "0",
    }),
    {
      profile: "rfc6455",
      maxInFlight: Number.POSITIVE_INFINITY,
      scope: "destination",
      policy: "rate",
      timing: { connectTimeoutMs: 1500 },
      timeScale: 0.1,
      rate: { newDestinationsPerSecond: 2, workingSetSize: 0 },
    },
  );
});

const badEnv: Array<[Record<string, string>, RegExp]> = [
  [
    { SYNLIMIT_PROFILE: "win95" },
    /^synlimit: SYNLIMIT_PROFILE must be one of incident, winxp-sp2, rfc6455, williamson, windows, windows-2008, got "win95"$/,
  ],
  [
    { SYNLIMIT_MAX_IN_FLIGHT: "-1" },
    /^synlimit: SYNLIMIT_MAX_IN_FLIGHT must be a positive integer or 'unlimited', got "-1"$/,
  ],
  [{ SYNLIMIT_MAX_IN_FLIGHT: "0" }, /SYNLIMIT_MAX_IN_FLIGHT/],
  [{ SYNLIMIT_MAX_IN_FLIGHT: "1.5" }, /SYNLIMIT_MAX_IN_FLIGHT/],
  [{ SYNLIMIT_SCOPE: "machine" }, /SYNLIMIT_SCOPE must be process or destination/],
  [{ SYNLIMIT_POLICY: "drop" }, /SYNLIMIT_POLICY must be queue, reject or rate/],
  [{ SYNLIMIT_TIMING: "bsd" }, /SYNLIMIT_TIMING must be one of none, windows, windows-2008, linux/],
  [
    { SYNLIMIT_TIMING: "syn:0,3000,2000;giveup:21000" },
    /^synlimit: SYNLIMIT_TIMING must be .*SYN times must increase, got 0,3000,2000\)/,
  ],
  [
    { SYNLIMIT_TIMING: "syn:0,1000;giveup:500" },
    /giveup must be .* after the last SYN \(1000 ms\)/,
  ],
  [{ SYNLIMIT_TIMING: "syn:100;giveup:500" }, /the first SYN goes out at 0 ms, got 100/],
  [{ SYNLIMIT_TIMING: "syn:0,1000" }, /must read syn:MS,MS,…;giveup:MS/],
  [{ SYNLIMIT_TIME_SCALE: "0" }, /SYNLIMIT_TIME_SCALE must be a positive number, got "0"/],
  [{ SYNLIMIT_TIME_SCALE: "fast" }, /SYNLIMIT_TIME_SCALE/],
  [
    { SYNLIMIT_MAX_INFLIGHT: "1" },
    // Names the variable, never quotes its value.
    /^synlimit: SYNLIMIT_MAX_INFLIGHT is not a synlimit variable; the known ones are SYNLIMIT_PROFILE, [^"]*$/,
  ],
];

for (const [env, message] of badEnv) {
  test(`bad configuration ${JSON.stringify(env)}: one line naming the variable, exit 2, the app never runs`, () => {
    const r = runRegistered(env);
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "", "the application did not run");
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? "", message);
  });
}

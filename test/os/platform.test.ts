import assert from "node:assert/strict";
import { test } from "node:test";
import {
  blackholeProblem,
  holdersMethod,
  loopbackTarpitPossible,
  synScheduleMethod,
  WINDOWS_NEEDS_BLACKHOLE,
} from "../../src/os/platform.js";
import { describeHostSchedule, readHostSynSchedule } from "../../src/os/syn-schedule.js";
import { listWindowsHolders } from "../../src/os/windows/holders.js";
import type { RunCommand } from "../../src/os/windows/powershell.js";
import {
  NET_TCP_CONNECTION_SYNLIMIT,
  NET_TCP_SETTING_CURRENT,
  NET_TCP_SETTING_SINGLE_OLD,
  NETSTAT_DE,
} from "../fixtures/windows.js";

/** A stand-in for execFile that answers from fixtures and records what was run. */
function fakeRun(answers: { powershell?: string | Error; netstat?: string | Error }) {
  const calls: Array<{ file: string; args: readonly string[] }> = [];
  const run: RunCommand = async (file, args) => {
    calls.push({ file, args });
    const answer = file === "powershell.exe" ? answers.powershell : answers.netstat;
    if (answer === undefined) throw new Error(`spawn ${file} ENOENT`);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { run, calls };
}

test("on Windows without --blackhole the probe stops with one line; it never picks an address itself", () => {
  assert.equal(loopbackTarpitPossible("win32"), false);
  assert.equal(blackholeProblem("win32", { blackhole: null }), WINDOWS_NEEDS_BLACKHOLE);
  assert.ok(!WINDOWS_NEEDS_BLACKHOLE.includes("\n"));
  assert.match(WINDOWS_NEEDS_BLACKHOLE, /--blackhole HOST:PORT/);
  assert.match(WINDOWS_NEEDS_BLACKHOLE, /synlimit tarpit --host ADDRESS --allow-non-loopback/);
  assert.equal(blackholeProblem("win32", { blackhole: { host: "127.0.0.1", port: 9 } }), null);
  for (const p of ["linux", "darwin", "freebsd"] as const) {
    assert.equal(blackholeProblem(p, { blackhole: null }), null, p);
  }
});

test("holders and SYN schedule are read the platform's way", () => {
  assert.equal(holdersMethod("linux"), "proc");
  assert.equal(holdersMethod("win32"), "windows");
  assert.equal(holdersMethod("darwin"), "none");
  assert.equal(synScheduleMethod("linux"), "tcp_syn_retries");
  assert.equal(synScheduleMethod("win32"), "Get-NetTCPSetting");
  assert.equal(synScheduleMethod("darwin"), "none");
});

test("Windows host schedule: Get-NetTCPSetting's Internet template predicts the 21 s wait", async () => {
  const { run, calls } = fakeRun({ powershell: NET_TCP_SETTING_CURRENT });
  const s = await readHostSynSchedule({ platform: "win32", run });
  assert.equal(calls[0]?.file, "powershell.exe");
  assert.match(calls[0]?.args.at(-1) ?? "", /Get-NetTCPSetting .*ConvertTo-Json/);
  assert.ok(s.available);
  assert.equal(s.source, "Get-NetTCPSetting Internet: InitialRtoMs 1000, MaxSynRetransmissions 4");
  assert.deepEqual(s.synAtMs, [0, 1000, 3000, 7000, 15000]);
  assert.equal(s.giveUpMs, 21_000);
  assert.match(describeHostSchedule(s), /waits up to 21 s/);

  const old = await readHostSynSchedule({
    platform: "win32",
    run: fakeRun({ powershell: NET_TCP_SETTING_SINGLE_OLD }).run,
  });
  assert.ok(old.available);
  assert.deepEqual(old.synAtMs, [0, 3000, 9000]);

  const none = await readHostSynSchedule({ platform: "win32", run: fakeRun({}).run });
  assert.equal(none.available, false);
  assert.match(
    describeHostSchedule(none),
    /unknown \(Get-NetTCPSetting: spawn powershell\.exe ENOENT\)/,
  );
});

test("Linux host schedule from tcp_syn_retries: 6 gives up at 127 s, 3 at 15 s", async () => {
  const files = (retries: string) => async (path: string) => {
    if (path.endsWith("tcp_syn_retries")) return retries;
    throw new Error("ENOENT");
  };
  const six = await readHostSynSchedule({ platform: "linux", readText: files("6\n") });
  assert.ok(six.available);
  assert.deepEqual(six.synAtMs, [0, 1000, 3000, 7000, 15000, 31000, 63000]);
  assert.equal(six.giveUpMs, 127_000);
  const three = await readHostSynSchedule({ platform: "linux", readText: files("3") });
  assert.ok(three.available);
  assert.equal(three.giveUpMs, 15_000);
  // A 6.5+ kernel's linear timeouts come on top of the retries (seen with tcpdump).
  const linear = await readHostSynSchedule({
    platform: "linux",
    readText: async (path: string) => {
      if (path.endsWith("linear_timeouts")) return "4";
      if (path.endsWith("tcp_syn_retries")) return "6";
      throw new Error("ENOENT");
    },
  });
  assert.ok(linear.available);
  assert.deepEqual(linear.synAtMs.slice(0, 8), [0, 1000, 2000, 3000, 4000, 5000, 7000, 11000]);
  assert.equal(linear.giveUpMs, 131_000);
  const bad = await readHostSynSchedule({ platform: "linux", readText: files("lots") });
  assert.equal(bad.available, false);
  assert.equal((await readHostSynSchedule({ platform: "darwin" })).available, false);
});

test("this Linux host's own schedule is read from /proc", async (t) => {
  if (process.platform !== "linux") return t.skip("needs Linux /proc");
  const s = await readHostSynSchedule();
  assert.ok(s.available, JSON.stringify(s));
  assert.match(s.source, /^net\.ipv4\.tcp_syn_retries = \d+/);
});

test("Windows holders: Get-NetTCPConnection JSON grouped per process, Bound sockets counted apart", async () => {
  const { run, calls } = fakeRun({ powershell: NET_TCP_CONNECTION_SYNLIMIT });
  const r = await listWindowsHolders(run);
  assert.equal(calls.length, 1, "no fallback needed");
  assert.ok(r.supported);
  assert.equal(r.source, "Get-NetTCPConnection");
  assert.deepEqual(
    r.holders.map((h) => [h.pid, h.comm, h.attempts.length]),
    [
      [4242, "w3wp", 2],
      [512, "lsass", 1],
    ],
  );
  assert.deepEqual(r.bound, [{ pid: 4242, processName: "w3wp", sockets: 1 }]);
});

test("Windows holders fall back to netstat -ano (localised) when PowerShell cannot answer", async () => {
  const { run, calls } = fakeRun({
    powershell: new Error("Get-NetTCPConnection : The term is not recognized"),
    netstat: NETSTAT_DE,
  });
  const r = await listWindowsHolders(run);
  assert.deepEqual(
    calls.map((c) => c.file),
    ["powershell.exe", "netstat"],
  );
  assert.ok(r.supported);
  assert.equal(r.source, "netstat -ano");
  assert.deepEqual(
    r.holders.map((h) => [h.pid, h.attempts.length]),
    [[4242, 1]],
  );
  assert.match(r.notes?.[0] ?? "", /Get-NetTCPConnection unavailable \(.*not recognized\)/);

  const garbage = await listWindowsHolders(
    fakeRun({ powershell: "not json", netstat: NETSTAT_DE }).run,
  );
  assert.equal(garbage.supported && garbage.source, "netstat -ano");

  const neither = await listWindowsHolders(fakeRun({}).run);
  assert.equal(neither.supported, false);
  assert.match(
    neither.supported ? "" : neither.reason,
    /neither Get-NetTCPConnection .* nor netstat -ano/,
  );
});

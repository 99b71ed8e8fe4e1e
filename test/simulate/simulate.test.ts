import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parseHTML } from "linkedom";
import { formatRecord, type TraceRecord } from "../../src/record/trace.js";
import {
  FATE_GAVE_UP,
  FATE_REJECTED,
  type SimConfig,
  simulate,
} from "../../src/simulate/engine.js";
import { EventHeap } from "../../src/simulate/heap.js";
import { parseSweep, resolveLimiter, sweepPoints } from "../../src/simulate/options.js";
import { summarize } from "../../src/simulate/summary.js";
import { runPoint, runSweep } from "../../src/simulate/sweep.js";
import { generatePoissonMix, workloadOf } from "../../src/simulate/workload.js";
import { runCli } from "../helpers/run-cli.js";

const base: SimConfig = {
  maxInFlight: 1,
  scope: "process",
  policy: "queue",
  failAtMs: null,
  ratePerSecond: 1,
  workingSetSize: 5,
};

test("event heap: pops in time order, ties by item, across growth", () => {
  const heap = new EventHeap(2);
  const input = Array.from({ length: 2000 }, (_, i) => [(i * 7919) % 101, i] as const);
  for (const [t, item] of input) heap.push(t, item);
  const sorted = [...input].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (const [t, item] of sorted) {
    assert.equal(heap.peekTime(), t);
    assert.equal(heap.peekItem(), item);
    heap.pop();
  }
  assert.equal(heap.size, 0);
  assert.equal(heap.peekTime(), Number.POSITIVE_INFINITY);
});

test("after/gapMs: a follow-up starts gapMs after its cause's simulated end", () => {
  // A dead attempt (recorded 1 s, simulated 21 s) and its retry 10 ms later; a login queued behind.
  const w = workloadOf([
    { t: 0, durationMs: 1000, outcome: "timeout", role: "agent" },
    { t: 1010, durationMs: 1000, outcome: "timeout", role: "agent", parent: 0, gapMs: 10 },
    { t: 5, durationMs: 1, role: "login" },
  ]);
  const run = simulate(w, { ...base, failAtMs: 21_000 });
  assert.equal(run.end[0], 21_000);
  assert.equal(run.start[2], 21_000, "the login waited for the dead attempt");
  assert.equal(
    run.arrival[1],
    21_010,
    "the retry follows the simulated end, not its recorded time",
  );
  assert.equal(run.start[1], 21_010);
  assert.equal(run.end[1], 42_010);
});

test("reject policy: over the limit fails at once; a retry follows the rejection", () => {
  const w = workloadOf([
    { t: 0, durationMs: 100 },
    { t: 10, durationMs: 1, outcome: "connected" },
    { t: 10, durationMs: 1, parent: 1, gapMs: 200 },
  ]);
  const run = simulate(w, { ...base, policy: "reject" });
  assert.equal(run.fate[1], FATE_REJECTED);
  assert.equal(run.arrival[2], 210);
  assert.equal(run.start[2], 210);
  const s = summarize(run);
  assert.equal(s.outcomes.rejected, 1);
  assert.equal(s.failures, 1);
});

test("destination scope: one slot per host:port; another destination does not wait", () => {
  const w = workloadOf([
    { t: 0, durationMs: 100, dest: "127.0.0.3:9" },
    { t: 1, durationMs: 1, dest: "127.0.0.3:9" },
    { t: 2, durationMs: 1, dest: "127.0.0.2:389" },
  ]);
  const run = simulate(w, { ...base, scope: "destination" });
  assert.equal(run.start[1], 100);
  assert.equal(run.start[2], 2);
});

test("rate policy: one new host per interval, the working set and same-host waiters pass", () => {
  const w = workloadOf([
    { t: 0, durationMs: 1, dest: "127.0.0.2:1" },
    { t: 1, durationMs: 1, dest: "127.0.0.3:1" },
    { t: 2, durationMs: 1, dest: "127.0.0.3:2" },
    { t: 3, durationMs: 1, dest: "127.0.0.2:2" },
    { t: 4, durationMs: 1, dest: "127.0.0.4:1" },
  ]);
  const run = simulate(w, {
    ...base,
    maxInFlight: Number.POSITIVE_INFINITY,
    policy: "rate",
    ratePerSecond: 2,
  });
  assert.deepEqual(Array.from(run.start), [0, 500, 500, 3, 1000]);
});

test("a cancelled attempt gives up waiting after its recorded patience", () => {
  const w = workloadOf([
    { t: 0, durationMs: 1000, outcome: "timeout" },
    { t: 10, durationMs: 300, outcome: "cancelled" },
    { t: 20, durationMs: 1 },
  ]);
  const run = simulate(w, base);
  assert.equal(run.fate[1], FATE_GAVE_UP);
  assert.equal(run.end[1], 310);
  assert.equal(run.start[2], 1000, "the next in line is not held up by the one that left");
  assert.equal(summarize(run).outcomes.gaveUp, 1);
});

test("sweep: worker threads give exactly the sequential results, in order", async () => {
  const w = generatePoissonMix({
    n: 20_000,
    seed: 3,
    meanInterarrivalMs: 5,
    deadFraction: 0.05,
    deadMs: 50,
    liveMs: 0.5,
  });
  const points = sweepPoints([parseSweep("max-in-flight=1..4"), parseSweep("policy=queue,reject")]);
  assert.equal(points.length, 8);
  const parallel = await runSweep(w, points, 2);
  const sequential = points.map((p) => runPoint(w, p));
  assert.deepEqual(parallel, sequential);
  // More slots never make the mean wait longer under queueing.
  const queued = parallel
    .filter((r) => r.labels.policy === "queue")
    .map((r) => r.summary.waits.meanMs);
  for (let i = 1; i < queued.length; i++)
    assert.ok((queued[i] as number) <= (queued[i - 1] as number));
});

test("limiter settings: profile values, then overrides", () => {
  assert.deepEqual(resolveLimiter({}).config, { ...base, failAtMs: 21_000 });
  const xp = resolveLimiter({ profile: "winxp-sp2", timing: { connectTimeoutMs: 5000 } });
  assert.equal(xp.config.maxInFlight, 10);
  assert.equal(xp.config.failAtMs, 5000);
  assert.match(xp.label, /^winxp-sp2 \(modified\): 10 in flight machine-wide/);
});

function writeTrace(dir: string, records: TraceRecord[]): string {
  const file = path.join(dir, "t.trace");
  writeFileSync(file, records.map(formatRecord).join(""));
  return file;
}

test("CLI: --json per role; --sweep table; --report writes a chart", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "synlimit-sim-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The incident in miniature: a dead collector and three logins right behind it.
  const file = writeTrace(dir, [
    { id: 1, t: 0, dest: "127.0.0.3:9", durationMs: 3000, outcome: "timeout" },
    { id: 2, t: 100, dest: "127.0.0.1:389", durationMs: 0.5, outcome: "connected" },
    { id: 3, t: 200, dest: "127.0.0.1:389", durationMs: 0.5, outcome: "connected" },
    { id: 4, t: 300, dest: "127.0.0.1:389", durationMs: 0.5, outcome: "connected" },
  ]);
  const r = await runCli([
    "simulate",
    file,
    "--profile",
    "incident",
    "--role",
    "389=login",
    "--role",
    "9=agent",
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout);
  assert.equal(json.byRole.login.count, 3);
  assert.equal(json.byRole.login.p50Ms, 21_000 + 0.5 - 200);
  assert.equal(json.byRole.login.meanMs, (20_900 + 20_800.5 + 20_701) / 3);
  assert.equal(json.waits.maxMs, 20_900);
  assert.equal(json.waits.p99Ms, 20_900);
  assert.equal(json.byRole.agent.meanMs, 0);
  assert.equal(json.outcomes.timeout, 1);

  const free = await runCli(["simulate", file, "--max-in-flight", "unlimited", "--json"]);
  assert.equal(JSON.parse(free.stdout).waits.maxMs, 0);

  const sweep = await runCli([
    "simulate",
    file,
    "--sweep",
    "max-in-flight=1..3",
    "--workers",
    "2",
    "--report",
    path.join(dir, "r"),
  ]);
  assert.equal(sweep.code, 0, sweep.stderr);
  assert.match(sweep.stdout, /^max-in-flight\s+mean/m);
  assert.match(sweep.stdout, /^2\s+0\s+0\s+0\s+0/m, "two slots: nobody waits");
  const html = readFileSync(path.join(dir, "r", "index.html"), "utf8");
  assert.match(html, /<svg[^>]*aria-label="wait for a slot against max-in-flight, per role"/);
  assert.equal(JSON.parse(readFileSync(path.join(dir, "r", "results.json"), "utf8")).length, 3);

  const text = await runCli(["simulate", file]);
  assert.match(
    text.stdout,
    /4 attempts over 21\.0 s, under incident: 1 in flight per process, queue, windows-2008 timing/,
  );
  assert.match(text.stdout, /every slot busy/);
});

test("CLI: every bad option and a bad trace end with one line and exit 2", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "synlimit-sim-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = writeTrace(dir, [{ id: 1, t: 0, dest: "a:1", durationMs: 1, outcome: "connected" }]);
  const bad = path.join(dir, "bad.trace");
  writeFileSync(
    bad,
    '{"id":1,"t":0,"dest":"a:1","durationMs":1,"outcome":"connected"}\n{"id":2}\n',
  );
  const empty = path.join(dir, "empty.trace");
  writeFileSync(empty, "\n");
  const cases: Array<[string[], RegExp]> = [
    [[good, "--profile", "nt4"], /profile must be one of incident/],
    [[good, "--max-in-flight", "0"], /max-in-flight must be a positive integer/],
    [[good, "--scope", "host"], /scope must be process or destination/],
    [[good, "--policy", "drop"], /policy must be queue, reject or rate/],
    [[good, "--timing", "-1"], /timing must be one of none, windows, windows-2008, linux/],
    [[good, "--timing", "syn:3000;giveup:21000"], /timing/],
    [[good, "--max-in-flight", "1.5"], /max-in-flight must be a positive integer/],
    [[good, "--max-in-flight", "1e400"], /max-in-flight must be a positive integer/],
    [[good, "--rate", "0"], /rate must be a positive number/],
    [[good, "--working-set", "x"], /working-set must be a non-negative integer/],
    [[good, "--sweep", "max-in-flight=5..1"], /range 5\.\.1 must go up/],
    [[good, "--sweep", "max-in-flight=1..99999"], /at most 10000 values/],
    [[good, "--sweep", "speed=1"], /--sweep must be NAME=VALUES/],
    [[good, "--sweep", "max-in-flight=1,x"], /max-in-flight must be a positive integer/],
    // Before, these were merged silently: rows of the second sweep only, twin rows, a flag ignored.
    [
      [good, "--sweep", "max-in-flight=1..3", "--sweep", "max-in-flight=4..5"],
      /--sweep max-in-flight is given twice: put all its values in one/,
    ],
    [[good, "--sweep", "max-in-flight=1,1,2"], /--sweep max-in-flight: 1 is given twice/],
    [[good, "--sweep", "max-in-flight=1..1e9"], /range 1\.\.1e9 must go up and have at most 10000/],
    [[good, "--sweep", "max-in-flight=1..2.5"], /range 1\.\.2\.5 must be two whole numbers/],
    [[good, "--sweep", "max-in-flight=1e1,10"], /max-in-flight: 1e1 and 10 are the same value/],
    [[good, "--sweep", "max-in-flight=1..3,03"], /max-in-flight: 3 and 03 are the same value/],
    [[good, "--sweep", "timing=21000,2.1e4"], /timing: 21000 and 2\.1e4 are the same value/],
    [[good, "--sweep", "timing=windows,syn:0,3000"], /"syn:0,3000"/],
    [[good, "--sweep", "policy=queue,reject,queue"], /--sweep policy: queue is given twice/],
    [
      [good, "--sweep", "max-in-flight=1..3", "--max-in-flight", "4"],
      /--max-in-flight and --sweep max-in-flight both set max-in-flight: give one of them/,
    ],
    [[good, "--workers", "0"], /--workers must be a positive integer/],
    [[good, "--role", "x"], /--role must be PORT=ROLE/],
    [[bad], /bad\.trace:2: "t" must be a non-negative number of milliseconds, got undefined/],
    [[dir], /cannot read .*: EISDIR \(a directory\)/],
    [[good, "--report", good], /--report .* is a file, not a directory/],
    [[empty], /has no attempts/],
    [[path.join(dir, "missing")], /cannot read .*missing: ENOENT/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(["simulate", ...args]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  const help = await runCli(["simulate", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--sweep <name=values>/);
});

/** Random attempts of every outcome to three hosts, a quarter following an earlier one. */
async function mixedWorkload(seed: number, length: number) {
  const { Prng } = await import("../../src/simulate/prng.js");
  const outcomes = ["connected", "refused", "timeout", "cancelled"] as const;
  const rng = new Prng(seed);
  let t = 0;
  const items = Array.from({ length }, (_, i) => {
    t += rng.nextUint32() % 5;
    const follows = i > 0 && rng.nextUint32() % 4 === 0;
    return {
      t,
      durationMs: rng.nextUint32() % 30,
      outcome: outcomes[rng.nextUint32() % 4] as (typeof outcomes)[number],
      dest: `127.0.0.${1 + (rng.nextUint32() % 3)}:1`,
      ...(follows && { parent: rng.nextUint32() % i, gapMs: rng.nextUint32() % 10 }),
    };
  });
  return workloadOf(items);
}

test("the fast path and the general engine give identical runs (queue, reject; both scopes)", async () => {
  const { simulateGeneral } = await import("../../src/simulate/engine.js");
  // 400 attempts for 20 seeds, then three runs of 20 000 attempts: tens of
  // thousands of events, which the fast loop processes in over a thousand
  // batches, carrying its state from one to the next.
  for (let seed = 1; seed <= 23; seed++) {
    const w = await mixedWorkload(seed, seed <= 20 ? 400 : 20_000);
    for (const config of [
      base,
      { ...base, maxInFlight: 3, failAtMs: 50 },
      { ...base, policy: "reject" as const, maxInFlight: 2 },
      { ...base, scope: "destination" as const },
    ]) {
      const fast = simulate(w, config);
      const general = simulateGeneral(w, config);
      assert.deepEqual(
        summarize(fast),
        summarize(general),
        `seed ${seed} ${JSON.stringify(config)}`,
      );
      assert.deepEqual(fast.start, general.start);
      assert.deepEqual(fast.end, general.end);
      assert.deepEqual(fast.fate, general.fate);
    }
  }
});

test("selection gives the nearest-rank percentiles a full sort gives, duplicates and all", async () => {
  const { selectKth } = await import("../../src/simulate/select.js");
  const { percentile } = await import("../../src/simulate/summary.js");
  const { Prng } = await import("../../src/simulate/prng.js");
  for (let seed = 1; seed <= 30; seed++) {
    const rng = new Prng(seed);
    // Sizes around the sampling threshold (600); values from a few distinct ones to all distinct.
    const n = 1 + (rng.nextUint32() % 5000);
    const distinct = 1 + (rng.nextUint32() % (seed % 3 === 0 ? 3 : 100_000));
    const values = Float64Array.from({ length: n }, () => (rng.nextUint32() % distinct) / 7);
    const sorted = Float64Array.from(values).sort();
    for (const p of [0.5, 0.99]) {
      const k = Math.min(n, Math.max(1, Math.ceil(p * n))) - 1;
      assert.equal(
        selectKth(Float64Array.from(values), k),
        percentile(sorted, p),
        `seed ${seed} p ${p}`,
      );
    }
  }
});

test("winxp-sp2: a host reached within the window neither waits nor takes a slot (port ignored)", () => {
  const xp = resolveLimiter({ profile: "winxp-sp2" });
  assert.equal(xp.config.knownReachableMs, 600_000);
  assert.equal(xp.config.fairness, "round-robin");
  // The tester's trace: one connect to .3:80, 12 dead attempts to .2:9, then .3 again.
  const w = workloadOf([
    { t: 0, durationMs: 1, dest: "127.0.0.3:80" },
    ...Array.from({ length: 12 }, (_, i) => ({
      t: 10 + i,
      durationMs: 21_000,
      outcome: "timeout" as const,
      dest: "127.0.0.2:9",
    })),
    { t: 200, durationMs: 1, dest: "127.0.0.3:80" },
    { t: 300, durationMs: 1, dest: "127.0.0.3:443" },
    { t: 400, durationMs: 1, dest: "127.0.0.4:80" },
  ]);
  const run = simulate(w, xp.config);
  assert.equal(run.start[13], 200, "known reachable: no wait behind the ten dead attempts");
  assert.equal(run.start[14], 300, "the same host on another port is known reachable too");
  // Dead attempts 1–10 take the ten slots at 10–19 ms and end 21 s later; 11, 12 and .4 wait in turn.
  assert.equal(run.start[11], 21_010, "the eleventh dead attempt waited for the first");
  assert.equal(run.start[15], 21_012, "a host never reached waits for a slot");
  assert.equal(run.maxInFlightSeen, 10, "uncounted attempts take no slot");

  // The window's edge, as the gate's: reached at 0, exempt until 600 000 ms inclusive.
  const one = { ...xp.config, maxInFlight: 1, failAtMs: 10_000_000 };
  const edge = workloadOf([
    { t: 0, durationMs: 0, dest: "127.0.0.3:80" },
    { t: 1, durationMs: 1, outcome: "timeout", dest: "127.0.0.2:9" },
    // refused: it does not renew the host's reachability.
    { t: 600_000, durationMs: 1, outcome: "refused", dest: "127.0.0.3:80" },
    { t: 600_001, durationMs: 1, dest: "127.0.0.3:80" },
  ]);
  const e = simulate(edge, one);
  assert.equal(e.start[2], 600_000);
  assert.equal(e.start[3], 10_000_001, "past the window: counted, waits for the slot");
  // Without the window the same run is the plain engine's (the fast path).
  const plain = simulate(edge, { ...one, knownReachableMs: null });
  assert.equal(plain.start[2], 10_000_001);
});

test("CLI: winxp-sp2 on the tester's trace; --timing and --sweep take the gate's timings; numbers as JSON", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "synlimit-sim-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = writeTrace(dir, [
    { id: 0, t: 0, dest: "127.0.0.3:80", durationMs: 1, outcome: "connected" },
    ...Array.from({ length: 12 }, (_, i) => ({
      id: i + 1,
      t: 10 + i,
      dest: "127.0.0.2:9",
      durationMs: 1000,
      outcome: "timeout" as const,
    })),
    { id: 13, t: 200, dest: "127.0.0.3:80", durationMs: 1, outcome: "connected" },
  ]);
  const xp = await runCli([
    "simulate",
    file,
    "--profile",
    "winxp-sp2",
    "--role",
    "80=web",
    "--json",
  ]);
  assert.equal(xp.code, 0, xp.stderr);
  const json = JSON.parse(xp.stdout);
  assert.equal(json.byRole.web.maxMs, 0, "the repeat to a known-reachable host did not wait");
  assert.equal(json.config.knownReachableMs, 600_000);
  assert.match(
    json.limiter,
    /10 in flight machine-wide .*hosts reached in the last 10 min not counted/,
  );
  const text = await runCli(["simulate", file, "--profile", "winxp-sp2"]);
  assert.match(
    text.stdout,
    /^14 attempts over .* 10 in flight machine-wide \(the trace is one process/m,
  );

  // One dead attempt, a login behind it: the login waits the schedule's give-up time.
  const small = path.join(dir, "s.trace");
  writeFileSync(
    small,
    [
      { id: 1, t: 0, dest: "127.0.0.2:9", durationMs: 1000, outcome: "timeout" as const },
      { id: 2, t: 100, dest: "127.0.0.1:389", durationMs: 0, outcome: "connected" as const },
    ]
      .map(formatRecord)
      .join(""),
  );
  const maxWait = async (...args: string[]) => {
    const r = await runCli(["simulate", small, "--json", ...args]);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout).waits.maxMs;
  };
  assert.equal(await maxWait("--timing", "windows-2008"), 20_900);
  assert.equal(await maxWait("--timing", "syn:0,3000;giveup:5000"), 4_900);
  assert.equal(await maxWait("--timing", "2e3"), 1_900);
  assert.equal(await maxWait("--max-in-flight", "1e1"), 0);
  const sweep = await runCli([
    "simulate",
    small,
    "--sweep",
    "timing=windows,windows-2008,syn:0,3000;giveup:5000",
    "--sweep",
    "max-in-flight=1e0,2",
    "--json",
  ]);
  assert.equal(sweep.code, 0, sweep.stderr);
  const points = JSON.parse(sweep.stdout) as Array<{
    labels: Record<string, string>;
    summary: { waits: { maxMs: number } };
  }>;
  assert.deepEqual(
    points.map((p) => [p.labels.timing, p.labels["max-in-flight"], p.summary.waits.maxMs]),
    [
      ["windows", "1e0", 20_900],
      ["windows", "2", 0],
      ["windows-2008", "1e0", 20_900],
      ["windows-2008", "2", 0],
      ["syn:0,3000;giveup:5000", "1e0", 4_900],
      ["syn:0,3000;giveup:5000", "2", 0],
    ],
  );
  const one = writeTrace(dir, [
    { id: 1, t: 0, dest: "127.0.0.1:1", durationMs: 1, outcome: "connected" },
  ]);
  assert.match((await runCli(["simulate", one])).stdout, /^1 attempt over /);
});

test("sweep report: a legend entry per line, and the profile swept in the title and the table", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "synlimit-sim-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = writeTrace(dir, [
    { id: 1, t: 0, dest: "127.0.0.3:9", durationMs: 3000, outcome: "timeout", role: "agent" },
    { id: 2, t: 100, dest: "127.0.0.1:389", durationMs: 0.5, outcome: "connected", role: "login" },
    { id: 3, t: 200, dest: "127.0.0.1:5432", durationMs: 0.5, outcome: "connected", role: "db" },
  ]);
  const r = await runCli([
    "simulate",
    file,
    "--profile",
    "winxp-sp2",
    "--sweep",
    "max-in-flight=1..3",
    "--workers",
    "1",
    "--report",
    path.join(dir, "r"),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /^wait for a slot, per simulation \(sweep of max-in-flight over winxp-sp2: /,
  );
  const { document } = parseHTML(readFileSync(path.join(dir, "r", "index.html"), "utf8"));
  assert.match(document.title, /sweep of max-in-flight over winxp-sp2/);
  const svg = document.querySelector("svg[aria-label^='wait for a slot against']");
  assert.ok(svg);
  // Every line drawn (one path per role and statistic) has its legend entry.
  const lines = svg.querySelectorAll("path[stroke]").length;
  const entries = [...document.querySelectorAll("ul.legend li")].map((li) =>
    li.textContent?.trim(),
  );
  assert.equal(lines, 6);
  assert.deepEqual(entries.sort(), [
    "agent mean",
    "agent p99",
    "db mean",
    "db p99",
    "login mean",
    "login p99",
  ]);
  // No text labels left at the lines' ends to overlap.
  assert.equal(svg.querySelectorAll("text[text-anchor='start']").length, 0);
});

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadTrace } from "../../src/record/read.js";
import { RoleMap } from "../../src/record/roles.js";
import { formatRecord, parseRecord } from "../../src/record/trace.js";
import { netnsCommand, netnsSupported } from "../helpers/netns.js";
import { cleanEnv, cliPath, registerUrl, runCli, runCommand } from "../helpers/run-cli.js";

const program = fileURLToPath(new URL("../helpers/record-program.js", import.meta.url));

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), "synlimit-record-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `source` as an ES module under `node --import synlimit/register`, recording to a trace. */
async function recordScript(
  t: { after(fn: () => void): void },
  source: string,
  env: Record<string, string>,
) {
  const dir = tempDir(t);
  const file = path.join(dir, "app.trace");
  const script = path.join(dir, "app.mjs");
  writeFileSync(script, source);
  const result = await run(
    [process.execPath, script],
    cleanEnv({ SYNLIMIT_RECORD: file, NODE_OPTIONS: `--import=${registerUrl}`, ...env }),
  );
  assert.equal(result.code, 0, result.stderr);
  return { stdout: result.stdout, trace: await loadTrace(file) };
}

function run(command: string[], env: NodeJS.ProcessEnv) {
  return runCommand(command[0] as string, command.slice(1), env);
}

test("record: every attempt of a real program, with outcomes, roles, a causal retry and the one pending at exit", {
  skip: !netnsSupported() && "needs root for a network namespace",
}, async (t) => {
  const file = path.join(tempDir(t), "app.trace");
  const result = await run(
    netnsCommand([
      process.execPath,
      cliPath,
      "record",
      "-o",
      file,
      "--role",
      "8080=web",
      "--role",
      "127.0.0.1:7=closed",
      "--role",
      "9=dead",
      "--",
      process.execPath,
      program,
    ]),
    cleanEnv(),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), { timedOut: "ETIMEDOUT" });
  const trace = await loadTrace(file);
  assert.match(result.stderr, new RegExp(`recorded ${trace.length} connect attempt`));
  const byRole = (role: string) => trace.filter((r) => r.role === role);

  const web = byRole("web");
  assert.equal(web.length, 2, "node:http and undici, one fresh connection each");
  for (const r of web) {
    assert.equal(r.outcome, "connected");
    assert.equal(r.dest, "127.0.0.1:8080");
  }

  const closed = byRole("closed");
  assert.deepEqual(
    closed.map((r) => r.outcome),
    ["refused", "refused"],
  );
  const [first, retry] = closed as [(typeof closed)[0], (typeof closed)[0]];
  assert.equal(retry.after, first.id, "the retry made from the error callback is linked");
  assert.ok((retry.gapMs ?? 0) >= 19, `gapMs ${retry.gapMs} covers the 20 ms timer`);
  assert.ok(retry.t >= first.t + first.durationMs + (retry.gapMs ?? 0) - 1);

  // The tarpit's own fillers connect (and are accepted) first.
  const dead = byRole("dead").filter((r) => r.outcome !== "connected");
  assert.deepEqual(
    dead.map((r) => r.outcome),
    ["timeout", "cancelled", "cancelled"],
  );
  const [timeout, cancelled, atExit] = dead as [
    (typeof dead)[0],
    (typeof dead)[0],
    (typeof dead)[0],
  ];
  assert.ok(timeout.durationMs >= 2_900, `the kernel gave up after ${timeout.durationMs} ms`);
  assert.ok(cancelled.durationMs >= 99 && cancelled.durationMs < timeout.durationMs);
  assert.ok(atExit.durationMs >= 49, "written at exit with the time it was pending");
  for (const r of trace)
    assert.equal(r.waitMs, undefined, `no limiter, no waitMs: ${JSON.stringify(r)}`);

  const ids = new Set(trace.map((r) => r.id));
  assert.equal(ids.size, trace.length);
  for (let i = 1; i < trace.length; i++) assert.ok(trace[i]?.t !== undefined);
});

test("SYNLIMIT_RECORD with node --import: unlimited, and child node processes are left alone", async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, "env.trace");
  const script = path.join(dir, "app.mjs");
  // Three connects at once to a refused port: unlimited means none waited.
  writeFileSync(
    script,
    `import net from "node:net";
import { execFileSync } from "node:child_process";
const s = net.createServer().listen(0, "127.0.0.1");
await new Promise((r) => s.once("listening", r));
const port = s.address().port;
s.close();
await Promise.all([1, 2, 3].map(() => new Promise((r) => net.connect(port, "127.0.0.1").on("error", r))));
process.stdout.write(execFileSync(process.execPath, ["-e", "process.stdout.write(String(process.env.SYNLIMIT_RECORD) + ' ' + process.env.NODE_OPTIONS)"]));
`,
  );
  const result = await run(
    [process.execPath, script],
    cleanEnv({ SYNLIMIT_RECORD: file, NODE_OPTIONS: `--import=${registerUrl}` }),
  );
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout.trim(),
    "undefined",
    "the child sees neither the recording nor the register hook",
  );
  const trace = await loadTrace(file);
  assert.equal(trace.length, 3);
  for (const r of trace) {
    assert.equal(r.outcome, "refused");
    assert.equal(r.waitMs, undefined, "no limiter: nobody waited");
    assert.equal(
      r.after,
      undefined,
      "concurrent attempts made by the program itself are not linked",
    );
  }
});

test("SYNLIMIT_RECORD under a limiter: every line carries waitMs, 0 included", async (t) => {
  const { trace } = await recordScript(
    t,
    `import net from "node:net";
const s = net.createServer().listen(0, "127.0.0.1");
await new Promise((r) => s.once("listening", r));
const port = s.address().port;
s.close();
await Promise.all([1, 2, 3].map(() => new Promise((r) => net.connect(port, "127.0.0.1").on("error", r))));
`,
    { SYNLIMIT_MAX_IN_FLIGHT: "1", SYNLIMIT_TIMING: "none" },
  );
  assert.equal(trace.length, 3);
  for (const r of trace) assert.equal(typeof r.waitMs, "number", JSON.stringify(r));
  assert.equal(Math.min(...trace.map((r) => r.waitMs as number)), 0, "the first did not wait");
});

test("SYNLIMIT_RECORD under an emulated deadline: a retry from the 'error' handler after the emulated timeout is linked", async (t) => {
  const tarpitUrl = new URL("../../src/targets/tarpit.js", import.meta.url).href;
  // A dead peer retried at once from each failure, as the lab's naive agent does: the
  // emulated OS (incident: windows-2008, 21 s × 0.01) ends each attempt, not the kernel.
  const { stdout, trace } = await recordScript(
    t,
    `import net from "node:net";
import { Tarpit } from ${JSON.stringify(tarpitUrl)};
const tarpit = await Tarpit.listen();
process.stdout.write(String(tarpit.port));
let tries = 0;
await new Promise((done) => {
  const go = () => {
    const s = net.connect(tarpit.port, "127.0.0.1");
    s.on("error", () => (++tries < 3 ? setImmediate(go) : done()));
  };
  go();
});
await tarpit.close();
`,
    { SYNLIMIT_PROFILE: "incident", SYNLIMIT_TIME_SCALE: "0.01" },
  );
  const dest = `127.0.0.1:${stdout.trim()}`;
  const timedOut = trace.filter((r) => r.dest === dest && r.outcome === "timeout");
  assert.equal(timedOut.length, 3, JSON.stringify(timedOut));
  const [first, second, third] = timedOut as [
    (typeof timedOut)[0],
    (typeof timedOut)[0],
    (typeof timedOut)[0],
  ];
  assert.equal(first.after, undefined);
  assert.equal(second.after, first.id, "the first retry follows the first emulated timeout");
  assert.equal(third.after, second.id, "the second retry follows the second");
  for (const r of [second, third]) assert.ok((r.gapMs ?? -1) >= 0);
});

test("record: bad options and an unwritable file end with one line", async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string[], RegExp]> = [
    [["record", "--", "node", "-e", "1"], /required option '-o, --output <file>'/],
    [
      ["record", "-o", path.join(dir, "x"), "--role", "login", "--", "node"],
      /--role must be PORT=ROLE/,
    ],
    [
      ["record", "-o", path.join(dir, "x"), "--role", "70000=x", "--", "node"],
      /--role must be PORT=ROLE/,
    ],
    [["record", "-o", path.join(dir, "no", "x"), "--", "node", "-e", "1"], /does not exist/],
    [["record", "-o", path.join(dir, "x"), "--", "true"], /wrote no trace/],
    [["record", "-o", dir, "--", "node", "-e", "1"], /--output .* is a directory/],
    [
      ["record", "-o", path.join(dir, "x"), "--", "/nonexistent/cmd"],
      /cannot run \/nonexistent\/cmd: ENOENT/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  assert.ok(statSync(dir).isDirectory(), "record must never remove a directory");
  const bad = await run(
    [process.execPath, "--import", registerUrl, "-e", "1"],
    cleanEnv({ SYNLIMIT_RECORD: path.join(dir, "missing", "t") }),
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^synlimit: cannot write the trace to .*ENOENT\n$/);
});

test("record: the program's exit code passes through", async (t) => {
  const r = await runCli([
    "record",
    "-o",
    path.join(tempDir(t), "t"),
    "--",
    process.execPath,
    "-e",
    "process.exit(7)",
  ]);
  assert.equal(r.code, 7);
  assert.match(r.stderr, /recorded 0 connect attempt/);
});

test("trace lines: format and parse round-trip; bad lines name file and line", () => {
  const r = {
    id: 3,
    t: 1.5,
    dest: "[::1]:389",
    durationMs: 0.25,
    outcome: "connected" as const,
    role: "login",
    after: 1,
    gapMs: 2,
  };
  assert.deepEqual(parseRecord(formatRecord(r), "x", 1), r);
  for (const dest of ["127.0.0.1:389", "ldap.example:636", "[fe80::1%eth0]:22"]) {
    assert.equal(parseRecord(formatRecord({ ...r, dest }), "x", 1).dest, dest);
  }
  const bad: Array<[string, RegExp]> = [
    ["nope", /x:4: not a JSON object/],
    ["[]", /not a JSON object/],
    [
      '{"id":1,"t":-5,"dest":"a:1","durationMs":0,"outcome":"connected"}',
      /x:4: "t" must be a non-negative/,
    ],
    [
      '{"id":1,"t":0,"dest":"nohostport","durationMs":0,"outcome":"connected"}',
      /x:4: "dest" must be "host:port"/,
    ],
    ['{"id":1,"t":0,"dest":"a:0","durationMs":0,"outcome":"connected"}', /"dest" must be/],
    ['{"id":1,"t":0,"dest":"::1:5","durationMs":0,"outcome":"connected"}', /"dest" must be/],
    ['{"id":-1,"t":0,"dest":"a:1","durationMs":0,"outcome":"connected"}', /"id" must be/],
    ['{"id":1,"t":0,"dest":"a:1","durationMs":-1,"outcome":"connected"}', /"durationMs" must be/],
    [
      '{"id":1,"t":0,"dest":"a:1","durationMs":1,"outcome":"ok"}',
      /"outcome" must be one of connected, refused/,
    ],
    [
      '{"id":1,"t":0,"dest":"a:1","durationMs":1,"outcome":"connected","after":1,"gapMs":0}',
      /another attempt's id/,
    ],
    [
      '{"id":1,"t":0,"dest":"a:1","durationMs":1,"outcome":"connected","after":0}',
      /"gapMs" must be/,
    ],
  ];
  for (const [line, pattern] of bad) assert.throws(() => parseRecord(line, "x", 4), pattern);
});

test("role map: port and host:port, exact wins", () => {
  const roles = RoleMap.parse(["389=login", "127.0.0.2:389=ldap2,[::1]:5432=db"]);
  assert.equal(roles.roleOf("127.0.0.1", 389), "login");
  assert.equal(roles.roleOf("127.0.0.2", 389), "ldap2");
  assert.equal(roles.roleOfDest("[::1]:5432"), "db");
  assert.equal(roles.roleOfDest("127.0.0.1:1"), undefined);
  assert.deepEqual(RoleMap.parse([roles.toString()]).toString(), roles.toString());
});

test("trace reader: unknown after and duplicate ids are errors with a line number", async (t) => {
  const file = path.join(tempDir(t), "t");
  writeFileSync(
    file,
    '{"id":1,"t":0,"dest":"a:1","durationMs":0,"outcome":"connected","after":2,"gapMs":0}\n',
  );
  await assert.rejects(loadTrace(file), /:1: "after" 2 is not an earlier attempt's id/);
  writeFileSync(
    file,
    `${formatRecord({ id: 1, t: 0, dest: "a:1", durationMs: 0, outcome: "connected" })}\n${formatRecord({ id: 1, t: 0, dest: "a:1", durationMs: 0, outcome: "connected" })}`,
  );
  await assert.rejects(loadTrace(file), /:3: id 1 appears twice/);
  assert.equal(readFileSync(file, "utf8").split("\n").length, 4);
});

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCommand } from "../helpers/run-cli.js";

const script = fileURLToPath(new URL("../../../scripts/no-leftovers.mjs", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the guard around `node -e code`. */
function guarded(code: string): Promise<Run> {
  return runCommand(process.execPath, [script, process.execPath, "-e", code], process.env);
}

function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/ Z /.test(stat.slice(stat.lastIndexOf(")")));
  } catch {
    return false;
  }
}

async function gone(pid: number): Promise<boolean> {
  // SIGKILL is delivered at once; the exit is observed when /proc says so.
  for (let i = 0; i < 200 && running(pid); i++) await new Promise((r) => setImmediate(r));
  while (running(pid)) await new Promise((r) => setTimeout(r, 20));
  return true;
}

// Starts a detached node that never exits, prints its pid, and returns.
const leaveProcess = (env: string) => `
  const { spawn } = require("node:child_process");
  const c = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", require("node:os").tmpdir()],
    { detached: true, stdio: "ignore", env: ${env} });
  c.unref();
  console.log(c.pid);`;

const linux = process.platform === "linux";

test("passes the command's exit code through when nothing is left", async () => {
  const ok = await guarded("process.exitCode = 0");
  assert.deepEqual([ok.code, ok.stderr], [0, ""]);
  const failed = await guarded("process.exitCode = 3");
  assert.deepEqual([failed.code, failed.stderr], [3, ""]);
});

test("the command's temp dir is shared like /tmp, so peers that drop root can use it", async () => {
  const run = await guarded(
    'const { statSync } = require("node:fs"); console.log((statSync(require("node:os").tmpdir()).mode & 0o7777).toString(8));',
  );
  assert.deepEqual([run.code, run.stdout.trim()], [0, "1777"]);
});

test("fails naming a process the command left running, and stops it", {
  skip: !linux && "needs /proc",
}, async () => {
  const run = await guarded(leaveProcess("process.env"));
  const pid = Number(run.stdout.trim());
  assert.ok(pid > 0);
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`^synlimit test: the tests left behind pid ${pid} \\(`));
  assert.equal(run.stderr.trim().split("\n").length, 1);
  assert.ok(await gone(pid));
});

test("finds a leftover that was started with a fresh environment", {
  skip: !linux && "needs /proc",
}, async () => {
  // No token in its environment; its command line names the run's temp dir.
  const run = await guarded(leaveProcess("{}"));
  const pid = Number(run.stdout.trim());
  assert.equal(run.code, 1);
  assert.match(run.stderr, new RegExp(`left behind pid ${pid} `));
  assert.ok(await gone(pid));
});

test("fails naming a temp dir the command left, and removes it", async () => {
  const run = await guarded(`
    const { mkdtempSync } = require("node:fs");
    console.log(mkdtempSync(require("node:path").join(require("node:os").tmpdir(), "synlimit-x-")));`);
  const dir = run.stdout.trim();
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^synlimit test: the tests left behind \S+synlimit-x-\w+\n$/);
  assert.ok(run.stderr.includes(dir));
  assert.equal(existsSync(dir), false);
});

test("keeps a failing command's own exit code when it also leaves something", async () => {
  const run = await guarded(`
    require("node:fs").writeFileSync(require("node:os").tmpdir() + "/left", "");
    process.exitCode = 4;`);
  assert.equal(run.code, 4);
  assert.match(run.stderr, /left behind \S+\/left\n$/);
});

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { cleanEnv, cliPath } from "../helpers/run-cli.js";

/**
 * The write end of a real pipe (a FIFO) whose reader has already gone, as
 * after `synlimit … | head -1` once head has its line: every write fails
 * with EPIPE, deterministically.
 */
function closedPipe(t: TestContext): number {
  const dir = mkdtempSync(join(tmpdir(), "synlimit-pipe-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = join(dir, "out");
  execFileSync("mkfifo", [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY);
  closeSync(reader);
  return writer;
}

async function runIntoClosedPipe(t: TestContext, args: string[]) {
  const out = closedPipe(t);
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: cleanEnv(),
    stdio: ["ignore", out, "pipe"],
  });
  closeSync(out);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("close", (c, s) => resolve([c, s])),
  );
  return { code, signal, stderr };
}

const commands: Array<{ args: string[]; code: number }> = [
  { args: ["profiles"], code: 0 },
  { args: ["profiles", "--json"], code: 0 },
  { args: ["--help"], code: 0 },
  { args: ["--version"], code: 0 },
  { args: ["demo"], code: 0 },
  // Servers: their first line finds the reader gone; they close as on Ctrl-C.
  { args: ["tarpit"], code: 0 },
  { args: ["echo", "--tcp"], code: 0 },
  { args: ["gate", "--port", "0", "--no-admin", "--identity", "global"], code: 0 },
];

for (const { args, code } of commands) {
  test(`synlimit ${args.join(" ")} ends quietly when stdout's reader has gone`, {
    timeout: 60_000,
  }, async (t) => {
    const r = await runIntoClosedPipe(t, args);
    // Servers log on stderr; nothing there may be about the closed pipe.
    assert.doesNotMatch(r.stderr, /EPIPE|ERR_STREAM|\n\s+at /);
    if (args[0] !== "echo" && args[0] !== "gate") assert.equal(r.stderr, "");
    assert.deepEqual([r.code, r.signal], [code, null]);
  });
}

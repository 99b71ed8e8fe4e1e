#!/usr/bin/env node
// `node scripts/no-leftovers.mjs COMMAND ARGS…`: runs the test command, then
// fails if it left anything behind — a process it started (a PostgreSQL or
// slapd peer, a CLI child, a node test child) or a file in its temp dir.
// The command gets a temp dir of its own (TMPDIR), so what is left there is
// the run's, and a token in its environment marks every process it starts.
// Leftovers are named in one line, then stopped and removed, so a failed run
// does not leave them for the next one either.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const TOKEN_VARIABLE = "NO_LEFTOVERS_TOKEN";
const root = resolve(fileURLToPath(new URL("..", import.meta.url)));

const procAvailable = process.platform === "linux";

function pids() {
  if (!procAvailable) return [];
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

function read(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** The command line of a process still running (not a zombie), or null. */
function liveCommandLine(pid) {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat || / Z /.test(stat.slice(stat.lastIndexOf(")")))) return null;
  const cmdline = read(`/proc/${pid}/cmdline`);
  return cmdline ? cmdline.replace(/\0+$/, "").replaceAll("\0", " ") : null;
}

/** Processes started since `before` that belong to this run. */
function strays(before, token, runTmp) {
  const found = [];
  for (const pid of pids()) {
    if (before.has(pid) || pid === process.pid) continue;
    const cmdline = liveCommandLine(pid);
    if (cmdline === null) continue;
    const environ = read(`/proc/${pid}/environ`) ?? "";
    // A child spawned with a fresh environment loses the token; its command
    // line still names this repository or the run's temp dir.
    const ours =
      environ.split("\0").includes(`${TOKEN_VARIABLE}=${token}`) ||
      cmdline.includes(runTmp) ||
      cmdline.includes(root);
    if (ours) found.push({ pid, cmdline });
  }
  return found;
}

/** Polls until `check` finds nothing or the deadline passes: a stopped peer may take a moment to exit. */
async function settle(check, ms) {
  const until = Date.now() + ms;
  let found = check();
  while (found.length > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
    found = check();
  }
  return found;
}

async function main(argv) {
  if (argv.length === 0) {
    process.stderr.write("usage: node scripts/no-leftovers.mjs COMMAND [ARGS…]\n");
    return 2;
  }
  const before = new Set(pids());
  const runTmp = mkdtempSync(join(tmpdir(), "synlimit-test-run-"));
  // As /tmp is: peers that drop root (PostgreSQL runs as postgres) must reach their own dirs.
  chmodSync(runTmp, 0o1777);
  const token = runTmp.slice(runTmp.lastIndexOf("-") + 1);
  const child = spawn(argv[0], argv.slice(1), {
    stdio: "inherit",
    env: { ...process.env, TMPDIR: runTmp, [TOKEN_VARIABLE]: token },
  });
  const forward = (signal) => child.kill(signal);
  process.on("SIGINT", forward).on("SIGTERM", forward);
  const code = await new Promise((done) => {
    child.once("error", (error) => {
      process.stderr.write(`synlimit test: cannot run ${argv[0]}: ${error.message}\n`);
      done(2);
    });
    child.once("close", (status, signal) => done(status ?? (signal ? 1 : 0)));
  });

  const processes = await settle(() => strays(before, token, runTmp), 3000);
  const files = readdirSync(runTmp);
  const problems = [
    ...processes.map((p) => `pid ${p.pid} (${p.cmdline.slice(0, 120)})`),
    ...files.map((f) => join(runTmp, f)),
  ];
  for (const p of processes) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {}
  }
  rmSync(runTmp, { recursive: true, force: true });
  if (problems.length > 0) {
    process.stderr.write(`synlimit test: the tests left behind ${problems.join("; ")}\n`);
    return code === 0 ? 1 : code;
  }
  return code;
}

process.exitCode = await main(process.argv.slice(2));

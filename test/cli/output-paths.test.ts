import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { formatRecord } from "../../src/record/trace.js";
import { finished, startCli } from "../helpers/run-cli.js";

// Every command that writes to a path checks it before its work: a path that
// cannot be written is one line and exit 2, never a stack, a hang (Node's
// recursive mkdir spins forever under /proc) or a lab run thrown away.

const dir = mkdtempSync(path.join(tmpdir(), "synlimit-paths-"));
const trace = path.join(dir, "app.trace");
writeFileSync(
  trace,
  formatRecord({ id: 1, t: 0, dest: "127.0.0.1:1", durationMs: 1, outcome: "connected" }),
);
const file = path.join(dir, "file");
writeFileSync(file, "");
const underFile = path.join(file, "sub");
const capture = path.join(dir, "none.pcap");
const procMissing = "/proc/synlimit-nope";
const onLinux = process.platform === "linux";

/** Runs the CLI; killed when the test ends, so the old busy loop cannot outlive it. */
async function run(t: { after: (fn: () => void) => void }, args: string[]) {
  const child = startCli(args);
  t.after(() => child.kill("SIGKILL"));
  return finished(child);
}

const cases: Array<{ args: string[]; message: RegExp; linuxOnly?: boolean }> = [
  {
    args: ["simulate", trace, "--report", procMissing],
    message: /^synlimit: --report \/proc\/synlimit-nope: cannot create directory .*\(ENOENT\)$/,
    linuxOnly: true,
  },
  {
    args: ["simulate", trace, "--report", "/proc/1/nope"],
    message: /^synlimit: --report \/proc\/1\/nope: cannot create directory/,
    linuxOnly: true,
  },
  {
    args: ["simulate", trace, "--report", underFile],
    message: /^synlimit: --report .*sub: .*file is a file, not a directory$/,
  },
  {
    args: ["lab", "--scenario", "baseline", "--window", "10", "--report", procMissing],
    message: /^synlimit: --report \/proc\/synlimit-nope: cannot create directory/,
    linuxOnly: true,
  },
  {
    args: ["lab", "--scenario", "baseline", "--window", "10", "--report", underFile],
    message: /^synlimit: --report .*sub: .*file is a file, not a directory$/,
  },
  {
    args: ["analyze", capture, "--report", procMissing],
    message: /^synlimit: --report \/proc\/synlimit-nope: cannot create directory/,
    linuxOnly: true,
  },
  {
    args: ["analyze", capture, "--report", underFile],
    message: /^synlimit: --report .*sub: .*file is a file, not a directory$/,
  },
  {
    args: ["analyze", capture, "--trace", "/proc/synlimit.trace"],
    message: /^synlimit: --trace \/proc\/synlimit\.trace: cannot write .*\((ENOENT|EACCES)\)$/,
    linuxOnly: true,
  },
  {
    args: ["analyze", capture, "--trace", path.join(underFile, "x.trace")],
    message: /^synlimit: --trace .*x\.trace: .*file is a file, not a directory$/,
  },
  {
    args: ["record", "-o", "/proc/synlimit.trace", "--", process.execPath, "-e", "1"],
    message: /^synlimit: --output \/proc\/synlimit\.trace: cannot write .*\((ENOENT|EACCES)\)$/,
    linuxOnly: true,
  },
];

for (const { args, message, linuxOnly } of cases) {
  test(`${args.join(" ")}: one line, exit 2, before any work`, {
    skip: linuxOnly && !onLinux ? "needs /proc" : false,
    timeout: 60_000,
  }, async (t) => {
    const r = await run(t, args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `only the error, no progress or stack:\n${r.stderr}`);
    assert.match(lines[0] ?? "", message);
  });
}

test("a --report directory that does not exist is made with its parents", async (t) => {
  const report = path.join(dir, "new", "deeper");
  const r = await run(t, ["simulate", trace, "--report", report]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(path.join(report, "index.html")));
});

test("a refused --trace leaves no empty file behind", async (t) => {
  const out = path.join(dir, "left.trace");
  // The capture is missing: the run fails after the --trace check tried the file.
  const r = await run(t, ["analyze", capture, "--trace", out]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(existsSync(out), false);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

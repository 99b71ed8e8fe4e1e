import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { childErrorLine } from "../../src/lab/run.js";

/** The stderr a real Node child prints when it dies of `source`. */
function stderrOf(t: { after: (fn: () => void) => void }, source: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), "synlimit-child-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, "child.js");
  writeFileSync(file, source);
  const r = spawnSync(process.execPath, [file], { encoding: "utf8" });
  assert.equal(r.status, 1, r.stderr);
  return r.stderr;
}

test("a child dying of a rejection whose stack starts at Error.captureStackTrace: its error line, not the quoted source", (t) => {
  // As pg-pool rejects a failed connect: Node quotes the top frame's source
  // line, "    Error.captureStackTrace(err)", above the error's own line.
  const stderr = stderrOf(
    t,
    [
      "async function connect() {",
      '  const err = new Error("connect timed out 127.0.0.1:1")',
      "  await null",
      "    Error.captureStackTrace(err)",
      "  throw err",
      "}",
      "connect()",
      "",
    ].join("\n"),
  );
  assert.match(stderr, /^\s+Error\.captureStackTrace\(err\)$/m, "the trap is in the stderr");
  assert.equal(childErrorLine(stderr), "Error: connect timed out 127.0.0.1:1");
});

test("a child's coded error keeps its class and code", (t) => {
  const stderr = stderrOf(
    t,
    'throw Object.assign(new RangeError("scale too small"), { code: "ERR_X" });\n',
  );
  assert.equal(childErrorLine(stderr), "RangeError: scale too small");
});

test("no error line: the last lines", () => {
  assert.equal(childErrorLine("a\nb\nc\nd\n"), "b | c | d");
});

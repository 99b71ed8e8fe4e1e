import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const script = fileURLToPath(new URL("../../../scripts/provision.mjs", import.meta.url));
const root = process.getuid?.() === 0;

function provision(args: string[], asUid?: number) {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(asUid === undefined ? {} : { uid: asUid, gid: asUid }),
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  return new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once("close", (code) => resolve({ code, out })),
  );
}

test("says nothing and goes on when every package the tests need is installed", async () => {
  // npm test runs the script before the tests, so by now they are all there.
  assert.deepEqual(await provision([]), { code: 0, out: "" });
});

test("without root, stops with one line naming what is missing and the command that installs it", {
  skip: process.platform !== "linux" && "Debian only",
}, async () => {
  // As nobody (or as the unprivileged caller): nothing may be installed.
  const { code, out } = await provision(
    ["synlimit-absent-package", "curl"],
    root ? 65534 : undefined,
  );
  assert.equal(code, 1);
  assert.equal(
    out,
    "synlimit test: missing synlimit-absent-package; install with: " +
      "sudo apt-get install -y --no-install-recommends synlimit-absent-package\n",
  );
});

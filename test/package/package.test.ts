import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  license: string;
  scripts: Record<string, string>;
  exports: Record<string, string | Record<string, string>>;
  sideEffects: string[] | boolean;
};

/** The npm CLI: the one running `npm test`, else the one on PATH. */
const npmCli = realpathSync(
  process.env.npm_execpath ??
    execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim(),
);

function npm(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [npmCli, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.once("close", (code) => resolve({ code, out }));
  });
}

let packed: Set<string> | undefined;
/** What `npm pack` would put in the tarball (without running the build again). */
async function packList(): Promise<Set<string>> {
  if (packed) return packed;
  const { code, out } = await npm(["pack", "--dry-run", "--json", "--ignore-scripts"], {
    cwd: root,
  });
  assert.equal(code, 0, out);
  const [info] = JSON.parse(out.slice(out.indexOf("["))) as [{ files: Array<{ path: string }> }];
  packed = new Set(info.files.map((f) => f.path));
  return packed;
}

const exportTargets = Object.entries(manifest.exports).filter(([key]) => key !== "./package.json");

test("ships a LICENSE with the license package.json declares", async () => {
  assert.equal(manifest.license, "MIT");
  assert.match(readFileSync(join(root, "LICENSE"), "utf8"), /^MIT License\n/);
  assert.ok((await packList()).has("LICENSE"));
});

test("every shipped source map points to sources that are shipped too", async () => {
  const files = await packList();
  const dangling: string[] = [];
  for (const file of files) {
    if (file.endsWith(".js")) {
      const text = readFileSync(join(root, file), "utf8");
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text)?.[1];
      if (url && !files.has(posix.join(posix.dirname(file), url)))
        dangling.push(`${file} → ${url}`);
    }
    if (file.endsWith(".map")) {
      const map = JSON.parse(readFileSync(join(root, file), "utf8")) as { sources: string[] };
      for (const s of map.sources) {
        const source = posix.normalize(posix.join(posix.dirname(file), s));
        if (!files.has(source)) dangling.push(`${file} → ${source}`);
      }
    }
  }
  assert.deepEqual(dangling, []);
});

test("every export has a types condition first, and both files are shipped", async () => {
  const files = await packList();
  assert.ok(exportTargets.length >= 5);
  for (const [key, target] of exportTargets) {
    assert.equal(typeof target, "object", `${key} has conditions`);
    const conditions = target as Record<string, string>;
    assert.deepEqual(Object.keys(conditions), ["types", "default"], key);
    for (const path of Object.values(conditions)) {
      assert.ok(files.has(path.replace(/^\.\//, "")), `${key}: ${path} is shipped`);
    }
  }
});

test("sideEffects names only synlimit/register, and only it acts on import", async () => {
  assert.deepEqual(manifest.sideEffects, ["./dist/src/emulate/register.js"]);
  // A bad SYNLIMIT_* value is refused by the module that acts on import, and
  // ignored by every module that only defines things.
  const env = { ...process.env, SYNLIMIT_MAX_IN_FLIGHT: "lots" };
  for (const [key, target] of exportTargets) {
    const file = join(root, (target as Record<string, string>).default as string);
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ["--input-type=module", "-e", `await import(${JSON.stringify(file)});`],
        {
          env,
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        out += d;
      });
      child.once("close", (code) => resolve({ code, out }));
    });
    if (key === "./register") {
      assert.equal(run.code, 2, run.out);
      assert.match(run.out, /^synlimit: SYNLIMIT_MAX_IN_FLIGHT must be/);
    } else {
      // Exits on its own (no handle left open) and says nothing.
      assert.deepEqual(run, { code: 0, out: "" }, key);
    }
  }
});

test("the tarball holds no native build, install script, tests or benchmarks", async () => {
  const files = [...(await packList())];
  const unwanted = files.filter((f) =>
    /(^|\/)(binding\.gyp|build\/|native\/)|\.(c|node)$|^dist\/(test|bench)\/|^test\/|^bench\//.test(
      f,
    ),
  );
  assert.deepEqual(unwanted, []);
  for (const hook of ["preinstall", "install", "postinstall"]) {
    assert.equal(manifest.scripts[hook], undefined, `no ${hook} script`);
  }
});

test("a consumer installs the tarball without a compiler and uses synlimit/guard and synlimit/register", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "synlimit-consumer-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const packed = await npm(["pack", "--ignore-scripts", "--pack-destination", dir], { cwd: root });
  assert.equal(packed.code, 0, packed.out);
  const tarball = join(dir, packed.out.trim().split("\n").at(-1) as string);
  assert.ok(existsSync(tarball), packed.out);

  // A PATH with node, npm and sh only: no cc, make or python3 for node-gyp to find.
  const bin = join(dir, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "node"));
  symlinkSync(npmCli, join(bin, "npm"));
  symlinkSync("/bin/sh", join(bin, "sh"));
  const app = join(dir, "app");
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    '{ "name": "consumer", "private": true, "type": "module" }',
  );
  const env = { ...process.env, PATH: bin };
  const install = await npm(
    ["install", "--prefer-offline", "--no-audit", "--no-fund", "--foreground-scripts", tarball],
    { cwd: app, env },
  );
  assert.equal(install.code, 0, install.out);
  assert.doesNotMatch(install.out, /gyp|sock_diag|sockdiag/i);
  const installed = join(app, "node_modules", "synlimit");
  assert.equal(existsSync(join(installed, "build")), false, "nothing was compiled");
  assert.equal(existsSync(join(app, "node_modules", "synlimit-sockdiag")), false);

  const use = (args: string[], extraEnv: Record<string, string> = {}) =>
    execFileSync(process.execPath, args, {
      cwd: app,
      env: { ...env, ...extraEnv },
      encoding: "utf8",
    });
  assert.equal(
    use([
      "--input-type=module",
      "-e",
      'const g = await import("synlimit/guard"); console.log(typeof g.ReconnectingLink);',
    ]).trim(),
    "function",
  );
  const summary = use(
    [
      "--import",
      "synlimit/register",
      "--input-type=module",
      "-e",
      'const { emulationSummary } = await import("synlimit"); console.log(JSON.stringify(emulationSummary()));',
    ],
    { SYNLIMIT_PROFILE: "incident" },
  );
  assert.deepEqual(JSON.parse(summary), { profile: "incident", timeScale: 1 });

  // The lab's and the reports' packages are optional peers: not installed…
  for (const heavy of ["@electric-sql/pglite", "pg", "ldapts", "@observablehq/plot", "linkedom"]) {
    assert.equal(existsSync(join(app, "node_modules", heavy)), false, `${heavy} was installed`);
  }
  // …and the lab says in one line what to add, instead of a module-not-found trace.
  const lab = spawnSync(process.execPath, [join(installed, "dist/src/cli/main.js"), "lab"], {
    cwd: app,
    env,
    encoding: "utf8",
  });
  assert.notEqual(lab.status, 0);
  assert.equal(lab.stdout, "");
  assert.match(
    lab.stderr,
    /^synlimit: synlimit lab needs .*@electric-sql\/pglite@[\d.]+.*: npm install .*\(SYNLIMIT_MISSING_PACKAGE\)\n$/,
  );
});

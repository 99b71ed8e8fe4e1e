import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { SocksClient } from "socks";
import { EVENT_4226_TEXT } from "../../src/gate/gate.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { cleanEnv, cliPath, firstLine, runCli, startForTest } from "../helpers/run-cli.js";

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "synlimit-gate-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function httpGetText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

async function getJson(port: number, path: string): Promise<unknown> {
  return JSON.parse(await httpGetText(port, path));
}

function assertOneLineError(stderr: string, message: RegExp): void {
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0] ?? "", /^synlimit: /);
  assert.match(lines[0] ?? "", message);
}

test("gate --help shows curl and proxychains4 examples", async () => {
  const r = await runCli(["gate", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /curl --socks5-hostname 127\.0\.0\.1:1080/);
  assert.match(r.stdout, /curl -x http:\/\/127\.0\.0\.1:1080/);
  assert.match(r.stdout, /proxychains4 -q -f \.\/proxychains\.conf/);
  assert.match(r.stdout, /strict_chain/);
  // What the default admin API exposes, and the ways to close it.
  assert.match(r.stdout, /WITHOUT authentication/);
  assert.match(r.stdout, /--admin-token-file/);
  assert.match(r.stdout, /--admin-socket/);
});

test("gate usage errors are one line, exit 2", async (t) => {
  const dir = await tempDir(t);
  const nonLoopback = await runCli(["gate", "--host", "0.0.0.0", "--port", "0", "--no-admin"]);
  assert.equal(nonLoopback.code, 2);
  assertOneLineError(nonLoopback.stderr, /loopback/);
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ limits: { policy: "fifo" } }));
  const r = await runCli(["gate", "--config", bad]);
  assert.equal(r.code, 2);
  assertOneLineError(r.stderr, /bad\.json: limits\.policy: /);
  const notJson = join(dir, "not.json");
  writeFileSync(notJson, "{ port: 1 ");
  assertOneLineError((await runCli(["gate", "--config", notJson])).stderr, /not valid JSON/);
  assertOneLineError(
    (await runCli(["gate", "--identity", "pid"])).stderr,
    /expected one of process, exe/,
  );
  const users = join(dir, "users");
  writeFileSync(users, "alice:top-secret\nmalformed-secret-line\n");
  const u = await runCli(["gate", "--port", "0", "--no-admin", "--users-file", users]);
  assertOneLineError(u.stderr, /users file line 2/);
  assert.doesNotMatch(u.stderr, /secret/);
});

test("gate runs from a config file, logs Event 4226 when a limit is hit, never logs a password, exits 0 on SIGTERM", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const dir = await tempDir(t);
  const config = join(dir, "gate.json");
  const password = "correct-horse-battery";
  writeFileSync(
    config,
    JSON.stringify({
      port: 0,
      identity: "user",
      limits: { profile: "incident" },
      identities: { "user:batch": { profile: "winxp-sp2" } },
      timeScale: 0.01,
      users: [{ username: "alice", password }],
      admin: { port: 0 },
      logLevel: "debug",
    }),
  );
  const { child, result } = startForTest(t, ["gate", "--config", config, "--json"]);
  const info = JSON.parse(await firstLine(child)) as { port: number; admin: { port: number } };
  const limits = (await getJson(info.admin.port, "/limits")) as {
    identities: Record<string, { maxInFlight: number }>;
  };
  assert.equal(limits.identities["user:batch"]?.maxInFlight, 10);

  const connect = (pw: string) =>
    SocksClient.createConnection({
      proxy: { host: "127.0.0.1", port: info.port, type: 5, userId: "alice", password: pw },
      command: "connect",
      destination: { host: "127.0.0.1", port: tarpit.port },
      timeout: 30_000,
    });
  // Two attempts of one user against a dead peer: the second waits (limit hit),
  // both time out at 21 s × 0.01.
  const outcomes = await Promise.allSettled([connect(password), connect(password)]);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ["rejected", "rejected"],
  );
  await assert.rejects(connect("wrong-password-xyz"), /authentication/i);

  child.kill("SIGTERM");
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  const logs = stderr
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const warning = logs.find((l) => l.eventId === 4226);
  assert.ok(warning, stderr);
  assert.equal(warning.msg, EVENT_4226_TEXT);
  assert.equal(warning.identity, "user:alice");
  assert.equal(warning.level, 40);
  assert.ok(logs.some((l) => l.msg === "attempt timeout"));
  assert.ok(logs.some((l) => l.msg === "client closed" && l.reason === "authentication failed"));
  assert.doesNotMatch(stderr, new RegExp(password));
  assert.doesNotMatch(stderr, /wrong-password-xyz/);
  assert.equal(logs.at(-1)?.msg, "gate closed");
});

/** Holds a loopback port for the test's length. */
async function takenPort(t: TestContext): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  t.after(() => s.close());
  await once(s, "listening");
  return (s.address() as net.AddressInfo).port;
}

test("gate with its port or its admin port taken: one line naming the flag, exit 2, SYNLIMIT_ADDRESS_IN_USE", async (t) => {
  const port = await takenPort(t);
  const proxy = await runCli(["gate", "--port", String(port), "--no-admin"]);
  assert.equal(proxy.code, 2);
  assertOneLineError(
    proxy.stderr,
    new RegExp(`127\\.0\\.0\\.1:${port} is already in use: choose another --port`),
  );
  assert.match(proxy.stderr, / \(SYNLIMIT_ADDRESS_IN_USE\)\n$/);
  const admin = await runCli(["gate", "--port", "0", "--admin-port", String(port)]);
  assert.equal(admin.code, 2);
  assertOneLineError(
    admin.stderr,
    /admin API 127\.0\.0\.1:\d+ is already in use: choose another --admin-port/,
  );
  assert.match(admin.stderr, / \(SYNLIMIT_ADDRESS_IN_USE\)\n$/);
});

test("gate messages name the flags typed: --allow-non-loopback, --users-file, --timing", async () => {
  const open = await runCli(["gate", "--host", "0.0.0.0", "--port", "0", "--no-admin"]);
  assert.equal(open.code, 2);
  assertOneLineError(
    open.stderr,
    /--host 0\.0\.0\.0 is not a loopback address.*--allow-non-loopback and --users-file/,
  );
  const noUsers = await runCli([
    "gate",
    "--host",
    "0.0.0.0",
    "--allow-non-loopback",
    "--port",
    "0",
    "--no-admin",
  ]);
  assert.equal(noUsers.code, 2);
  assertOneLineError(noUsers.stderr, /--allow-non-loopback needs --users-file/);
  assert.doesNotMatch(open.stderr + noUsers.stderr, /allowNonLoopback|option users/);
  const huge = await runCli(["gate", "--timing", "9".repeat(400), "--port", "0", "--no-admin"]);
  assert.equal(huge.code, 2);
  assertOneLineError(huge.stderr, /--timing.*positive finite number of milliseconds/);
});

test("one validation of limit settings: the config file takes what the API takes ({ connectTimeoutMs }) and refuses what it refuses", async (t) => {
  const dir = await tempDir(t);
  const good = join(dir, "good.json");
  writeFileSync(
    good,
    JSON.stringify({ port: 0, admin: false, limits: { timing: { connectTimeoutMs: 500 } } }),
  );
  const { child } = startForTest(t, ["gate", "--config", good, "--json"]);
  assert.ok(JSON.parse(await firstLine(child)).port > 0);
  child.kill("SIGTERM");
  const tiny = join(dir, "tiny.json");
  writeFileSync(tiny, JSON.stringify({ maxHeaderBytes: 100 }));
  assertOneLineError((await runCli(["gate", "--config", tiny])).stderr, /maxHeaderBytes/);
  const { GateProxy } = await import("../../src/proxy/server.js");
  await assert.rejects(GateProxy.listen({ port: 0, maxHeaderBytes: 100 }), /maxHeaderBytes/);
  const infinite = join(dir, "infinite.json");
  writeFileSync(infinite, '{"limits":{"timing":1e999}}');
  assertOneLineError(
    (await runCli(["gate", "--config", infinite])).stderr,
    /infinite\.json: limits\.timing: must be/,
  );
  const proto = join(dir, "proto.json");
  writeFileSync(proto, '{"identities":{"__proto__":{"maxInFlight":2}}}');
  const r = await runCli(["gate", "--config", proto, "--port", "0", "--no-admin"]);
  assert.equal(r.code, 2, r.stderr);
});

test("at a real descriptor limit (ulimit -n 128) the gate answers try-later, logs one line, and its admin API still answers", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const gate = gateUnderUlimit(t, 128, ["--identity", "global", "--profile", "windows"]);
  const info = JSON.parse(await gate.firstLine) as { port: number; admin: { port: number } };
  // What each client got: its first four bytes, or "closed" without them.
  const results: Array<string | null> = [];
  const sockets: net.Socket[] = [];
  // Node itself holds some 40 descriptors: 150 clients and their upstreams are well past 128.
  for (let i = 0; i < 150; i++) {
    const s = net.connect(info.port, "127.0.0.1");
    sockets.push(s);
    results.push(null);
    s.on("error", () => {});
    let got = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4 && results[i] === null) results[i] = [...got.subarray(0, 4)].join();
    });
    s.on("close", () => {
      if (results[i] === null) results[i] = "closed";
    });
    s.write(Buffer.concat([Buffer.from([5, 1, 0]), socks5ConnectTo(tarpit.port)]));
  }
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const metrics = await new Promise<string>((resolve, reject) => {
    const poll = () =>
      http
        .get({ host: "127.0.0.1", port: info.admin.port, path: "/metrics" }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (d: string) => {
            body += d;
          });
          res.on("end", () => {
            if (/fd_limit_refusals_total\{reason="try-later"\} [1-9]/.test(body)) resolve(body);
            else setTimeout(poll, 50);
          });
        })
        .on("error", reject);
    poll();
  });
  assert.match(metrics, /synlimit_gate_clients \d+/);
  for (let i = 0; i < 1_000 && !results.includes("5,0,5,1"); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  // In flight (REP pending, the tarpit never answers), told to try later
  // (REP 01), or closed at accept once clients alone fill the budget.
  assert.ok(results.includes("5,0,5,1"), JSON.stringify(results));
  assert.ok(
    results.every((r) => r === null || r === "5,0,5,1" || r === "closed"),
    JSON.stringify(results),
  );
  // Every client closed at accept is counted (none lost where libuv drops
  // them unseen at EMFILE), and the admin API still answers.
  let dropped = -1;
  for (let i = 0; i < 500; i++) {
    const closed = results.filter((r) => r === "closed").length;
    const body = await httpGetText(info.admin.port, "/metrics");
    dropped = Number(/fd_limit_refusals_total\{reason="dropped"\} (\d+)/.exec(body)?.[1] ?? 0);
    if (closed > 0 && dropped === closed) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(dropped, results.filter((r) => r === "closed").length, JSON.stringify(results));
  gate.child.kill("SIGTERM");
  await once(gate.child, "close");
  const stderr = gate.stderr;
  const lines = stderr.split("\n").filter((l) => l.includes("out of file descriptors"));
  assert.equal(lines.length, 1, stderr);
  assert.doesNotMatch(stderr, /EMFILE.*\n\s+at /);
});

function socks5ConnectTo(port: number): Buffer {
  return Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]);
}

test("the gate starts under a small descriptor limit (ulimit -n 64): no module loading spends it", async (t) => {
  const { child, firstLine } = gateUnderUlimit(t, 64, []);
  const line = await firstLine;
  assert.ok((JSON.parse(line) as { port: number }).port > 0, line);
  child.kill("SIGTERM");
  await once(child, "exit");
});

/** `synlimit gate --json` started by sh under `ulimit -n`: its first stdout line, its stderr so far. */
function gateUnderUlimit(t: { after(fn: () => void): void }, fds: number, args: string[]) {
  const child = spawn(
    "sh",
    [
      "-c",
      `ulimit -n ${fds} && exec "$0" "$@"`,
      process.execPath,
      cliPath,
      "gate",
      "--port",
      "0",
      "--admin-port",
      "0",
      ...args,
      "--json",
    ],
    { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const out = { stderr: "" };
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    out.stderr += d;
  });
  const firstLine = new Promise<string>((resolve, reject) => {
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (stdout.includes("\n")) resolve(stdout.split("\n")[0] as string);
    });
    child.once("exit", (code) => reject(new Error(`the gate exited ${code}: ${out.stderr}`)));
  });
  firstLine.catch(() => {});
  return {
    child,
    firstLine,
    get stderr() {
      return out.stderr;
    },
  };
}

test("numbers read alike from flags, config, environment and timing strings: exponents accepted, non-finite, negative and out-of-range refused in one line", async (t) => {
  const { parseNumberText } = await import("../../src/gate/number-text.js");
  const { parseTiming } = await import("../../src/gate/timing.js");
  const { optionsFromEnv } = await import("../../src/emulate/env.js");
  assert.equal(parseNumberText("1e3"), 1000);
  assert.equal(parseNumberText("2.5E-1"), 0.25);
  assert.equal(parseNumberText(".5"), 0.5);
  for (const bad of ["1e400", "-1", "+1", "Infinity", "NaN", "0x10", "1_000", "", " 1", "1e"])
    assert.equal(parseNumberText(bad), null, bad);
  assert.deepEqual(parseTiming("2.1e4"), { connectTimeoutMs: 21_000 });
  assert.equal(parseTiming("syn:0,3e3,9e3;giveup:2.1e4"), "syn:0,3000,9000;giveup:21000");
  const env = optionsFromEnv({ SYNLIMIT_TIME_SCALE: "1e-1", SYNLIMIT_MAX_IN_FLIGHT: "1e1" });
  assert.equal(env.timeScale, 0.1);
  assert.equal(env.maxInFlight, 10);
  assert.throws(() => optionsFromEnv({ SYNLIMIT_TIME_SCALE: "1e400" }), /SYNLIMIT_TIME_SCALE/);

  // The same spellings on the command line as in a config file's JSON.
  const dir = await tempDir(t);
  const config = join(dir, "exp.json");
  writeFileSync(config, '{"port":0,"admin":false,"timeScale":1e3,"limits":{"maxInFlight":1e1}}');
  for (const args of [
    ["--config", config],
    [
      "--port",
      "0",
      "--no-admin",
      "--time-scale",
      "1e3",
      "--max-in-flight",
      "1e1",
      "--timing",
      "2.1e4",
    ],
  ]) {
    const { child } = startForTest(t, ["gate", ...args, "--json"]);
    assert.ok(JSON.parse(await firstLine(child)).port > 0, args.join(" "));
    child.kill("SIGTERM");
    await once(child, "exit");
  }
  for (const [flag, value] of [
    ["--time-scale", "1e400"],
    ["--time-scale", "-1"],
    ["--time-scale", "Infinity"],
    ["--time-scale", "1e-400"],
    ["--max-in-flight", "1.5"],
    ["--max-in-flight", "1e20"],
    ["--max-clients", "-5"],
    ["--timing", "1e400"],
    ["--admin-port", "7e4"],
  ] as const) {
    const r = await runCli(["gate", flag, value, "--port", "0", "--no-admin"]);
    assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
    assertOneLineError(r.stderr, new RegExp(flag));
  }
});

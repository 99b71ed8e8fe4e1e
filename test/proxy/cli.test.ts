import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { SocksClient } from "socks";
import { EVENT_4226_TEXT } from "../../src/gate/gate.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { firstLine, runCli, startForTest } from "../helpers/run-cli.js";

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "synlimit-gate-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function getJson(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve(JSON.parse(body)));
      })
      .on("error", reject);
  });
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

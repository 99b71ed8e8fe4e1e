import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { profileNames } from "../../src/emulate/profiles.js";
import { readTcpTable, socketInode } from "../../src/os/linux/tcp-table.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { finished, firstLine, registerUrl, runCli, startCli } from "../helpers/run-cli.js";

const commands = ["lab", "demo", "connect-test", "probe", "gate", "tarpit", "echo", "profiles"];

test("--help lists every command, and every command has its own --help", async () => {
  const top = await runCli(["--help"]);
  assert.equal(top.code, 0);
  for (const c of commands) assert.match(top.stdout, new RegExp(`\\n  ${c}\\b`));
  for (const c of commands) {
    const r = await runCli([c, "--help"]);
    assert.equal(r.code, 0, `${c} --help`);
    assert.match(r.stdout, new RegExp(`^Usage: synlimit ${c}`));
  }
});

const usageErrors: Array<[string[], RegExp]> = [
  [["frobnicate"], /^synlimit: unknown command 'frobnicate' \(see --help\)$/],
  [["connect-test", "127.0.0.1"], /^synlimit: missing required argument 'port'/],
  [
    ["connect-test", "127.0.0.1", "http"],
    /^synlimit: command-argument value 'http' is invalid for argument 'port'\. expected a port number from 1 to 65535\./,
  ],
  [
    ["connect-test", "127.0.0.1", "9", "--delay", "-5"],
    /option '--delay <ms>' argument '-5' is invalid/,
  ],
  [
    ["tarpit", "--host", "localhost"],
    /option '--host <ip>' argument 'localhost' is invalid\. expected an IPv4 or IPv6 address\./,
  ],
  [["demo", "--time-scale", "0"], /expected a positive finite number/],
  [["demo", "--time-scale", "1e400"], /expected a positive finite number/],
  [["demo", "--time-scale", "0.1", "--real-time"], /--time-scale and --real-time are alternatives/],
  [["profiles", "--bogus"], /^synlimit: unknown option '--bogus'/],
];

for (const [args, message] of usageErrors) {
  test(`usage error ${args.join(" ")}: one line, exit 2, no stack`, async () => {
    const r = await runCli(args);
    assert.equal(r.code, 2);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? "", message);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
}

test("profiles --json lists every profile with its source", async () => {
  const r = await runCli(["profiles", "--json"]);
  assert.equal(r.code, 0);
  const list = (
    JSON.parse(r.stdout) as {
      profiles: Array<{ name: string; source: string; options: { maxInFlight: number | null } }>;
    }
  ).profiles;
  assert.deepEqual(
    list.map((p) => p.name),
    profileNames,
  );
  assert.ok(list.every((p) => p.source.length > 0));
  assert.equal(list.find((p) => p.name === "incident")?.options.maxInFlight, 1);
  assert.equal(list.find((p) => p.name === "windows")?.options.maxInFlight, null);
});

test("tarpit prints its address, holds connects in SYN_SENT, and exits 0 on SIGTERM", async (t) => {
  const child = startCli(["tarpit", "--json"]);
  t.after(() => child.kill("SIGKILL"));
  const info = JSON.parse(await firstLine(child)) as {
    host: string;
    port: number;
    verified: boolean;
  };
  assert.equal(info.host, "127.0.0.1");
  assert.equal(info.verified, true);
  const socket = net.connect(info.port, info.host);
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  const inode = await socketInode(socket);
  assert.equal((await readTcpTable()).find((e) => e.inode === inode)?.state, "SYN_SENT");
  const done = finished(child);
  child.kill("SIGTERM");
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
});

async function targets(t: import("node:test").TestContext) {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  return { tarpit, live };
}

test("connect-test without a limiter: the live connect does not wait (exit 0)", async (t) => {
  const { tarpit, live } = await targets(t);
  const r = await runCli([
    "connect-test",
    "127.0.0.1",
    String(tarpit.port),
    "--live-port",
    String(live.port),
    "--delay",
    "20",
    "--timeout",
    "300",
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.version, 1);
  assert.equal(out.emulation, null);
  assert.equal(out.verdict.kind, "not-serialized");
  assert.equal(out.pending.error.code, "ETIMEDOUT");
});

test("connect-test under synlimit/register with the incident profile: serialized (exit 3)", async (t) => {
  const { tarpit, live } = await targets(t);
  const r = await runCli(
    [
      "connect-test",
      "127.0.0.1",
      String(tarpit.port),
      "--live-port",
      String(live.port),
      "--delay",
      "20",
    ],
    {
      nodeArgs: ["--import", registerUrl],
      env: { SYNLIMIT_PROFILE: "incident", SYNLIMIT_TIME_SCALE: "0.02" },
    },
  );
  assert.equal(r.code, 3, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(
    lines[0],
    "synlimit emulation: profile incident, time scale 0.02 (21 s runs as 0.42 s)",
  );
  assert.match(
    lines[1] ?? "",
    /^\d\d:\d\d:\d\d\.\d{3}\s+\+0\.\d{3}s \[A\] Trying to connect 127\.0\.0\.1:\d+$/,
  );
  assert.match(lines[2] ?? "", /\[B\] Trying to connect/);
  assert.match(
    lines[3] ?? "",
    /\[A\] A connection attempt failed because the connected party did not properly respond/,
  );
  assert.match(lines[4] ?? "", /\[B\] Connected!$/);
  assert.match(
    lines[5] ?? "",
    /^verdict: the live connect waited 0\.\d\d s for the pending one .* connect attempts are serialized \(\d+\.\d s unscaled\)$/,
  );
});

test("connect-test against a port that answers is inconclusive (exit 2) and says why", async (t) => {
  const { live } = await targets(t);
  const r = await runCli([
    "connect-test",
    "127.0.0.1",
    String(live.port),
    "--live-port",
    String(live.port),
    "--delay",
    "10",
  ]);
  assert.equal(r.code, 2);
  assert.match(
    r.stdout,
    /verdict: 127\.0\.0\.1:\d+ accepted the connection, so no attempt stayed pending/,
  );
});

test("demo reproduces both of the incident's outputs (the npm start job)", async () => {
  const r = await runCli(["demo", "--time-scale", "0.03", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.reproduced, true);
  assert.equal(out.normal.verdict.kind, "not-serialized");
  assert.equal(out.limited.verdict.kind, "serialized");
  assert.deepEqual(out.limited.emulation, { profile: "incident", timeScale: 0.03 });
  const human = await runCli(["demo", "--time-scale", "0.03"]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /A normal machine .*\| The customer's server/);
  assert.match(
    human.stdout,
    /Reproduced: the live connect completed the moment the pending one failed/,
  );
});

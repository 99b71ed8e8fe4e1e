import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import type { ProbeResult } from "../../src/probe/report.js";
import { cleanEnv, cliPath, runCli } from "../helpers/run-cli.js";

test("probe --help: the flags, the exit codes, an example", async () => {
  const r = await runCli(["probe", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Usage: synlimit probe/);
  for (const flag of [
    "--max",
    "--blackhole",
    "--live",
    "--via",
    "--settle",
    "--holders",
    "--json",
    "--quiet",
  ]) {
    assert.match(r.stdout, new RegExp(`${flag}\\b`));
  }
  assert.match(
    r.stdout,
    /Exit codes: 0 no limit found up to --max, 3 limit found, 2 could not test/,
  );
});

const usageErrors: Array<[string[], RegExp]> = [
  [
    ["probe", "--via", "ftp://127.0.0.1:21"],
    /^synlimit: option '--via <url>' argument 'ftp:\/\/127\.0\.0\.1:21' is invalid\. --via supports socks5:\/\/ and http:\/\/ proxies, not ftp:\/\/\. \(see --help\)$/,
  ],
  [
    ["probe", "--max", "0", "--blackhole", "127.0.0.1"],
    /^synlimit: option '--max <n>' argument '0' is invalid\. expected an integer from 1 to 1000\./,
  ],
  [
    ["probe", "--settle", "60001"],
    /^synlimit: option '--settle <ms>' argument '60001' is invalid\. expected a number of milliseconds above 0, at most 60000\./,
  ],
];

test("probe --json: hostSynSchedule (the platform report) and synSchedule (what the probe uses) come from one model", async () => {
  const r = await runCli(["probe", "--max", "1", "--quiet", "--json"]);
  const out = JSON.parse(r.stdout) as ProbeResult & {
    hostSynSchedule: { synAtMs: number[]; giveUpMs: number };
  };
  assert.deepEqual(out.hostSynSchedule.synAtMs, [0, ...out.synSchedule.retransmitAtMs]);
  assert.equal(out.hostSynSchedule.giveUpMs, out.synSchedule.giveUpAtMs);
});

for (const [args, message] of usageErrors) {
  test(`usage error ${args.join(" ")}: one line, exit 2`, async () => {
    const r = await runCli(args);
    assert.equal(r.code, 2);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? "", message);
  });
}

test("a blackhole that refuses: could not test, exit 2, the reason and how to fix it", async () => {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  const r = await runCli([
    "probe",
    "--blackhole",
    `127.0.0.1:${port}`,
    "--holders",
    "--json",
    "--quiet",
  ]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  const json = JSON.parse(r.stdout) as ProbeResult;
  assert.equal(json.verdict.kind, "could-not-test");
  assert.match(
    json.verdict.text,
    /^could not test: the blackhole 127\.0\.0\.1:\d+ answered at once \(ECONNREFUSED\)/,
  );
  // The blackhole was given: the hint is what kind of port to give instead.
  assert.match(json.reason ?? "", /give --blackhole a port where a firewall silently drops SYNs/);
  assert.equal(json.targets.blackhole?.kind, "given");
  assert.equal(json.limit, null);
  assert.ok(
    json.holders?.supported,
    "--holders: the list is there even when the probe could not test",
  );
});

test("--via a proxy that is not there: the proxy is unreachable, the live target is not blamed", async () => {
  // Port 1 on loopback: nothing listens there (a free port would race).
  for (const via of ["socks5://127.0.0.1:1", "http://127.0.0.1:1"]) {
    const r = await runCli(["probe", "--via", via, "--json", "--quiet"]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const json = JSON.parse(r.stdout) as ProbeResult;
    assert.equal(json.verdict.kind, "could-not-test");
    assert.equal(
      json.reason,
      `the proxy ${via} is unreachable (connect ECONNREFUSED 127.0.0.1:1); check --via`,
    );
    assert.doesNotMatch(json.verdict.text, /live target/);
  }
});

test("CannotTest is in the one catalogue, with a stable code", async () => {
  const { CannotTest, SynlimitError } = await import("../../src/errors.js");
  const e = new CannotTest("why");
  assert.ok(e instanceof SynlimitError);
  assert.equal(e.code, "SYNLIMIT_CANNOT_TEST");
  assert.equal(e.name, "CannotTest");
});

test("progress and result on the same stream (2>&1): each evidence line printed once", async () => {
  // One pipe for both streams, as `synlimit probe 2>&1 | tee log` or a
  // terminal without cursor control gives.
  const child = spawn(
    "sh",
    ["-c", '"$0" "$@" 2>&1', process.execPath, cliPath, "probe", "--max", "2"],
    {
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const [code] = (await once(child, "close")) as [number];
  assert.equal(code, 0, out);
  const progress = out.split("\n").filter((l) => l.startsWith("probe: +"));
  assert.ok(progress.length >= 4, out);
  for (const line of progress) {
    const text = line.slice("probe: ".length);
    assert.equal(out.split(text).length - 1, 1, `printed more than once: ${text}`);
  }
  assert.match(out, /^evidence \(settle window [\d.]+ ms\): the "probe:" lines above$/m);
});

test("progress and result on different streams: the result keeps its evidence", async () => {
  const r = await runCli(["probe", "--max", "2"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^evidence \(settle window [\d.]+ ms\):\n {2}\+/m);
  assert.match(r.stderr, /^probe: \+/m);
});

test("a bad --blackhole: one line that does not repeat the option and the value", async () => {
  const r = await runCli(["probe", "--blackhole", "nonsense"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.equal((r.stderr.match(/--blackhole/g) ?? []).length, 1, r.stderr);
  assert.equal((r.stderr.match(/nonsense/g) ?? []).length, 1, r.stderr);
});

test("a given blackhole that refuses: no hint to pass --blackhole HOST:PORT as if none were given", async () => {
  const r = await runCli(["probe", "--quiet", "--blackhole", "127.0.0.1:1"]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /answered at once \(ECONNREFUSED\)/);
  assert.doesNotMatch(r.stdout, /otherwise pass --blackhole HOST:PORT/);
});

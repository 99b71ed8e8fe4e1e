import assert from "node:assert/strict";
import { test } from "node:test";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { runCli } from "../helpers/run-cli.js";

test("connect-test without --timeout stops the pending attempt once the verdict is certain", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  // No --timeout: the old code waited for the OS to give up on the tarpit
  // (Linux: 11-127 s) and reported ETIMEDOUT.
  const r = await runCli([
    "connect-test",
    "127.0.0.1",
    String(tarpit.port),
    "--live-port",
    String(live.port),
    "--delay",
    "20",
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.verdict.kind, "not-serialized");
  assert.equal(out.live.connected, true);
  assert.equal(out.pending.stopped, true, "the pending attempt was ended by the test");
  assert.equal(out.pending.error, undefined, "not by the OS's timeout");
  assert.ok(out.pending.endedAtMs >= out.live.endedAtMs);
  assert.equal(out.lines.at(-1).kind, "stopped");
});

test("connect-test with --timeout still waits for it (the user asked)", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const r = await runCli([
    "connect-test",
    "127.0.0.1",
    String(tarpit.port),
    "--live-port",
    String(live.port),
    "--delay",
    "20",
    "--timeout",
    "200",
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.pending.stopped, undefined);
  assert.equal(out.pending.error.code, "ETIMEDOUT");
});

test("connect-test whose own --timeout ends the pending attempt before --delay: the message names --timeout", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const r = await runCli([
    "connect-test",
    "127.0.0.1",
    String(tarpit.port),
    "--live-port",
    String(live.port),
    "--delay",
    "500",
    "--timeout",
    "100",
    "--json",
  ]);
  assert.equal(r.code, 2, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.verdict.kind, "inconclusive");
  assert.match(
    out.verdict.text,
    /--timeout 100 ms ended the pending attempt .*--delay 500 ms.*longer than --delay/,
  );
  assert.doesNotMatch(out.verdict.text, /silently dropped/);
});

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { type TestContext, test } from "node:test";
import type { IdentityKind } from "../../src/proxy/identity.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";
import { startProxy } from "../helpers/proxy-fixtures.js";
import { incidentProgramPath, type ProgramLine } from "../helpers/proxy-incident-program.js";

// 21 s × 0.05 = 1.05 s: long enough that an undelayed connect of another
// process lands well inside the pending attempt, short enough for CI.
const timeScale = 0.05;

/** One run of the incident's test program, in its own process. */
class Program {
  readonly child: ChildProcess;
  readonly lines: ProgramLine[] = [];
  pid = 0;
  readonly #waiters: Array<() => void> = [];

  constructor(t: TestContext, proxyPort: number) {
    this.child = spawn(process.execPath, [incidentProgramPath, String(proxyPort)], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    t.after(() => {
      if (this.child.exitCode === null) this.child.kill("SIGKILL");
    });
    let buffered = "";
    this.child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      buffered += d;
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        this.lines.push(JSON.parse(buffered.slice(0, nl)) as ProgramLine);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  async line(who: string, kinds: ProgramLine["kind"][]): Promise<ProgramLine> {
    for (;;) {
      const found = this.lines.find((l) => l.who === who && kinds.includes(l.kind));
      if (found) return found;
      if (this.child.exitCode !== null)
        throw new Error(`program exited: ${JSON.stringify(this.lines)}`);
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  async ready(): Promise<void> {
    const l = await this.line("-", ["ready"]);
    this.pid = Number(l.text.split(" ")[1]);
  }

  connect(who: string, port: number): void {
    this.child.stdin?.write(`connect ${who} 127.0.0.1 ${port}\n`);
  }

  /** "who:kind" in the order printed. */
  get transcript(): string[] {
    return this.lines.filter((l) => l.who !== "-").map((l) => `${l.who}:${l.kind}`);
  }
}

async function incidentThroughProxy(t: TestContext, identity: IdentityKind) {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const proxy = await startProxy(t, { identity, limits: { profile: "incident" }, timeScale });
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  const first = new Program(t, proxy.port);
  const second = new Program(t, proxy.port);
  await Promise.all([first.ready(), second.ready()]);
  const keyOf = (p: Program) => (identity === "global" ? "global" : `process:${p.pid}:`);
  const mine = (p: Program, port: number) => (e: { key: string; port: number }) =>
    e.key.startsWith(keyOf(p)) && e.port === port;

  // Thread A: the dead collector. Thread B, once A is in SYN_SENT: the live server.
  first.connect("A", tarpit.port);
  await recorder.next("start", mine(first, tarpit.port));
  first.connect("B", live.port);
  await recorder.next("queued", mine(first, live.port));
  // Another program, while A is still pending.
  second.connect("C", live.port);
  const c = await second.line("C", ["connected", "error"]);
  await first.line("B", ["connected", "error"]);
  await first.line("A", ["connected", "error"]);
  return { first, second, c, recorder, tarpit, live, mine };
}

test("incident through the gate, identity process: the program's live connect waits for its dead one; another program does not", async (t) => {
  const { first, c, recorder, tarpit, live, second, mine } = await incidentThroughProxy(
    t,
    "process",
  );
  // The incident's blocked output: B connects only as A fails.
  assert.deepEqual(first.transcript, ["A:trying", "B:trying", "A:error", "B:connected"]);
  assert.match(
    first.lines.find((l) => l.who === "A" && l.kind === "error")?.text ?? "",
    /TTLExpired/,
  );
  const timeout = await recorder.next("timeout", mine(first, tarpit.port));
  const bStart = await recorder.next("start", mine(first, live.port));
  assert.ok(bStart.at >= timeout.at, "B's SYN went out only after A timed out");
  assert.ok(bStart.waitMs > 0);
  // The second program is a different process: its own slot, no wait.
  assert.equal(c.kind, "connected");
  const cStart = await recorder.next("start", mine(second, live.port));
  assert.ok(!recorder.of("queued").some(mine(second, live.port)), "C never waited in line");
  const seq: unknown[] = recorder.events.map((r) => r.event);
  assert.ok(
    seq.indexOf(cStart) < seq.indexOf(timeout),
    "the other program connected while A was still pending",
  );
  assert.ok(recorder.of("queued").every((e) => e.key.startsWith(`process:${first.pid}:`)));
});

test("incident through the gate, identity global: every program waits behind the pending attempt", async (t) => {
  const { first, second, c, recorder, tarpit, live, mine } = await incidentThroughProxy(
    t,
    "global",
  );
  assert.deepEqual(first.transcript, ["A:trying", "B:trying", "A:error", "B:connected"]);
  assert.equal(c.kind, "connected");
  assert.deepEqual(second.transcript, ["C:trying", "C:connected"]);
  const timeout = await recorder.next("timeout", mine(first, tarpit.port));
  const starts = recorder.of("start").filter((e) => e.port === live.port);
  assert.equal(starts.length, 2);
  for (const s of starts)
    assert.ok(s.at >= timeout.at, "no live connect started before A timed out");
  // FIFO: B asked first, so B started first, then C.
  const seq: unknown[] = recorder.events.map((r) => r.event);
  assert.ok(seq.indexOf(starts[0]) > seq.indexOf(timeout));
  assert.equal(recorder.of("queued").length, 2);
});

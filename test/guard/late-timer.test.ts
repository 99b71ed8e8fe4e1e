import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import { test } from "node:test";
import { guardChannelNames } from "../../src/guard/channels.js";
import { Guard, type GuardAttemptEvent } from "../../src/guard/guard.js";
import { LiveListener } from "../../src/targets/live.js";

/** Blocks the event loop, as a synchronous task in the host application would. */
function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: nothing else may run
  }
}

/** Blocks the loop once, just after the next guard attempt starts (before its SYN is sent). */
function stallAfterNextStart(ms: number): void {
  const name = guardChannelNames.connectStart;
  const fn = () => {
    diagnostics.unsubscribe(name, fn);
    process.nextTick(() => busyWait(ms));
  };
  diagnostics.subscribe(name, fn);
}

test("a loop blocked past the deadline does not fail a connect the kernel finished", async (t) => {
  const live = await LiveListener.listen();
  t.after(() => live.close());
  let budgetSeq = 0;
  for (const deadlineMs of [50, 250]) {
    const guard = new Guard({ budget: `late-timer-${budgetSeq++}`, connectTimeoutMs: deadlineMs });
    const attempts: GuardAttemptEvent[] = [];
    guard.onAttempt((e) => attempts.push(e));
    stallAfterNextStart(deadlineMs * 1.6);
    // Before the fix the late deadline timer ran before the poll phase saw the
    // socket's connect: a timeout, and the breaker opened on a live peer.
    const socket = await guard.connect({ host: "127.0.0.1", port: live.port });
    socket.destroy();
    assert.equal(guard.state("127.0.0.1", live.port), "closed");
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]?.outcome, "connected");
    assert.ok((attempts[0]?.lateMs ?? 0) > 0, "the stall made the verdict late");
    // And the next connect is not refused by an open breaker.
    (await guard.connect({ host: "127.0.0.1", port: live.port })).destroy();
  }
});

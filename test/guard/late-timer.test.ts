import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
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

test("a loop blocked past the preflight timeout does not make an answered echo silent", async (t) => {
  // The echo in a process of its own: it answers while this one is blocked.
  const child = spawn(
    process.execPath,
    [
      "-e",
      `const s = require("node:dgram").createSocket("udp4");
       s.on("message", (m, r) => s.send(m, r.port, r.address));
       s.bind(0, "127.0.0.1", () => console.log(s.address().port));`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  t.after(() => child.kill());
  const [line] = (await once(child.stdout, "data")) as [Buffer];
  const echoPort = Number(line.toString().trim());
  const guard = new Guard({
    budget: "late-timer-echo",
    preflight: { udpEchoPort: echoPort, timeoutMs: 50 },
  });
  // Block right after the nonce is really sent, longer than the timeout.
  const send = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
    dgram.Socket.prototype.send = send;
    const result = (send as (...a: unknown[]) => void).apply(this, args);
    busyWait(200);
    return result;
  } as typeof send;
  t.after(() => {
    dgram.Socket.prototype.send = send;
  });
  // Before the fix the late timer said "silent" with the echo waiting in the socket.
  assert.equal(await guard.probe({ host: "127.0.0.1", port: 1 }), "alive");
});

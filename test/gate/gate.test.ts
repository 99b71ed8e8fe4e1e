import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { WINDOWS_TIMEOUT_TEXT } from "../../src/errors.js";
import { type Attempt, AttemptGate, EVENT_4226_TEXT } from "../../src/gate/gate.js";
import type { GateOptions } from "../../src/gate/types.js";
import { EventRecorder } from "../helpers/events.js";
import { FakeClock } from "../helpers/fake-clock.js";

const dest = (port: number, host = "127.0.0.1") => ({ host, port });

function setup(options: GateOptions = {}) {
  const clock = new FakeClock();
  const gate = new AttemptGate({ clock, name: "t", ...options });
  const started: number[] = [];
  const timedOut: Array<{ port: number; error: Error & { code?: string } }> = [];
  const request = (port: number, host?: string): Attempt =>
    gate.request(dest(port, host), {
      onStart: (a) => started.push(a.destination.port),
      onTimeout: (a, error) => timedOut.push({ port: a.destination.port, error }),
    });
  return { clock, gate, started, timedOut, request };
}

test("queue policy: one in flight, the rest wait in FIFO order", () => {
  const { gate, started, request } = setup({ maxInFlight: 1 });
  const a = request(1);
  const b = request(2);
  const c = request(3);
  assert.deepEqual(started, [1]);
  assert.equal(a.state, "pending");
  assert.equal(b.state, "queued");
  assert.deepEqual(gate.stats().byKey, [{ key: "process", inFlight: 1, queued: 2 }]);
  a.failed(new Error("refused"));
  assert.deepEqual(started, [1, 2]);
  b.connected();
  assert.deepEqual(started, [1, 2, 3]);
  c.connected();
  assert.equal(gate.stats().inFlight, 0);
  assert.equal(gate.stats().queued, 0);
});

test("an established connection holds nothing: the slot frees on connect", () => {
  const { started, request } = setup({ maxInFlight: 1 });
  const a = request(1);
  request(2);
  a.connected();
  assert.deepEqual(started, [1, 2]);
});

test("cancelling a queued attempt frees nothing it did not hold", () => {
  const { gate, started, request } = setup({ maxInFlight: 1 });
  const a = request(1);
  const b = request(2);
  request(3);
  assert.equal(b.cancel(), true);
  assert.deepEqual(started, [1], "nothing started: the pending attempt still holds the slot");
  assert.equal(gate.stats().inFlight, 1);
  assert.equal(gate.stats().queued, 1);
  a.cancel();
  assert.deepEqual(started, [1, 3]);
});

test("terminal transitions happen once: the second report is ignored", () => {
  const { gate, request } = setup({ maxInFlight: 2 });
  const a = request(1);
  assert.equal(a.connected(), true);
  assert.equal(a.failed(), false);
  assert.equal(a.cancel(), false);
  assert.equal(a.state, "connected");
  assert.equal(gate.stats().totals.connected, 1);
  assert.equal(gate.stats().inFlight, 0);
});

test("windows timing: a pending attempt fails at 21 s with Windows' text, the next starts then", () => {
  const { clock, started, timedOut, request } = setup({ maxInFlight: 1, timing: "windows" });
  const a = request(1);
  clock.advance(500);
  const b = request(2);
  clock.advance(20_499);
  assert.deepEqual(started, [1]);
  assert.equal(timedOut.length, 0);
  clock.advance(1);
  assert.equal(a.state, "timed-out");
  assert.deepEqual(started, [1, 2]);
  assert.equal(b.startedAt, 21_000);
  assert.equal(b.startedAt - b.queuedAt, 20_500, "B waited 20.5 s, as in the incident");
  const [t] = timedOut;
  assert.equal(t?.port, 1);
  assert.equal(t?.error.code, "ETIMEDOUT");
  assert.ok(t?.error.message.startsWith(WINDOWS_TIMEOUT_TEXT));
  assert.match(t?.error.message ?? "", /127\.0\.0\.1:1$/);
});

test("the deadline is measured from the SYN, not from the queue", () => {
  const { clock, timedOut, request } = setup({ maxInFlight: 1, timing: { connectTimeoutMs: 100 } });
  request(1);
  request(2);
  clock.advance(100);
  assert.deepEqual(
    timedOut.map((t) => t.port),
    [1],
  );
  clock.advance(99);
  assert.equal(timedOut.length, 1);
  clock.advance(1);
  assert.deepEqual(
    timedOut.map((t) => t.port),
    [1, 2],
  );
});

test("timeScale compresses the OS timing: 21 s becomes 2.1 s", () => {
  const { clock, timedOut, request } = setup({ timing: "windows", timeScale: 0.1 });
  request(1);
  clock.advance(2_099);
  assert.equal(timedOut.length, 0);
  clock.advance(1);
  assert.equal(timedOut.length, 1);
});

test("linux timing gives up after 127 s", () => {
  const { clock, timedOut, request } = setup({ timing: "linux" });
  request(1);
  clock.advance(126_999);
  assert.equal(timedOut.length, 0);
  clock.advance(1);
  assert.equal(timedOut[0]?.error.code, "ETIMEDOUT");
});

test("each pending attempt times out one timeout after its own start, whoever starts meanwhile", () => {
  // Two in flight, a third waiting: when the first times out the third
  // starts from inside that expiry; the second must still fail on time.
  const { clock, started, timedOut, request } = setup({
    maxInFlight: 2,
    timing: { connectTimeoutMs: 1000 },
  });
  const at: Array<[number, number]> = [];
  request(1);
  clock.advance(100);
  request(2);
  request(3);
  assert.deepEqual(started, [1, 2]);
  for (const until of [1000, 1100, 2000]) {
    clock.advance(until - clock.now());
    for (const t of timedOut.splice(0)) at.push([t.port, clock.now()]);
  }
  assert.deepEqual(at, [
    [1, 1000],
    [2, 1100],
    [3, 2000],
  ]);
  assert.deepEqual(started, [1, 2, 3]);
});

test("a settled attempt leaves no deadline timer behind", () => {
  const { clock, request } = setup({ timing: "windows" });
  const a = request(1);
  assert.equal(clock.pendingTimers, 1);
  a.connected();
  assert.equal(clock.pendingTimers, 0);
});

test("reject policy: over the limit fails at once with ECONNREFUSED and the numbers", () => {
  const { gate, started, request } = setup({ maxInFlight: 2, policy: "reject" });
  request(1);
  request(2);
  const c = request(3);
  assert.deepEqual(started, [1, 2]);
  assert.equal(c.state, "rejected");
  const error = c.error as Error & { code: string; reason: string };
  assert.equal(error.code, "ECONNREFUSED");
  assert.equal(error.reason, "SYNLIMIT_ATTEMPT_REJECTED");
  assert.match(error.message, /127\.0\.0\.1:3.*2 concurrent connect attempt/);
  assert.equal(gate.stats().queued, 0);
});

test("destination scope: attempts to different destinations do not wait for each other", () => {
  const { started, request } = setup({ maxInFlight: 1, scope: "destination" });
  request(1);
  request(1);
  request(2);
  assert.deepEqual(started, [1, 2]);
});

test("a custom scope key function partitions the limit", () => {
  const { started, request } = setup({
    maxInFlight: 1,
    scope: (d) => (d.port < 10 ? "low" : "high"),
  });
  request(1);
  request(2);
  request(11);
  assert.deepEqual(started, [1, 11]);
});

test("rate policy: one new destination per second, the working set passes freely", () => {
  const { clock, started, request } = setup({
    policy: "rate",
    rate: { newDestinationsPerSecond: 1, workingSetSize: 2 },
  });
  request(1, "127.0.0.1");
  request(1, "127.0.0.2");
  request(1, "127.0.0.3");
  request(2, "127.0.0.2"); // same host as a queued one: released together
  assert.deepEqual(started, [1]);
  clock.advance(999);
  assert.deepEqual(started, [1]);
  clock.advance(1);
  assert.deepEqual(started, [1, 1, 2], "127.0.0.2 admitted with both of its attempts");
  request(3, "127.0.0.2");
  assert.deepEqual(started, [1, 1, 2, 3], "a working-set host passes without delay");
  clock.advance(1000);
  assert.equal(started.length, 5, "127.0.0.3 admitted a second later");
  request(4, "127.0.0.1");
  assert.equal(started.length, 5, "127.0.0.1 fell out of a working set of 2");
  clock.advance(1000);
  assert.equal(started.length, 6);
  assert.equal(clock.pendingTimers, 0);
});

test("rate policy: cancelling every queued attempt stops the release timer", () => {
  const { clock, request } = setup({ policy: "rate" });
  request(1, "127.0.0.1");
  const b = request(1, "127.0.0.2");
  assert.equal(clock.pendingTimers, 1);
  b.cancel();
  assert.equal(clock.pendingTimers, 0);
});

test("events: queued, start, end in order, with wait time; Event 4226 once per congestion", () => {
  const recorder = new EventRecorder();
  try {
    const { clock, request } = setup({ maxInFlight: 1, timing: "windows", timeScale: 0.1 });
    const a = request(1);
    clock.advance(50);
    request(2);
    request(3);
    clock.advance(4200);
    assert.equal(a.state, "timed-out");
    const seq = recorder.events.map((r) => `${r.channel}:${r.event.port ?? r.event.key}`);
    assert.deepEqual(seq, [
      "start:1",
      "limitReached:process",
      "queued:2",
      "queued:3",
      "timeout:1",
      "start:2",
      "timeout:2",
      "start:3",
    ]);
    const start2 = recorder.of("start").find((e) => e.port === 2);
    assert.equal(start2?.waitMs, 2050);
    assert.equal(start2?.gate, "t");
    const limit = recorder.events.find((r) => r.channel === "limitReached")?.event;
    assert.equal(limit?.message, EVENT_4226_TEXT);
    assert.equal(limit?.maxInFlight, 1);
  } finally {
    recorder.stop();
  }
});

test("an owner that throws in onStart does not keep the slot, and the bug still surfaces", () => {
  // The throw is re-raised asynchronously, which would end this test run:
  // run it in a child process and read what it saw.
  const gateUrl = new URL("../../src/gate/gate.js", import.meta.url).href;
  const script = `
    import { AttemptGate } from ${JSON.stringify(gateUrl)};
    process.on("uncaughtException", (e) => {
      console.log(JSON.stringify({ uncaught: e.message, inFlight: gate.stats().inFlight, state: a.state }));
    });
    const gate = new AttemptGate();
    const a = gate.request({ host: "127.0.0.1", port: 1 }, {
      onStart() { throw new Error("owner bug"); },
      onTimeout() {},
    });
  `;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  assert.deepEqual(JSON.parse(out), { uncaught: "owner bug", inFlight: 0, state: "failed" });
});

test("options are validated at construction with the option's name", () => {
  const bad: Array<[GateOptions, RegExp]> = [
    [
      { maxInFlight: 0 },
      /maxInFlight must be a positive integer, or Infinity \/ "unlimited" for no limit, got 0/,
    ],
    [{ maxInFlight: -1 }, /maxInFlight/],
    [{ maxInFlight: 1.5 }, /maxInFlight/],
    [{ policy: "drop" as never }, /policy must be one of queue, reject, rate, got "drop"/],
    [{ timeScale: 0 }, /timeScale/],
    [{ timeScale: Number.NaN }, /timeScale/],
    [
      { timing: "bsd" as never },
      /timing must be one of none, windows, windows-2008, linux, \{ connectTimeoutMs \}, a positive finite number of milliseconds, or a SYN schedule/,
    ],
    [{ timing: { connectTimeoutMs: -5 } }, /timing.connectTimeoutMs/],
    // Non-finite timings never reach a timer.
    [{ timing: { connectTimeoutMs: Number.POSITIVE_INFINITY } }, /timing.connectTimeoutMs/],
    [{ timing: { connectTimeoutMs: Number.NaN } }, /timing.connectTimeoutMs/],
    [{ timeScale: Number.POSITIVE_INFINITY }, /timeScale/],
    [
      { rate: { newDestinationsPerSecond: Number.POSITIVE_INFINITY } },
      /rate.newDestinationsPerSecond/,
    ],
    [{ scope: "user" as never }, /scope/],
    [{ rate: { newDestinationsPerSecond: 0 } }, /rate.newDestinationsPerSecond/],
    [{ clock: {} as never }, /clock/],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => new AttemptGate(options),
      (e: Error & { code?: string }) =>
        e.code === "SYNLIMIT_INVALID_OPTION" && message.test(e.message),
      JSON.stringify(options),
    );
  }
});

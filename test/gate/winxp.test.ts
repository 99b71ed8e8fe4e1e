import assert from "node:assert/strict";
import { test } from "node:test";
import { profiles } from "../../src/emulate/profiles.js";
import { type Attempt, AttemptGate, EVENT_4226_TEXT } from "../../src/gate/gate.js";
import type { GateOptions } from "../../src/gate/types.js";
import { createGate } from "../../src/proxy/limits.js";
import { EventRecorder } from "../helpers/events.js";
import { FakeClock } from "../helpers/fake-clock.js";

/** The winxp-sp2 profile on a fake clock, one key for the whole "machine" (as the proxy's global identity). */
function machine(overrides: GateOptions = {}) {
  const clock = new FakeClock();
  const gate = new AttemptGate({
    clock,
    name: "winxp",
    ...profiles["winxp-sp2"].options,
    scope: () => "machine",
    ...overrides,
  });
  const started: string[] = [];
  const request = (owner: string, host: string, port = 80): Attempt =>
    gate.request(
      { host, port },
      { onStart: (a) => started.push(`${a.owner}>${a.destination.host}`), onTimeout: () => {} },
      owner,
    );
  return { clock, gate, started, request };
}

test("winxp-sp2: 10 attempts in flight machine-wide, whichever processes make them", () => {
  const { gate, request } = machine();
  const attempts = Array.from({ length: 12 }, (_, i) => request(`pid${i % 4}`, `127.0.1.${i}`));
  assert.equal(gate.stats().inFlight, 10);
  assert.equal(gate.stats().queued, 2);
  assert.deepEqual(
    attempts.map((a) => a.state),
    [...Array(10).fill("pending"), "queued", "queued"],
  );
});

test("winxp-sp2: each process waits in its own FIFO bucket, and the buckets are served in turn", () => {
  const { started, request } = machine({ maxInFlight: 1 });
  // A floods the queue before B and C ask.
  const all = [
    request("A", "127.0.1.1"),
    request("A", "127.0.1.2"),
    request("A", "127.0.1.3"),
    request("A", "127.0.1.4"),
    request("B", "127.0.2.1"),
    request("B", "127.0.2.2"),
    request("C", "127.0.3.1"),
  ];
  started.length = 0;
  for (let i = 0; i < 7; i++) all.find((a) => a.state === "pending")?.failed();
  assert.deepEqual(started, [
    "A>127.0.1.2",
    "B>127.0.2.1",
    "C>127.0.3.1",
    "A>127.0.1.3",
    "B>127.0.2.2",
    "A>127.0.1.4",
  ]);
});

test("winxp-sp2: plain FIFO (the incident) would have served A's flood first", () => {
  const { started, request } = machine({ maxInFlight: 1, fairness: "fifo" });
  const all = [
    request("A", "127.0.1.1"),
    request("A", "127.0.1.2"),
    request("A", "127.0.1.3"),
    request("B", "127.0.2.1"),
  ];
  started.length = 0;
  for (let i = 0; i < 3; i++) all.find((a) => a.state === "pending")?.failed();
  assert.deepEqual(started, ["A>127.0.1.2", "A>127.0.1.3", "B>127.0.2.1"]);
});

test("winxp-sp2: a destination reached in the last 10 minutes is not counted and never waits", () => {
  const { clock, gate, request } = machine();
  const web = request("A", "127.0.9.9", 443);
  web.connected();
  const dead = Array.from({ length: 10 }, (_, i) => request("B", `127.0.1.${i}`));
  assert.equal(gate.stats().inFlight, 10);
  const again = request("C", "127.0.9.9", 443);
  assert.equal(again.state, "pending", "the known-reachable host went ahead");
  assert.equal(again.exempt, true);
  assert.equal(gate.stats().inFlight, 10, "and took no slot");
  const stranger = request("C", "127.0.9.10", 443);
  assert.equal(stranger.state, "queued", "an unknown host waits");
  again.connected();
  assert.equal(stranger.state, "queued", "ending an uncounted attempt frees no slot");
  dead[0]?.failed();
  assert.equal(stranger.state, "pending");

  // Ten minutes later the host is no longer known reachable.
  clock.advance(600_001);
  for (const a of dead) a.cancel();
  stranger.cancel();
  const fill = Array.from({ length: 10 }, (_, i) => request("B", `127.0.1.${i}`));
  const late = request("C", "127.0.9.9", 443);
  assert.equal(late.state, "queued");
  assert.equal(late.exempt, false);
  for (const a of [...fill, late]) a.cancel();
  assert.equal(gate.stats().inFlight, 0);
});

test("winxp-sp2: the known-reachable window is off when knownReachableMs is null", () => {
  const { request } = machine({ maxInFlight: 1, knownReachableMs: null });
  request("A", "127.0.9.9").connected();
  request("A", "127.0.1.1");
  assert.equal(request("A", "127.0.9.9").state, "queued");
});

test("winxp-sp2: one Event 4226 per congestion episode, however many attempts wait", () => {
  const recorder = new EventRecorder();
  try {
    const { gate, request } = machine();
    const episode = () => {
      const all = Array.from({ length: 25 }, (_, i) => request(`pid${i % 3}`, `127.0.1.${i}`));
      for (const a of all) a.failed();
    };
    episode();
    assert.equal(gate.stats().inFlight, 0);
    episode();
    const events = recorder.events.filter((r) => r.channel === "limitReached");
    assert.equal(events.length, 2, "two episodes, two events");
    assert.equal(events[0]?.event.message, EVENT_4226_TEXT);
    assert.equal(events[0]?.event.eventId, 4226);
    assert.equal(events[0]?.event.maxInFlight, 10);
  } finally {
    recorder.stop();
  }
});

test("winxp-sp2 through the gate proxy's limits keeps its bucket order and known-reachable window", () => {
  const gate = createGate({ profile: "winxp-sp2" }, "global", "1", {
    timeScale: 1,
    clock: new FakeClock(),
  });
  assert.equal(gate.options.maxInFlight, 10);
  assert.equal(gate.options.fairness, "round-robin");
  assert.equal(gate.options.knownReachableMs, 600_000);
  const incident = createGate({ profile: "incident" }, "p", "2", {
    timeScale: 1,
    clock: undefined,
  });
  assert.equal(incident.options.fairness, "fifo");
  assert.equal(incident.options.knownReachableMs, null);
});

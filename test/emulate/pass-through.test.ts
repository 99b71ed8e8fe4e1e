import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type EmulationOptions, install, uninstall } from "../../src/emulate/install.js";
import { WINDOWS_TIMEOUT_TEXT } from "../../src/errors.js";
import type { AttemptGate } from "../../src/gate/gate.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";

// A gate with no limit has nothing to decide (`timing: "none"`) or only when
// an attempt gives up (the `windows` profile): while nobody listens on the
// attempt channels the hook lets its connects through without an Attempt.
// Everything a user can see of the gate must stay as it is when tracked.

const unlimited = { profile: "windows", timing: "none" } as const;

/** Resolves on 'close' (events.once would reject on the 'error' before it). */
const closed = (socket: net.Socket) =>
  new Promise<void>((resolve) => socket.once("close", () => resolve()));

/** One turn of the event loop: Node starts a connect to an IP address on the next tick. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function track(t: TestContext, socket: net.Socket): net.Socket {
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  return socket;
}

/** Whether the hook left its per-connect bookkeeping on the socket's handle. */
function tracked(socket: net.Socket): boolean {
  const handle = (socket as unknown as { _handle: object | null })._handle;
  assert.ok(handle, "the socket still has its handle");
  return Object.getOwnPropertySymbols(handle).some(
    (s) => s.description === "synlimit.gatedConnect",
  );
}

function snapshot(gate: AttemptGate) {
  const { inFlight, queued, byKey, totals } = gate.stats();
  return { inFlight, queued, byKey, totals };
}

/** Windows' timing fifty times faster: a pending attempt gives up after 420 ms. */
const windows = { profile: "windows", timeScale: 0.02 } as const;

/** connected, refused, pending then destroyed (then timed out): the gate's stats after each step. */
async function scenario(t: TestContext, observed: boolean, options: EmulationOptions = unlimited) {
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const gone = await LiveListener.listen();
  const refusedPort = gone.port;
  await gone.close();
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const recorder = observed ? new EventRecorder() : null;
  t.after(() => recorder?.stop());
  const { gate } = install(options);
  t.after(uninstall);
  const steps: Array<ReturnType<typeof snapshot>> = [];

  const ok = track(t, net.connect(live.port, "127.0.0.1"));
  await once(ok, "connect");
  steps.push(snapshot(gate));
  ok.destroy();
  await closed(ok);
  steps.push(snapshot(gate));

  const refused = net.connect(refusedPort, "127.0.0.1");
  const [error] = (await once(refused, "error").catch((e) => [e])) as [Error & { code: string }];
  assert.equal(error.code, "ECONNREFUSED");
  steps.push(snapshot(gate));

  const pending = track(t, net.connect(tarpit.port, "127.0.0.1"));
  await turn();
  steps.push(snapshot(gate));
  const bookkeeping = tracked(pending);
  pending.destroy();
  await closed(pending);
  steps.push(snapshot(gate));

  if (gate.giveUpAfterMs !== null) {
    const dead = net.connect(tarpit.port, "127.0.0.1");
    const [timeout] = (await once(dead, "error").catch((e) => [e])) as [Error & { code: string }];
    assert.equal(timeout.code, "ETIMEDOUT");
    assert.ok(timeout.message.startsWith(WINDOWS_TIMEOUT_TEXT), timeout.message);
    await closed(dead);
    steps.push(snapshot(gate));
  }
  return { steps, bookkeeping };
}

test("a gate with nothing to decide lets connects through untracked, with the stats of a tracked one", async (t) => {
  const untracked = await scenario(t, false);
  const tracking = await scenario(t, true);
  assert.equal(untracked.bookkeeping, false, "unobserved: no per-connect bookkeeping");
  assert.equal(tracking.bookkeeping, true, "observed: every attempt tracked");
  assert.deepEqual(untracked.steps, tracking.steps);
  // And what they are: one in flight while the tarpit holds it, every start ended once.
  assert.deepEqual(untracked.steps[3]?.byKey, [{ key: "process", inFlight: 1, queued: 0 }]);
  assert.deepEqual(untracked.steps[4], {
    inFlight: 0,
    queued: 0,
    byKey: [],
    totals: {
      queued: 0,
      pending: 3,
      connected: 1,
      failed: 1,
      "timed-out": 0,
      cancelled: 1,
      rejected: 0,
    },
  });
});

test("a timing with no limit: untracked, the attempts end and count as when tracked, the tarpit one timed out", {
  timeout: 30_000,
}, async (t) => {
  const untracked = await scenario(t, false, windows);
  const tracking = await scenario(t, true, windows);
  assert.equal(untracked.bookkeeping, false, "unobserved: no per-connect bookkeeping");
  assert.equal(tracking.bookkeeping, true, "observed: every attempt tracked");
  assert.deepEqual(untracked.steps, tracking.steps);
  assert.deepEqual(untracked.steps[5]?.totals, {
    queued: 0,
    pending: 4,
    connected: 1,
    failed: 1,
    "timed-out": 1,
    cancelled: 1,
    rejected: 0,
  });
  assert.equal(untracked.steps[5]?.inFlight, 0);
});

test("many connects behind one that stays pending: each counted once, the pending one gives up on time", {
  timeout: 60_000,
}, async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const { gate } = install({ profile: "windows", timeScale: 0.1 });
  t.after(uninstall);
  const startedAt = performance.now();
  const dead = net.connect(tarpit.port, "127.0.0.1");
  const deadDone = once(dead, "error").catch((e) => [e]) as Promise<[Error & { code: string }]>;
  // More than the line keeps behind its head before compacting.
  const n = 1500;
  for (let i = 0; i < n; i++) {
    const s = net.connect(live.port, "127.0.0.1");
    await once(s, "connect");
    s.destroy();
  }
  const [error] = await deadDone;
  const elapsedMs = performance.now() - startedAt;
  assert.equal(error.code, "ETIMEDOUT");
  assert.ok(elapsedMs >= 2100 - 5, `gave up after ${elapsedMs.toFixed(0)} ms, not before 2100 ms`);
  await closed(dead);
  const { inFlight, totals } = gate.stats();
  assert.equal(inFlight, 0);
  assert.deepEqual(
    [totals.pending, totals.connected, totals["timed-out"], totals.failed, totals.cancelled],
    [n + 1, n, 1, 0, 0],
  );
});

test("a connect started while the timer waits for an earlier one still gives up on time", {
  timeout: 30_000,
}, async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const { gate } = install(windows);
  t.after(uninstall);
  // The first connect arms the one timer for its own deadline …
  const first = track(t, net.connect(tarpit.port, "127.0.0.1"));
  await turn();
  for (let i = 0; i < 50; i++) {
    const s = net.connect(live.port, "127.0.0.1");
    await once(s, "connect");
    s.destroy();
  }
  first.destroy();
  // … and finds, when it fires, this one pending but not yet due.
  const startedAt = performance.now();
  const second = net.connect(tarpit.port, "127.0.0.1");
  const [error] = (await once(second, "error").catch((e) => [e])) as [Error & { code: string }];
  const elapsedMs = performance.now() - startedAt;
  assert.equal(error.code, "ETIMEDOUT");
  assert.ok(elapsedMs >= 420 - 5, `gave up after ${elapsedMs.toFixed(0)} ms, not before 420 ms`);
  assert.equal(gate.stats().totals["timed-out"], 1);
});

test("a subscriber that arrives later sees every later attempt", async (t) => {
  const live = await LiveListener.listen();
  t.after(() => live.close());
  install(unlimited);
  t.after(uninstall);
  const before = track(t, net.connect(live.port, "127.0.0.1"));
  await once(before, "connect");
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  const after = track(t, net.connect(live.port, "127.0.0.1"));
  await once(after, "connect");
  // Published as they happen: by 'connect' both are there.
  const started = recorder.of("start");
  const connected = recorder.of("connected");
  assert.equal(started.length, 1, "the later connect is tracked; the earlier published nothing");
  assert.equal(connected.length, 1);
  assert.equal(started[0]?.id, connected[0]?.id);
});

test("a limit installed over an untracked gate applies to the next connect at once", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const first = install(unlimited);
  t.after(uninstall);
  const early = track(t, net.connect(tarpit.port, "127.0.0.1"));
  await turn();
  assert.equal(first.gate.stats().inFlight, 1);

  // The untracked attempt stays with the gate it started under.
  const second = install({ maxInFlight: 1, timing: "none" });
  const holder = track(t, net.connect(tarpit.port, "127.0.0.1"));
  await turn();
  const waiting = track(t, net.connect(live.port, "127.0.0.1"));
  await turn();
  assert.deepEqual(
    [second.gate.stats().inFlight, second.gate.stats().queued, live.accepted],
    [1, 1, 0],
    "the tarpit attempt holds the new gate's one slot; the live connect waits",
  );
  holder.destroy();
  await once(waiting, "connect");
  early.destroy();
  await closed(early);
  assert.equal(first.gate.stats().inFlight, 0);
  assert.equal(first.gate.stats().totals.cancelled, 1);
  assert.equal(second.gate.stats().totals.cancelled, 1);
});

test("a timing with no limit, untracked: the tarpit attempt gives up at the scaled 21 s", {
  timeout: 30_000,
}, async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  // No subscriber: the deadline is the untracked one.
  const { gate } = install({ profile: "windows", timeScale: 0.02 });
  t.after(uninstall);
  const startedAt = performance.now();
  const socket = net.connect(tarpit.port, "127.0.0.1");
  const [error] = (await once(socket, "error").catch((e) => [e])) as [Error & { code: string }];
  const elapsedMs = performance.now() - startedAt;
  assert.equal(error.code, "ETIMEDOUT");
  assert.ok(elapsedMs >= 420 - 5, `gave up after ${elapsedMs.toFixed(0)} ms, not before 420 ms`);
  assert.equal(gate.stats().totals["timed-out"], 1);
  assert.equal(gate.stats().inFlight, 0);
});

test("a connect the OS refuses at once (out of file descriptors) is counted as started and failed", () => {
  // A process of its own whose descriptors run out: socket(2) fails inside
  // connect, synchronously; libuv never completes such a connect.
  const child = fileURLToPath(new URL("./pass-through-emfile.js", import.meta.url));
  const out = execFileSync(
    "sh",
    ["-c", 'ulimit -n 128 && exec "$0" "$1"', process.execPath, child],
    {
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  const result = JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as {
    untracked: { code: string; inFlight: number; pending: number; failed: number };
    tracked: { code: string; inFlight: number; pending: number; failed: number };
  };
  assert.deepEqual(result.untracked, { code: "EMFILE", inFlight: 0, pending: 1, failed: 1 });
  assert.deepEqual(result.untracked, result.tracked);
});

import assert from "node:assert/strict";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { install, uninstall } from "../../src/emulate/install.js";
import { WINDOWS_TIMEOUT_TEXT } from "../../src/errors.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";

// Real sockets on loopback; the emulated OS timings compressed fifty-fold.
const timeScale = 0.02;

function track(t: TestContext, socket: net.Socket): net.Socket {
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  return socket;
}

/** The socket's outcome: its error, or null when it connected. */
function outcome(socket: net.Socket): Promise<(Error & { code?: string }) | null> {
  return new Promise((resolve) => {
    socket.once("connect", () => resolve(null));
    socket.once("error", (e) => resolve(e));
  });
}

test("a syn:…;giveup:… schedule: the attempt to the tarpit fails at the give-up time and its events carry the SYN times", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  install({ maxInFlight: 1, timing: "syn:0,1000,3000;giveup:10000", timeScale });
  t.after(uninstall);

  const dead = track(t, net.connect(tarpit.port, "127.0.0.1"));
  const deadDone = outcome(dead);
  await recorder.next("start", (e) => e.port === tarpit.port);
  const waiting = track(t, net.connect(live.port, "127.0.0.1"));
  const liveDone = outcome(waiting);
  await recorder.next("queued", (e) => e.port === live.port);

  const error = await deadDone;
  assert.equal(error?.code, "ETIMEDOUT");
  assert.match(error?.message ?? "", /emulated schedule connect timeout after 200 ms/);
  assert.equal(await liveDone, null, "the queued connect went out once the attempt gave up");
  const timeout = await recorder.next("timeout", (e) => e.port === tarpit.port);
  assert.deepEqual(timeout.synAtMs, [0, 20, 60]);
  assert.equal(timeout.giveUpMs, 200);
  assert.ok(timeout.pendingMs >= 200, `pending ${timeout.pendingMs} ms, at least the give-up time`);
  const start = await recorder.next("start", (e) => e.port === live.port);
  assert.ok(start.at >= timeout.at, "the live SYN went out after the give-up");
});

test("the windows schedule (today) through the emulation: SYN times 0, 1, 3, 7, 15 s and Windows' error at 21 s, scaled", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  install({ profile: "windows", timeScale });
  t.after(uninstall);
  const dead = track(t, net.connect(tarpit.port, "127.0.0.1"));
  const error = await outcome(dead);
  assert.ok(error?.message.startsWith(WINDOWS_TIMEOUT_TEXT));
  const timeout = await recorder.next("timeout");
  assert.deepEqual(timeout.synAtMs, [0, 20, 60, 140, 300]);
  assert.equal(timeout.giveUpMs, 420);
});

test("winxp-sp2 with real sockets: 10 pending to a tarpit, an unknown host waits, a known-reachable one goes ahead, one Event 4226", async (t) => {
  // Three loopback addresses, because reachability is per host (the route cache entry).
  const known = await LiveListener.listen({ host: "127.0.0.1" });
  t.after(() => known.close());
  const tarpit = await Tarpit.listen({ host: "127.0.0.2" });
  t.after(() => tarpit.close());
  const unknown = await LiveListener.listen({ host: "127.0.0.3" });
  t.after(() => unknown.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  const { gate } = install({ profile: "winxp-sp2", timeScale });
  t.after(uninstall);

  const first = track(t, net.connect(known.port, "127.0.0.1"));
  assert.equal(await outcome(first), null);
  first.destroy();

  const dead = Array.from({ length: 10 }, () => track(t, net.connect(tarpit.port, "127.0.0.2")));
  const deadDone = dead.map(outcome);
  const seen = new Set<number>();
  while (seen.size < 10) {
    const e = await recorder.next("start", (x) => x.host === "127.0.0.2" && !seen.has(x.id));
    seen.add(e.id);
  }
  assert.equal(gate.stats().inFlight, 10);

  const stranger = track(t, net.connect(unknown.port, "127.0.0.3"));
  const strangerDone = outcome(stranger);
  await recorder.next("queued", (e) => e.host === "127.0.0.3");

  const again = track(t, net.connect(known.port, "127.0.0.1"));
  assert.equal(await outcome(again), null, "the known-reachable host connected");
  assert.equal(gate.stats().queued, 1, "while the unknown host still waited");
  const exemptStart = recorder.of("start").filter((e) => e.host === "127.0.0.1")[1];
  assert.equal(exemptStart?.exempt, true);

  // The first dead attempt gives up at 21 s (scaled), and the stranger goes.
  assert.equal(await strangerDone, null);
  for (const e of await Promise.all(deadDone)) {
    assert.ok(e?.message.startsWith(WINDOWS_TIMEOUT_TEXT));
  }
  assert.equal(recorder.events.filter((r) => r.channel === "limitReached").length, 1);
});

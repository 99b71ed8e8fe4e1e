import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { type EmulationOptions, install, uninstall } from "../../src/emulate/install.js";
import { WINDOWS_TIMEOUT_TEXT } from "../../src/errors.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";

/** Resolves on 'close' (events.once would reject on the 'error' before it). */
const closed = (emitter: NodeJS.EventEmitter) =>
  new Promise<void>((resolve) => emitter.once("close", () => resolve()));

/** A limit of 1 with one tarpit attempt holding the slot. */
async function withSlotHeld(t: TestContext, options: EmulationOptions = {}) {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  const emulation = install({ maxInFlight: 1, timing: "none", ...options });
  t.after(uninstall);
  const blocker = net.connect(tarpit.port, "127.0.0.1");
  const blockerErrors: Error[] = [];
  blocker.on("error", (e) => blockerErrors.push(e));
  t.after(() => blocker.destroy());
  await recorder.next("start", (e) => e.port === tarpit.port);
  const track = (socket: net.Socket) => {
    socket.on("error", () => {});
    t.after(() => socket.destroy());
    return socket;
  };
  return { tarpit, live, recorder, gate: emulation.gate, blocker, blockerErrors, track };
}

test("a queued socket looks like a connecting one, and its writes are buffered until the connect", async (t) => {
  const { live, recorder, blocker, track } = await withSlotHeld(t);
  const socket = track(net.connect(live.port, "127.0.0.1"));
  await recorder.next("queued", (e) => e.port === live.port);
  assert.equal(socket.connecting, true);
  socket.write("written while queued");
  assert.equal(live.accepted, 0);
  const accepted = live.nextConnection();
  blocker.destroy();
  const [, server] = await Promise.all([once(socket, "connect"), accepted]);
  const [data] = (await once(server, "data")) as [Buffer];
  assert.equal(data.toString(), "written while queued");
});

test("destroy() takes a queued socket out of the line and frees nothing it did not hold", async (t) => {
  const { live, recorder, gate, blocker, track } = await withSlotHeld(t);
  const socket = track(net.connect(live.port, "127.0.0.1"));
  await recorder.next("queued", (e) => e.port === live.port);
  socket.destroy();
  await once(socket, "close");
  assert.equal(gate.stats().queued, 0);
  assert.equal(gate.stats().inFlight, 1, "the blocker still holds the slot");
  assert.equal(recorder.of("cancelled")[0]?.port, live.port);
  assert.equal(recorder.of("start").length, 1, "the destroyed socket never sent a SYN");
  blocker.destroy();
  await once(blocker, "close");
  assert.equal(gate.stats().inFlight, 0);
  assert.equal(live.accepted, 0);
});

test("socket.setTimeout fires while the socket waits in the queue", async (t) => {
  const { live, recorder, gate, track } = await withSlotHeld(t);
  const socket = track(net.connect(live.port, "127.0.0.1"));
  socket.setTimeout(30);
  await once(socket, "timeout");
  assert.equal(recorder.of("queued")[0]?.port, live.port);
  assert.equal(gate.stats().queued, 1, "still queued when its timeout fired");
});

test("an http request timeout fires while its connect waits, and the abort leaves the queue", async (t) => {
  const { live, gate, track } = await withSlotHeld(t);
  const req = http.get({ host: "127.0.0.1", port: live.port, agent: false, timeout: 30 });
  req.on("socket", (s) => track(s));
  req.on("error", () => {});
  await once(req, "timeout");
  req.destroy();
  await closed(req);
  assert.equal(gate.stats().queued, 0);
});

test("an AbortSignal on a queued connect removes it from the queue", async (t) => {
  const { live, recorder, gate, track } = await withSlotHeld(t);
  const abort = new AbortController();
  const socket = track(net.connect({ host: "127.0.0.1", port: live.port, signal: abort.signal }));
  await recorder.next("queued", (e) => e.port === live.port);
  abort.abort();
  const [error] = (await once(socket, "error")) as [Error & { name: string }];
  assert.equal(error.name, "AbortError");
  assert.equal(gate.stats().queued, 0);
});

test("the emulated deadline ends a pending attempt with an ordinary socket error, and the queue moves on", async (t) => {
  const { live, recorder, blocker, blockerErrors, track } = await withSlotHeld(t, {
    timing: "windows",
    timeScale: 0.005,
  });
  const socket = track(net.connect(live.port, "127.0.0.1"));
  await Promise.all([closed(blocker), once(socket, "connect")]);
  const [error] = blockerErrors as Array<
    Error & { code: string; syscall: string; errno: number; port: number }
  >;
  assert.ok(error instanceof Error);
  assert.equal(error.code, "ETIMEDOUT");
  assert.equal(error.syscall, "connect");
  assert.ok(error.errno < 0);
  assert.ok(error.message.startsWith(WINDOWS_TIMEOUT_TEXT));
  assert.equal(recorder.of("timeout").length, 1);
});

test("the reject policy fails the connect at once with ECONNREFUSED", async (t) => {
  const { live, recorder, gate, track } = await withSlotHeld(t, { policy: "reject" });
  const socket = track(net.connect(live.port, "127.0.0.1"));
  const [error] = (await once(socket, "error")) as [Error & { code: string; reason: string }];
  assert.equal(error.code, "ECONNREFUSED");
  assert.equal(error.reason, "SYNLIMIT_ATTEMPT_REJECTED");
  assert.match(error.message, /1 concurrent connect attempt/);
  assert.equal(recorder.of("rejected")[0]?.port, live.port);
  assert.equal(gate.stats().inFlight, 1);
  assert.equal(live.accepted, 0);
});

test("a real connect error releases the slot for the next attempt", async (t) => {
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const closed = await LiveListener.listen();
  const refusedPort = closed.port;
  await closed.close();
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  const { gate } = install({ maxInFlight: 1, timing: "none" });
  t.after(uninstall);
  const refused = net.connect(refusedPort, "127.0.0.1");
  const ok = net.connect(live.port, "127.0.0.1");
  t.after(() => ok.destroy());
  const [[error]] = (await Promise.all([once(refused, "error"), once(ok, "connect")])) as [
    [Error & { code: string }],
    unknown,
  ];
  assert.equal(error.code, "ECONNREFUSED");
  assert.deepEqual(
    recorder.sequence().filter((s) => !s.startsWith("limit")),
    [
      `start:${refusedPort}`,
      `queued:${live.port}`,
      `failed:${refusedPort}`,
      `start:${live.port}`,
      `connected:${live.port}`,
    ],
  );
  assert.equal(gate.stats().inFlight, 0);
});

test("uninstall restores plain connects; a second install replaces the first", async (t) => {
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  const first = install({ maxInFlight: 1 });
  const second = install({ maxInFlight: 5 });
  t.after(uninstall);
  first.uninstall(); // no longer the installed one: a no-op
  const a = net.connect(live.port, "127.0.0.1");
  await once(a, "connect");
  a.destroy();
  assert.equal(second.gate.stats().totals.connected, 1);
  assert.equal(first.gate.stats().totals.connected, 0);
  uninstall();
  const b = net.connect(live.port, "127.0.0.1");
  await once(b, "connect");
  b.destroy();
  assert.equal(
    recorder.of("start").length,
    1,
    "the connect after uninstall was not seen by any gate",
  );
});

import assert from "node:assert/strict";
import { connect as netConnect, type Socket } from "node:net";
import { test } from "node:test";
import { SocksClient } from "socks";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";
import { startProxy, until, untilIdle } from "../helpers/proxy-fixtures.js";

// The scaled-down load case (bench/proxy-load.ts runs 10,000 / 1,000).
const PENDING = 100;
const OTHERS = 400;

test(`load: ${PENDING} attempts pending on a tarpit, ${OTHERS} clients of other identities not delayed, nothing leaks`, async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const proxy = await startProxy(t, { identity: "user", limits: { profile: "incident" } });
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  const sockets: Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const connect = (user: string, port: number) => {
    // Our own socket, so the test can end a client the proxy keeps waiting.
    const socket = netConnect(proxy.port, "127.0.0.1");
    socket.on("error", () => {});
    sockets.push(socket);
    return SocksClient.createConnection({
      proxy: { host: "127.0.0.1", port: proxy.port, type: 5, userId: user, password: "-" },
      command: "connect",
      destination: { host: "127.0.0.1", port },
      existing_socket: socket,
      timeout: 120_000,
    }).then(({ socket: s }) => s);
  };

  // One identity's attempts pile up against the dead peer: 1 in SYN_SENT, the rest in line.
  const dead = Array.from({ length: PENDING }, () =>
    connect("dead", tarpit.port).catch(() => null),
  );
  await until(
    () => proxy.stats().inFlight + proxy.stats().queued === PENDING,
    `${PENDING} pending`,
  );
  assert.deepEqual(proxy.stats().identities, [
    { identity: "user:dead", inFlight: 1, queued: PENDING - 1 },
  ]);

  // Everyone else connects through the same proxy meanwhile, each its own identity.
  const others = await Promise.all(
    Array.from({ length: OTHERS }, (_, i) => connect(`u${i}`, live.port)),
  );
  assert.equal(others.length, OTHERS);
  await until(() => live.accepted === OTHERS, "all others accepted upstream");
  const queuedOthers = recorder.of("queued").filter((e) => e.key !== "user:dead");
  assert.deepEqual(queuedOthers, [], "no other identity ever waited");
  const stats = proxy.stats();
  assert.equal(stats.tunnels, OTHERS);
  assert.equal(stats.inFlight + stats.queued, PENDING, "the dead identity's line is unchanged");
  assert.equal(stats.clients, PENDING + OTHERS);

  for (const s of sockets) s.destroy();
  const outcomes = await Promise.all(dead);
  assert.ok(outcomes.every((o) => o === null));
  await untilIdle(proxy);
  // Every attempt (ids are per gate) settled exactly once: started ones connected or were cancelled, the rest left the line.
  const settled = ["connected", "cancelled", "failed", "timeout"].flatMap((c) =>
    recorder.of(c as "connected").map((e) => `${e.gate}#${e.id}`),
  );
  assert.equal(new Set(settled).size, settled.length);
  assert.equal(settled.length, PENDING + OTHERS);
});

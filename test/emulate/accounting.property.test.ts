import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";
import fc from "fast-check";
import { type Clock, systemClock } from "../../src/clock.js";
import { install, uninstall } from "../../src/emulate/install.js";
import { synSentOf } from "../../src/os/linux/tcp-table.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";

/** The system clock, counting the timers still armed. */
class CountingClock implements Clock {
  armed = 0;
  now = () => systemClock.now();
  setTimer(fn: () => void, ms: number) {
    this.armed++;
    let live = true;
    const timer = systemClock.setTimer(() => {
      live = false;
      this.armed--;
      fn();
    }, ms);
    return {
      cancel: () => {
        if (live) this.armed--;
        live = false;
        timer.cancel();
      },
    };
  }
}

type Target = "tarpit" | "live" | "refused";
type Op =
  | { kind: "connect"; target: Target }
  | { kind: "destroy"; pick: number }
  | { kind: "tick"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("connect" as const),
      target: fc.constantFrom<Target>("tarpit", "live", "refused"),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("destroy" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("tick" as const),
      ms: fc.integer({ min: 0, max: 15 }),
    }),
  },
);

let tarpit: Tarpit;
let live: LiveListener;
let refusedPort: number;

before(async () => {
  tarpit = await Tarpit.listen();
  live = await LiveListener.listen();
  const closed = await LiveListener.listen();
  refusedPort = closed.port;
  await closed.close();
});

after(async () => {
  await Promise.all([tarpit.close(), live.close()]);
});

const closed = (s: net.Socket) =>
  new Promise<void>((resolve) => (s.closed ? resolve() : s.once("close", () => resolve())));

test("property (real sockets): random connect/destroy/timeout schedules keep the limit, FIFO, and release every slot once", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 2 }),
      fc.option(fc.integer({ min: 10, max: 40 }), { nil: undefined }),
      fc.array(op, { minLength: 1, maxLength: 14 }),
      // winxp-sp2's known-reachable exemption: attempts to a host that just
      // accepted a connection go ahead uncounted.
      fc.boolean(),
      async (maxInFlight, connectTimeoutMs, ops, exemptReachable) => {
        const clock = new CountingClock();
        const recorder = new EventRecorder();
        const { gate } = install({
          maxInFlight,
          clock,
          timing: connectTimeoutMs ? { connectTimeoutMs } : "none",
          knownReachableMs: exemptReachable ? 60_000 : null,
        });
        const sockets: net.Socket[] = [];
        try {
          for (const o of ops) {
            if (o.kind === "connect") {
              const port =
                o.target === "tarpit" ? tarpit.port : o.target === "live" ? live.port : refusedPort;
              const s = net.connect(port, "127.0.0.1");
              s.on("error", () => {});
              sockets.push(s);
            } else if (o.kind === "destroy" && sockets.length > 0) {
              sockets[o.pick % sockets.length]?.destroy();
            } else if (o.kind === "tick") {
              await new Promise((r) => setTimeout(r, o.ms));
            }
            assert.ok(gate.stats().inFlight <= maxInFlight);
          }
          for (const s of sockets) s.destroy();
          await Promise.all(sockets.map(closed));

          const stats = gate.stats();
          assert.equal(stats.inFlight, 0, "every slot released");
          assert.equal(stats.queued, 0, "nobody left in line");
          assert.equal(clock.armed, 0, "no deadline timer left behind");
          assert.deepEqual(await synSentOf(), [], "no socket left in SYN_SENT");

          // Exactly one end per attempt; never more than the limit in flight at any event.
          const ends = new Map<number, number>();
          let inFlight = 0;
          const queuedOrder: number[] = [];
          const startOrder: number[] = [];
          for (const { channel, event } of recorder.events) {
            if (channel === "limitReached") continue;
            if (channel === "queued") queuedOrder.push(event.id);
            if (channel === "start") {
              if (!event.exempt) inFlight++;
              if (queuedOrder.includes(event.id)) startOrder.push(event.id);
            }
            if (channel !== "queued" && channel !== "start") {
              ends.set(event.id, (ends.get(event.id) ?? 0) + 1);
              if (
                recorder.events.some(
                  (r) => r.channel === "start" && r.event.id === event.id && !r.event.exempt,
                )
              )
                inFlight--;
            }
            assert.ok(inFlight <= maxInFlight, `${inFlight} attempts in flight`);
          }
          // A socket destroyed before Node issued its connect makes no attempt at all.
          assert.ok(ends.size <= sockets.length, "no socket made two attempts");
          assert.ok(
            [...ends.values()].every((n) => n === 1),
            "every attempt ended exactly once",
          );
          const startedFromQueue = queuedOrder.filter((id) => startOrder.includes(id));
          assert.deepEqual(startOrder, startedFromQueue, "queued attempts started in FIFO order");
        } finally {
          for (const s of sockets) s.destroy();
          recorder.stop();
          uninstall();
        }
      },
    ),
    { numRuns: 200 },
  );
});

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { FifoDeadlines } from "../src/deadlines.js";
import { FakeClock } from "./helpers/fake-clock.js";

test("items expire in the order they were added, each one duration after its add, on one timer", () => {
  const clock = new FakeClock();
  const expired: Array<[string, number]> = [];
  const d = new FifoDeadlines<string>(clock, 100, (item) => expired.push([item, clock.now()]));
  d.add("a");
  clock.advance(30);
  d.add("b");
  d.add("c");
  assert.equal(clock.pendingTimers, 1);
  clock.advance(70);
  assert.deepEqual(expired, [["a", 100]]);
  clock.advance(30);
  assert.deepEqual(expired, [
    ["a", 100],
    ["b", 130],
    ["c", 130],
  ]);
  assert.equal(d.size, 0);
  assert.equal(clock.pendingTimers, 0);
});

test("delete ends a deadline; the last delete cancels the timer; add again restarts it", () => {
  const clock = new FakeClock();
  const expired: string[] = [];
  const d = new FifoDeadlines<string>(clock, 100, (item) => expired.push(item));
  d.add("a");
  d.add("b");
  assert.equal(d.delete("a"), true);
  assert.equal(d.delete("a"), false);
  clock.advance(50);
  d.add("b"); // restarted: due at 150, behind nothing
  clock.advance(99);
  assert.deepEqual(expired, []);
  clock.advance(1);
  assert.deepEqual(expired, ["b"]);
  d.add("c");
  d.delete("c");
  assert.equal(clock.pendingTimers, 0);
});

test("an item added by an expiry does not delay the older ones still waiting", () => {
  // The gate's case: a timed-out attempt frees its slot and the next queued
  // attempt starts (is added) from inside the expiry.
  const clock = new FakeClock();
  const expired: Array<[string, number]> = [];
  const d = new FifoDeadlines<string>(clock, 1000, (item) => {
    expired.push([item, clock.now()]);
    if (item === "a") d.add("c");
  });
  d.add("a");
  clock.advance(100);
  d.add("b");
  clock.advance(2000);
  assert.deepEqual(expired, [
    ["a", 1000],
    ["b", 1100],
    ["c", 2000],
  ]);
});

test("an expiry that throws still leaves the others armed", () => {
  const clock = new FakeClock();
  const expired: string[] = [];
  const d = new FifoDeadlines<string>(clock, 10, (item) => {
    expired.push(item);
    if (item === "a") throw new Error("owner bug");
  });
  d.add("a");
  clock.advance(5);
  d.add("b");
  assert.throws(() => clock.advance(5), /owner bug/);
  clock.advance(5);
  assert.deepEqual(expired, ["a", "b"]);
  assert.equal(clock.pendingTimers, 0);
});

test("an expiry that adds or deletes others is safe", () => {
  const clock = new FakeClock();
  const expired: string[] = [];
  const d = new FifoDeadlines<string>(clock, 10, (item) => {
    expired.push(item);
    if (item === "a") {
      d.delete("b");
      d.add("late");
    }
  });
  d.add("a");
  d.add("b");
  clock.advance(10);
  assert.deepEqual(expired, ["a"]);
  clock.advance(10);
  assert.deepEqual(expired, ["a", "late"]);
  assert.equal(clock.pendingTimers, 0);
});

test("property: every item still present expires exactly once, exactly one duration after its last add", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("add" as const), item: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant("delete" as const), item: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 60 }) }),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 50 }),
      fc.array(op, { maxLength: 60 }),
      (duration, ops) => {
        const clock = new FakeClock();
        const due = new Map<number, number>();
        const d = new FifoDeadlines<number>(clock, duration, (item) => {
          assert.equal(clock.now(), due.get(item), `item ${item} expired at ${clock.now()}`);
          due.delete(item);
          // As the gate does: an expiry starts the next one in line.
          if (item % 2 === 0 && !due.has(item + 1)) {
            d.add(item + 1);
            due.set(item + 1, clock.now() + duration);
          }
        });
        const check = () => {
          for (const at of due.values()) assert.ok(at > clock.now());
        };
        for (const o of ops) {
          if (o.kind === "add") {
            d.add(o.item);
            due.set(o.item, clock.now() + duration);
          } else if (o.kind === "delete") {
            assert.equal(d.delete(o.item), due.delete(o.item));
          } else {
            clock.advance(o.ms);
            check();
          }
        }
        // Two durations: an expiry at the end of the first may add one more.
        clock.advance(2 * duration);
        check();
        assert.equal(due.size, 0);
        assert.equal(d.size, 0);
        assert.equal(clock.pendingTimers, 0);
      },
    ),
    { numRuns: 1000 },
  );
});

test("one attempt after another parks one real timer instead of arming and cancelling one each", async () => {
  const { systemClock } = await import("../src/clock.js");
  let armed = 0;
  const clock = {
    now: () => systemClock.now(),
    setTimer(fn: () => void, ms: number) {
      armed++;
      return systemClock.setTimer(fn, ms);
    },
  };
  const expired: number[] = [];
  const d = new FifoDeadlines<number>(clock, 21_000, (n) => expired.push(n));
  for (let i = 0; i < 100; i++) {
    d.add(i);
    d.delete(i);
  }
  assert.equal(armed, 1);
  assert.deepEqual(expired, []);
  // A parked timer never keeps a process alive: a program that made its
  // connects and is done exits at once, not 21 s later.
  const { spawnSync } = await import("node:child_process");
  const url = new URL("../src/deadlines.js", import.meta.url).href;
  const clockUrl = new URL("../src/clock.js", import.meta.url).href;
  const child = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `const { FifoDeadlines } = await import(${JSON.stringify(url)});
       const { systemClock } = await import(${JSON.stringify(clockUrl)});
       const d = new FifoDeadlines(systemClock, 600000, () => {});
       d.add(1); d.delete(1);`,
    ],
    // Guards a hang, it is not a measurement: the child needs well under a second.
    { timeout: 60_000 },
  );
  assert.equal(child.status, 0, String(child.stderr));
});

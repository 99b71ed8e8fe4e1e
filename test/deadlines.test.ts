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
        const expired: Array<[number, number]> = [];
        const d = new FifoDeadlines<number>(clock, duration, (item) => {
          expired.push([item, clock.now()]);
        });
        const check = () => {
          for (const [item, at] of expired) {
            assert.equal(due.get(item), at, `item ${item} expired at ${at}`);
            due.delete(item);
          }
          expired.length = 0;
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
        clock.advance(duration);
        check();
        assert.equal(due.size, 0);
        assert.equal(d.size, 0);
        assert.equal(clock.pendingTimers, 0);
      },
    ),
  );
});

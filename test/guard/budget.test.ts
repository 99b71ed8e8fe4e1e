import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { AttemptBudget, sharedBudget } from "../../src/guard/budget.js";

test("one per destination and one overall: waiters are granted in FIFO order as slots free", async () => {
  const budget = new AttemptBudget(2, 1);
  const order: string[] = [];
  const a = await budget.acquire("a");
  const b2 = budget.acquire("a").then((r) => {
    order.push("a2");
    return r;
  });
  const c = await budget.acquire("c");
  const d = budget.acquire("d").then((r) => {
    order.push("d");
    return r;
  });
  assert.equal(budget.inFlight, 2);
  assert.equal(budget.waiting, 2);
  c();
  const rd = await d;
  assert.deepEqual(order, ["d"], "a2 still waits for its destination; d passes it");
  a();
  const ra2 = await b2;
  assert.deepEqual(order, ["d", "a2"]);
  rd();
  ra2();
  ra2(); // a second release is ignored
  assert.equal(budget.inFlight, 0);
});

test("an aborted waiter leaves the line", async () => {
  const budget = new AttemptBudget(1, 1);
  const held = await budget.acquire("x");
  const abort = new AbortController();
  const waiting = budget.acquire("y", abort.signal);
  abort.abort();
  await assert.rejects(waiting, (e: Error & { code?: string }) => e.code === "SYNLIMIT_ABORTED");
  assert.equal(budget.waiting, 0);
  held();
  assert.equal(budget.inFlight, 0);
});

test("budgets are shared by name across every guard (and every copy) in the process", () => {
  const first = sharedBudget("test-shared", 1, 1);
  assert.equal(sharedBudget("test-shared", 5, 5), first);
  assert.notEqual(sharedBudget("test-other", 1, 1), first);
});

test("property: random acquire/release/abort schedules keep both limits and end at zero", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 2 }),
      fc.array(
        fc.oneof(
          fc.record({
            kind: fc.constant("acquire" as const),
            dest: fc.constantFrom("a", "b", "c"),
          }),
          fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
          fc.record({ kind: fc.constant("abort" as const), pick: fc.nat() }),
        ),
        { maxLength: 40 },
      ),
      async (maxOverall, maxPer, ops) => {
        const budget = new AttemptBudget(maxOverall, maxPer);
        const held: Array<{ dest: string; release: () => void }> = [];
        const waiting: Array<{ abort: AbortController; done: Promise<void> }> = [];
        const perDest = () => {
          const m = new Map<string, number>();
          for (const h of held) m.set(h.dest, (m.get(h.dest) ?? 0) + 1);
          return m;
        };
        for (const op of ops) {
          if (op.kind === "acquire") {
            const abort = new AbortController();
            const done = budget.acquire(op.dest, abort.signal).then(
              (release) => {
                held.push({ dest: op.dest, release });
              },
              () => {},
            );
            waiting.push({ abort, done });
          } else if (op.kind === "release" && held.length > 0) {
            const [h] = held.splice(op.pick % held.length, 1);
            h?.release();
          } else if (op.kind === "abort" && waiting.length > 0) {
            waiting[op.pick % waiting.length]?.abort.abort();
          }
          await new Promise((r) => setImmediate(r));
          assert.equal(budget.inFlight, held.length);
          assert.ok(held.length <= maxOverall);
          for (const n of perDest().values()) assert.ok(n <= maxPer);
        }
        for (const w of waiting) w.abort.abort();
        await Promise.all(waiting.map((w) => w.done));
        for (const h of held.splice(0)) h.release();
        assert.equal(budget.inFlight, 0);
        assert.equal(budget.waiting, 0);
      },
    ),
    { numRuns: 300 },
  );
});

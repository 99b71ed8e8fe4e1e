import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Backoff } from "../../src/guard/backoff.js";

test("the gRPC schedule without jitter: 1 s, ×1.6, capped at 120 s; reset starts over", () => {
  const b = new Backoff({ random: () => 0.5 });
  const delays = Array.from({ length: 13 }, () => Math.round(b.next()));
  assert.deepEqual(
    delays,
    [1000, 1600, 2560, 4096, 6554, 10486, 16777, 26844, 42950, 68719, 109951, 120000, 120000],
  );
  b.reset();
  assert.equal(b.next(), 1000);
});

test("property: every delay stays within ±jitter of the schedule", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 0.999999, noNaN: true }), { minLength: 1, maxLength: 30 }),
      (randoms) => {
        let i = 0;
        const b = new Backoff({ random: () => randoms[i++ % randoms.length] as number });
        let base = 1000;
        for (let k = 0; k < randoms.length; k++) {
          const d = b.next();
          assert.ok(d >= base * 0.8 - 1e-9 && d <= base * 1.2 + 1e-9, `${d} vs ${base}`);
          base = Math.min(base * 1.6, 120_000);
        }
      },
    ),
  );
});

test("options are validated", () => {
  assert.throws(() => new Backoff({ initialMs: 0 }), /backoff.initialMs must be a positive number/);
  assert.throws(() => new Backoff({ multiplier: 0.5 }), /backoff.multiplier/);
  assert.throws(() => new Backoff({ jitter: 1 }), /backoff.jitter/);
  assert.throws(
    () => new Backoff({ initialMs: 5000, maxMs: 1000 }),
    /backoff.maxMs must be at least initialMs/,
  );
});

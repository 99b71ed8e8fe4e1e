import assert from "node:assert/strict";
import { test } from "node:test";
import { type Passage, searchLimit, type TrialResult } from "../../src/probe/search.js";

/** A limiter model: with `held` pending, the live connect passes iff held < k. */
function model(k: number, over: Exclude<Passage, "through"> = "blocked") {
  const asked: number[] = [];
  const trial = async (held: number): Promise<TrialResult> => {
    asked.push(held);
    return held < k ? { passage: "through", held } : { passage: over, held };
  };
  return { trial, asked };
}

test("finds every k from 1 to max, in O(log k) trials", async () => {
  for (let k = 1; k <= 64; k++) {
    const m = model(k);
    const r = await searchLimit(64, m.trial);
    assert.equal(r.limit, k, `k=${k}`);
    assert.equal(r.over, "blocked");
    assert.ok(r.trials <= 2 * Math.ceil(Math.log2(k + 1)) + 1, `k=${k}: ${m.asked.join(",")}`);
  }
});

test("doubles, then bisects: k = 16 costs 8 trials, one of them over the limit in the doubling", async () => {
  const m = model(16);
  const r = await searchLimit(64, m.trial);
  assert.deepEqual(m.asked, [1, 2, 4, 8, 16, 12, 14, 15]);
  assert.equal(r.limit, 16);
});

test("no limit up to max: the doubling stops at max, which need not be a power of two", async () => {
  const m = model(1000);
  const r = await searchLimit(10, m.trial);
  assert.deepEqual(m.asked, [1, 2, 4, 8, 10]);
  assert.equal(r.limit, null);
  assert.equal(r.over, null);
});

test("refusals: attempts refused while being held count as not held", async () => {
  // Reject policy with k = 3: a fourth held attempt is refused, so the trial
  // at 4 really ran with 3 pending — and that already settles it.
  const asked: number[] = [];
  const r = await searchLimit(64, async (held) => {
    asked.push(held);
    const pending = Math.min(held, 3);
    return { passage: pending < 3 ? "through" : "refused", held: pending };
  });
  assert.equal(r.limit, 3);
  assert.equal(r.over, "refused");
  assert.deepEqual(asked, [1, 2, 4]);
});

test("a failure below an earlier pass wins: the latest evidence decides", async () => {
  const answers = new Map<number, Passage>([
    [1, "through"],
    [2, "through"],
    [4, "blocked"],
    [3, "blocked"],
  ]);
  const r = await searchLimit(64, async (held) => ({
    passage: answers.get(held) ?? "blocked",
    held,
  }));
  assert.equal(r.limit, 3);
});

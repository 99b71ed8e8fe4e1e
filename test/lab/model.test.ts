import assert from "node:assert/strict";
import { test } from "node:test";
import { predictLoginWaits } from "../../src/lab/model.js";

const t = 21_000;
const near = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= t / 100, `${what}: ${actual} vs ${expected}`);

test("one reconnect loop, no pause: a login waits the rest of one attempt, 0 to 21 s evenly", () => {
  const m = predictLoginWaits({ attemptTimeoutMs: t, channels: 1, retryPauseMs: 0, limit: 1 });
  near(m.quantile(25), t / 4, "p25");
  near(m.quantile(50), t / 2, "p50");
  near(m.quantile(75), (3 * t) / 4, "p75");
  near(m.maxMs, t, "max");
});

test("two loops: one attempt is always queued behind the pending one, waits 21 to 42 s", () => {
  const m = predictLoginWaits({ attemptTimeoutMs: t, channels: 2, retryPauseMs: 0, limit: 1 });
  near(m.quantile(1), t, "p1");
  near(m.quantile(50), 1.5 * t, "p50");
  near(m.maxMs, 2 * t, "max");
});

test("a retry pause leaves the slot free for its share of the cycle", () => {
  const pause = t;
  const m = predictLoginWaits({ attemptTimeoutMs: t, channels: 1, retryPauseMs: pause, limit: 1 });
  const free = m.waits.filter((w) => w === 0).length / m.waits.length;
  assert.ok(Math.abs(free - pause / (t + pause)) < 0.01, `free share ${free}`);
  near(m.maxMs, t, "max");
});

test("fewer agent loops than slots: logins never wait", () => {
  const m = predictLoginWaits({ attemptTimeoutMs: t, channels: 1, retryPauseMs: 0, limit: 10 });
  assert.equal(m.maxMs, 0);
});

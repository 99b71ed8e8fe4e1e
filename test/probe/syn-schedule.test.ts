import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import {
  linuxSynSchedule,
  nextRetransmitMs,
  readSynSchedule,
  retransmissionOf,
} from "../../src/probe/syn-schedule.js";

test("Linux's SYN schedule: exponential, or linear first (tcp_syn_linear_timeouts)", () => {
  // Before 6.5, and with linear timeouts off: 1, 3, 7, 15, 31, 63 s, give up at 127 s.
  const old = linuxSynSchedule(6, 0);
  assert.deepEqual(old.retransmitAtMs, [1000, 3000, 7000, 15000, 31000, 63000]);
  assert.equal(old.giveUpAtMs, 127_000);
  // The kernel's default of 4 linear timeouts: RTOs 1,1,1,1,1,2,4,…; the
  // linear resends come on top of tcp_syn_retries (tcp_write_timeout), as
  // tcpdump shows against the tarpit: 10 resends, give up at 131 s.
  const linear = linuxSynSchedule(6, 4);
  assert.deepEqual(
    linear.retransmitAtMs,
    [1000, 2000, 3000, 4000, 5000, 7000, 11000, 19000, 35000, 67000],
  );
  assert.equal(linear.giveUpAtMs, 131_000);
  // tcp_syn_retries = 2: two resends, then one more wait.
  assert.deepEqual(linuxSynSchedule(2, 0).retransmitAtMs, [1000, 3000]);
  assert.equal(linuxSynSchedule(2, 0).giveUpAtMs, 7000);
  // With linear timeouts the give-up is the first timer at or after the
  // exponential model's time (measured in a namespace with --measure-give-up:
  // 3.07 s, 7.1 s and 19.4 s for retries 1, 2 and 3; a count of retries +
  // linear resends would say 7, 11 and 19 s).
  assert.deepEqual(linuxSynSchedule(1, 4).retransmitAtMs, [1000, 2000]);
  assert.equal(linuxSynSchedule(1, 4).giveUpAtMs, 3000);
  assert.equal(linuxSynSchedule(2, 4).giveUpAtMs, 7000);
  assert.deepEqual(
    linuxSynSchedule(3, 4).retransmitAtMs,
    [1000, 2000, 3000, 4000, 5000, 7000, 11000],
  );
  assert.equal(linuxSynSchedule(3, 4).giveUpAtMs, 19_000);
  // The RTO is capped.
  // 1 + 2 + 4 + 8 + 10 × 5 s
  assert.equal(linuxSynSchedule(8, 0, 1000, 10_000).giveUpAtMs, 65_000);
});

test("a connect time on the schedule is a dropped SYN; off it, something else", () => {
  const s = linuxSynSchedule(6, 0);
  assert.equal(retransmissionOf(s, 0.3), 0);
  assert.equal(retransmissionOf(s, 900), 0);
  assert.equal(retransmissionOf(s, 1017), 1);
  assert.equal(retransmissionOf(s, 3066), 2);
  assert.equal(retransmissionOf(s, 1800), null, "between resends: a queue, not a drop");
  assert.equal(nextRetransmitMs(s, 1500), 3000);
  assert.equal(nextRetransmitMs(s, 70_000), null);
});

test("this host's schedule is read from /proc", async () => {
  const s = await readSynSchedule();
  const retries = Number((await readFile("/proc/sys/net/ipv4/tcp_syn_retries", "utf8")).trim());
  const linear = await readFile("/proc/sys/net/ipv4/tcp_syn_linear_timeouts", "utf8").then(
    (t) => Number(t.trim()),
    () => 0,
  );
  const expected = linuxSynSchedule(retries, linear);
  assert.deepEqual(s.retransmitAtMs, expected.retransmitAtMs);
  assert.equal(s.giveUpAtMs, expected.giveUpAtMs);
  assert.match(s.source, new RegExp(`tcp_syn_retries ${retries}`));
});

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { type Attempt, AttemptGate } from "../../src/gate/gate.js";
import type { Policy } from "../../src/gate/types.js";
import { EventRecorder } from "../helpers/events.js";
import { FakeClock } from "../helpers/fake-clock.js";

type Op =
  | { kind: "request"; port: number; owner: number }
  | { kind: "connected" | "failed" | "cancel"; pick: number }
  | { kind: "advance"; ms: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("request" as const),
      port: fc.integer({ min: 1, max: 3 }),
      owner: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constantFrom("connected" as const, "failed" as const, "cancel" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 150 }),
    }),
  },
);

const config = fc.record({
  maxInFlight: fc.integer({ min: 1, max: 3 }),
  policy: fc.constantFrom<Policy>("queue", "reject"),
  scope: fc.constantFrom("process" as const, "destination" as const),
  timeoutMs: fc.option(fc.integer({ min: 1, max: 200 }), { nil: undefined }),
  fairness: fc.constantFrom("fifo" as const, "round-robin" as const),
  knownReachableMs: fc.option(fc.integer({ min: 1, max: 300 }), { nil: null }),
});

/** Per attempt id, how often each gate event was published, and the start order. */
function tally(recorder: EventRecorder) {
  const counts = new Map<number, Record<string, number>>();
  const starts: number[] = [];
  for (const { channel, event } of recorder.events) {
    if (channel === "limitReached") continue;
    const c = counts.get(event.id) ?? {};
    c[channel] = (c[channel] ?? 0) + 1;
    counts.set(event.id, c);
    if (channel === "start") starts.push(event.id);
  }
  return { counts, starts };
}

test("property: any schedule keeps the limit, FIFO order, and releases every slot exactly once", () => {
  fc.assert(
    fc.property(config, fc.array(op, { maxLength: 60 }), (cfg, ops) => {
      const clock = new FakeClock();
      const gate = new AttemptGate({
        clock,
        maxInFlight: cfg.maxInFlight,
        policy: cfg.policy,
        scope: cfg.scope,
        fairness: cfg.fairness,
        knownReachableMs: cfg.knownReachableMs,
        ...(cfg.timeoutMs ? { timing: { connectTimeoutMs: cfg.timeoutMs } } : {}),
      });
      const recorder = new EventRecorder();
      const attempts: Attempt[] = [];
      const onStartCalls = new Map<number, number>();
      const onTimeoutCalls = new Map<number, number>();
      try {
        const check = () => {
          const stats = gate.stats();
          // Attempts to a known-reachable host are pending but not counted.
          const pending = attempts.filter((a) => a.state === "pending" && !a.exempt);
          const queued = attempts.filter((a) => a.state === "queued");
          assert.equal(
            stats.inFlight,
            pending.length,
            "inFlight counts exactly the pending attempts",
          );
          assert.equal(stats.queued, queued.length);
          const perKey = new Map<string, { pending: number; queued: number }>();
          for (const a of [...pending, ...queued]) {
            const k = perKey.get(a.key) ?? { pending: 0, queued: 0 };
            k[a.state === "pending" ? "pending" : "queued"]++;
            perKey.set(a.key, k);
          }
          for (const [key, k] of perKey) {
            assert.ok(
              k.pending <= cfg.maxInFlight,
              `${key}: ${k.pending} in flight > ${cfg.maxInFlight}`,
            );
            if (k.queued > 0)
              assert.equal(k.pending, cfg.maxInFlight, `${key}: a slot idles while attempts wait`);
          }
        };
        for (const o of ops) {
          if (o.kind === "request") {
            const a = gate.request(
              { host: `127.0.0.${o.port}`, port: o.port },
              {
                onStart: (x) => onStartCalls.set(x.id, (onStartCalls.get(x.id) ?? 0) + 1),
                onTimeout: (x) => onTimeoutCalls.set(x.id, (onTimeoutCalls.get(x.id) ?? 0) + 1),
              },
              `owner${o.owner}`,
            );
            attempts.push(a);
            if (cfg.policy === "reject") assert.notEqual(a.state, "queued");
          } else if (o.kind === "advance") {
            clock.advance(o.ms);
          } else if (attempts.length > 0) {
            const a = attempts[o.pick % attempts.length] as Attempt;
            // Only a started attempt can connect or fail; anything can be cancelled.
            if (o.kind === "cancel") a.cancel();
            else if (a.state !== "queued") a[o.kind]();
          }
          check();
        }
        for (const a of attempts) a.cancel();
        check();

        assert.equal(gate.stats().inFlight, 0);
        assert.equal(gate.stats().queued, 0);
        assert.equal(clock.pendingTimers, 0, "no deadline timer left behind");
        const events = tally(recorder);
        for (const a of attempts) {
          const c = events.counts.get(a.id) ?? {};
          const ends =
            (c.connected ?? 0) +
            (c.failed ?? 0) +
            (c.timeout ?? 0) +
            (c.cancelled ?? 0) +
            (c.rejected ?? 0);
          assert.equal(ends, 1, `attempt ${a.id} ended ${ends} times`);
          assert.equal(c.start ?? 0, onStartCalls.get(a.id) ?? 0);
          assert.ok((c.start ?? 0) <= 1, `attempt ${a.id} started twice`);
          assert.equal(c.timeout ?? 0, onTimeoutCalls.get(a.id) ?? 0);
        }
        // FIFO: within a key (round-robin: within an owner's bucket), attempts
        // start in the order they were requested.
        const startedByKey = new Map<string, number[]>();
        for (const id of events.starts) {
          const a = attempts.find((x) => x.id === id) as Attempt;
          // A known-reachable host skips the line by design.
          if (a.exempt) continue;
          const k = cfg.fairness === "round-robin" ? `${a.key}/${a.owner}` : a.key;
          startedByKey.set(k, [...(startedByKey.get(k) ?? []), id]);
        }
        for (const ids of startedByKey.values()) {
          assert.deepEqual(
            ids,
            [...ids].sort((x, y) => x - y),
          );
        }
      } finally {
        recorder.stop();
      }
    }),
    { numRuns: 3000 },
  );
});

test("property: the rate policy never admits two new destinations within one interval", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ host: fc.integer({ min: 1, max: 8 }), gap: fc.integer({ min: 0, max: 700 }) }),
        {
          maxLength: 40,
        },
      ),
      fc.integer({ min: 0, max: 4 }),
      (requests, workingSetSize) => {
        const clock = new FakeClock();
        const gate = new AttemptGate({ clock, policy: "rate", rate: { workingSetSize } });
        const admittedAt = new Map<string, number[]>();
        const recent: string[] = [];
        const newAdmissions: Array<{ at: number; host: string }> = [];
        const attempts: Attempt[] = [];
        for (const r of requests) {
          clock.advance(r.gap);
          const host = `127.0.0.${r.host}`;
          attempts.push(
            gate.request(
              { host, port: 80 },
              {
                onStart: (a) => {
                  const h = a.destination.host;
                  // Model of the working set: the last `workingSetSize` hosts, LRU.
                  if (!recent.includes(h)) newAdmissions.push({ at: clock.now(), host: h });
                  const next = [...recent.filter((x) => x !== h), h];
                  recent.splice(
                    0,
                    recent.length,
                    ...next.slice(Math.max(0, next.length - workingSetSize)),
                  );
                  admittedAt.set(h, [...(admittedAt.get(h) ?? []), clock.now()]);
                  a.connected();
                },
                onTimeout: () => {},
              },
            ),
          );
        }
        clock.advance(requests.length * 1000 + 1000);
        assert.equal(gate.stats().queued, 0, "every queued attempt is eventually released");
        assert.ok(attempts.every((a) => a.state === "connected"));
        for (let i = 1; i < newAdmissions.length; i++) {
          const [prev, cur] = [newAdmissions[i - 1], newAdmissions[i]] as [
            { at: number; host: string },
            { at: number; host: string },
          ];
          // One release admits one host, with every attempt queued for it.
          const sameRelease = cur.at === prev.at && cur.host === prev.host;
          assert.ok(
            sameRelease || cur.at - prev.at >= 1000,
            `new destinations admitted at ${prev.at} (${prev.host}) and ${cur.at} (${cur.host})`,
          );
        }
        assert.equal(clock.pendingTimers, 0);
      },
    ),
    { numRuns: 1000 },
  );
});

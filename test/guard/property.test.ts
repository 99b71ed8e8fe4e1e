import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import { type TestContext, test } from "node:test";
import fc from "fast-check";
import { sharedBudget } from "../../src/guard/budget.js";
import { guardChannelNames } from "../../src/guard/channels.js";
import { Guard } from "../../src/guard/guard.js";
import { ReconnectingLink } from "../../src/guard/link.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { FakeClock } from "../helpers/fake-clock.js";

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** live, refusing, silent, and one that flaps between live and refusing. */
async function peers(t: TestContext) {
  const live = await LiveListener.listen();
  t.after(() => live.close());
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const gone = await LiveListener.listen();
  await gone.close();
  let flapping: LiveListener | null = await LiveListener.listen();
  const flapPort = flapping.port;
  t.after(() => flapping?.close());
  return {
    ports: { live: live.port, refusing: gone.port, silent: tarpit.port, flapping: flapPort },
    async flip() {
      if (flapping) {
        await flapping.close();
        flapping = null;
      } else flapping = await LiveListener.listen({ port: flapPort });
    },
  };
}

type Kind = "live" | "refusing" | "silent" | "flapping";
type Op =
  | { op: "connect"; to: Kind; abort: "never" | "soon" | "now" }
  | { op: "advance"; ms: number }
  | { op: "flip" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("connect" as const),
    to: fc.constantFrom<Kind>("live", "refusing", "silent", "flapping"),
    abort: fc.constantFrom("never" as const, "never" as const, "soon" as const, "now" as const),
  }),
  fc.record({
    op: fc.constant("advance" as const),
    // Short steps inside deadlines, long ones past the duty-cycle waits (≥ 24 s after a 1 s hold).
    ms: fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 20_000, max: 40_000 })),
  }),
  fc.record({ op: fc.constant("flip" as const) }),
);

let seq = 0;

test("property: over random schedules of callers, peer states, aborts and clock steps the guard keeps its promises", async (t) => {
  const fixture = await peers(t);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  t.after(() => process.off("unhandledRejection", onUnhandled));

  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 20 }), async (ops) => {
      const clock = new FakeClock();
      const budget = `property-${seq++}`;
      const guard = new Guard({ budget, clock, maxInFlight: 2, maxInFlightPerDestination: 2 });
      const portToKind = new Map(Object.entries(fixture.ports).map(([k, p]) => [p, k]));
      // Per destination: attempts started in the current half-open period.
      const halfOpenAttempts = new Map<number, number>();
      const violations: string[] = [];
      const onBreaker = (m: unknown) => {
        const e = m as { port: number; to: string };
        if (e.to === "half-open") halfOpenAttempts.set(e.port, 0);
      };
      const onStart = (m: unknown) => {
        const e = m as { port: number };
        if (!portToKind.has(e.port)) return;
        if (guard.state("127.0.0.1", e.port) === "half-open") {
          const n = (halfOpenAttempts.get(e.port) ?? 0) + 1;
          halfOpenAttempts.set(e.port, n);
          if (n > 1) violations.push(`${n} attempts to ${e.port} in one half-open period`);
        }
      };
      diagnostics.subscribe(guardChannelNames.breaker, onBreaker);
      diagnostics.subscribe(guardChannelNames.connectStart, onStart);
      guard.onAttempt((e) => {
        if (e.durationMs > e.deadlineMs)
          violations.push(`attempt lived ${e.durationMs} ms > deadline ${e.deadlineMs} ms`);
      });
      const pending: Array<Promise<unknown>> = [];
      try {
        for (const step of ops) {
          if (step.op === "advance") clock.advance(step.ms);
          else if (step.op === "flip") await fixture.flip();
          else {
            const abort = new AbortController();
            const p = guard.connect({
              host: "127.0.0.1",
              port: fixture.ports[step.to],
              signal: abort.signal,
            });
            pending.push(
              p.then(
                (s) => s.destroy(),
                () => {},
              ),
            );
            if (step.abort === "now") abort.abort();
            else if (step.abort === "soon") setImmediate(() => abort.abort());
          }
          await turns(2);
        }
        // Let every attempt end: deadlines pass on the fake clock.
        let settled = false;
        void Promise.all(pending).then(() => {
          settled = true;
        });
        for (let i = 0; i < 200 && !settled; i++) {
          clock.advance(1000);
          await turns(3);
        }
        assert.ok(settled, "every connect settles once its deadlines pass");
        const b = sharedBudget(budget, 2, 2);
        assert.deepEqual(
          { inFlight: b.inFlight, waiting: b.waiting },
          { inFlight: 0, waiting: 0 },
          "every budget slot released exactly once",
        );
        assert.deepEqual(violations, []);
      } finally {
        diagnostics.unsubscribe(guardChannelNames.breaker, onBreaker);
        diagnostics.unsubscribe(guardChannelNames.connectStart, onStart);
      }
    }),
    {
      numRuns: 60,
      // The schedule of issue 10, always among the runs: a silent peer's breaker
      // half-opens and two callers arrive while the trial is pending.
      examples: [
        [
          [
            { op: "connect", to: "silent", abort: "never" },
            { op: "advance", ms: 1000 },
            { op: "advance", ms: 30_000 },
            { op: "connect", to: "silent", abort: "never" },
            { op: "connect", to: "silent", abort: "never" },
            { op: "connect", to: "silent", abort: "soon" },
            { op: "advance", ms: 1000 },
          ],
        ],
      ],
    },
  );
  await turns(2);
  assert.deepEqual(unhandled, [], "no unhandled rejection");
});

test("property: ReconnectingLink.close() always resolves within its deadline", {
  timeout: 120_000,
}, async (t) => {
  const fixture = await peers(t);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<Kind>("live", "refusing", "silent", "flapping"),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constant(-1)), { maxLength: 6 }),
      fc.integer({ min: 1, max: 5000 }),
      async (kind, steps, closeTimeoutMs) => {
        const clock = new FakeClock();
        const link = new ReconnectingLink({
          host: "127.0.0.1",
          port: fixture.ports[kind],
          clock,
          closeTimeoutMs,
          guard: { budget: `property-link-${seq++}` },
        });
        for (const ms of steps) {
          if (ms < 0) await fixture.flip();
          else clock.advance(ms);
          link.send("record\n");
          await turns(2);
        }
        let resolved = false;
        const closing = link.close().then(() => {
          resolved = true;
        });
        await turns(2);
        clock.advance(closeTimeoutMs);
        await closing;
        assert.equal(resolved, true);
        assert.equal(link.send("late\n"), false);
      },
    ),
    { numRuns: 30 },
  );
});

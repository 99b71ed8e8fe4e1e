import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { profiles } from "../../src/emulate/profiles.js";
import { SynlimitError, WINDOWS_TIMEOUT_TEXT } from "../../src/errors.js";
import { type Attempt, AttemptGate } from "../../src/gate/gate.js";
import { parseTiming, resolveTiming, timings } from "../../src/gate/timing.js";
import type { GateOptions } from "../../src/gate/types.js";
import { createGate, validateSettings } from "../../src/proxy/limits.js";
import { EventRecorder } from "../helpers/events.js";
import { FakeClock } from "../helpers/fake-clock.js";

function pendingUnder(options: GateOptions) {
  const clock = new FakeClock();
  const gate = new AttemptGate({ clock, name: "t", ...options });
  const timedOut: Array<{ at: number; error: Error }> = [];
  const a: Attempt = gate.request(
    { host: "127.0.0.1", port: 9 },
    { onStart: () => {}, onTimeout: (_x, error) => timedOut.push({ at: clock.now(), error }) },
  );
  return { clock, gate, a, timedOut };
}

test("the built-in schedules: windows today, the field host's windows-2008, linux", () => {
  assert.deepEqual(timings.windows.synAtMs, [0, 1000, 3000, 7000, 15000]);
  assert.equal(timings.windows.failAtMs, 21_000);
  assert.deepEqual(timings["windows-2008"].synAtMs, [0, 3000, 9000]);
  assert.equal(timings["windows-2008"].failAtMs, 21_000);
  assert.deepEqual(timings.linux.synAtMs, [0, 1000, 3000, 7000, 15000, 31000, 63000]);
  assert.equal(timings.linux.failAtMs, 127_000);
  for (const t of Object.values(timings))
    assert.ok(t.source.length > 20, `${t.kind} cites a source`);
});

test("the incident keeps the field host's schedule; winxp-sp2 the XP-era one", () => {
  assert.equal(profiles.incident.options.timing, "windows-2008");
  assert.equal(profiles["winxp-sp2"].options.timing, "windows-2008");
  assert.equal(profiles.windows.options.timing, "windows");
});

test("parseTiming: names, bare milliseconds and syn:…;giveup:…", () => {
  assert.equal(parseTiming("windows-2008"), "windows-2008");
  assert.deepEqual(parseTiming("1500"), { connectTimeoutMs: 1500 });
  assert.equal(
    parseTiming(" syn:0, 1000,3000 ; giveup:21000".replace(" ; ", ";")),
    "syn:0,1000,3000;giveup:21000",
  );
  const bad: Array<[string, RegExp]> = [
    ["bsd", /timing must be one of none, windows, windows-2008, linux/],
    ["0", /timing must be one of/],
    ["syn:0,1000", /must read syn:MS,MS,…;giveup:MS/],
    ["syn:;giveup:100", /SYN time "" is not a whole number/],
    ["syn:0,1.5;giveup:100", /SYN time "1.5"/],
    ["syn:5;giveup:100", /the first SYN goes out at 0 ms, got 5/],
    ["syn:0,100,100;giveup:500", /SYN times must increase, got 0,100,100/],
    ["syn:0,100;giveup:100", /giveup must be .* after the last SYN \(100 ms\), got 100/],
    ["syn:0;giveup:-1", /giveup "-1" is not a whole number/],
    ["syn:0;giveup:2147483648", /giveup must be at most 2147483647 ms, got 2147483648/],
    [`syn:${Array.from({ length: 65 }, (_, i) => i).join(",")};giveup:1000`, /1 to 64 SYN times/],
  ];
  for (const [text, message] of bad) assert.throws(() => parseTiming(text), message, text);
});

test("a schedule equal to a built-in one is that one; objects are checked alike", () => {
  assert.equal(resolveTiming("syn:0,3000,9000;giveup:21000").kind, "windows-2008");
  const custom = resolveTiming({ synAtMs: [0, 200], giveUpMs: 700 });
  assert.deepEqual([custom.kind, custom.synAtMs, custom.failAtMs], ["schedule", [0, 200], 700]);
  assert.throws(
    () => resolveTiming({ synAtMs: [0, 300, 200], giveUpMs: 700 }),
    /SYN times must increase/,
  );
  assert.throws(() => resolveTiming({ synAtMs: [], giveUpMs: 700 }), /1 to 64 SYN times/);
});

test("windows (today): SYN at 0, 1, 3, 7, 15 s in the attempt's info and events; it fails at 21 s with Windows' text", () => {
  const recorder = new EventRecorder();
  try {
    const { clock, a, timedOut } = pendingUnder({ timing: "windows" });
    clock.advance(250);
    assert.deepEqual(a.synTimes, [0, 1000, 3000, 7000, 15000]);
    assert.equal(a.giveUpAt, 21_000);
    clock.advance(20_749);
    assert.equal(timedOut.length, 0);
    clock.advance(1);
    assert.equal(timedOut[0]?.at, 21_000);
    assert.ok(timedOut[0]?.error.message.startsWith(WINDOWS_TIMEOUT_TEXT));
    const start = recorder.of("start")[0];
    assert.deepEqual(start?.synAtMs, [0, 1000, 3000, 7000, 15000]);
    assert.equal(start?.giveUpMs, 21_000);
  } finally {
    recorder.stop();
  }
});

test("windows-2008 (the field host): SYN at 0, 3, 9 s, fails at 21 s with Windows' text", () => {
  const { clock, a, timedOut } = pendingUnder({ timing: "windows-2008" });
  assert.deepEqual(a.synTimes, [0, 3000, 9000]);
  clock.advance(20_999);
  assert.equal(timedOut.length, 0);
  clock.advance(1);
  assert.ok(timedOut[0]?.error.message.startsWith(WINDOWS_TIMEOUT_TEXT));
});

test("a custom schedule fails at its give-up time, scaled, and its SYN times scale with it", () => {
  const recorder = new EventRecorder();
  try {
    const { clock, a, timedOut } = pendingUnder({
      timing: "syn:0,1000,3000;giveup:10000",
      timeScale: 0.1,
    });
    clock.advance(5);
    const b = pendingUnder({ timing: "none" }).a;
    assert.deepEqual(b.synTimes, [0]);
    assert.equal(b.giveUpAt, null);
    assert.deepEqual(a.synTimes, [0, 100, 300]);
    clock.advance(994);
    assert.equal(timedOut.length, 0);
    clock.advance(1);
    assert.equal(timedOut[0]?.at, 1000);
    assert.match(
      timedOut[0]?.error.message ?? "",
      /ETIMEDOUT 127\.0\.0\.1:9 \(emulated schedule connect timeout after 1000 ms\)/,
    );
    const timeout = recorder.of("timeout")[0];
    assert.deepEqual(timeout?.synAtMs, [0, 100, 300]);
    assert.equal(timeout?.giveUpMs, 1000);
  } finally {
    recorder.stop();
  }
});

test("the proxy's limits take the same schedule syntax", () => {
  const s = validateSettings({ timing: "syn:0,500;giveup:2000" }, "limits");
  assert.equal(s.timing, "syn:0,500;giveup:2000");
  const gate = createGate(s, "p", "1", { timeScale: 1, clock: new FakeClock() });
  assert.deepEqual(gate.options.timing.synAtMs, [0, 500]);
  assert.equal(gate.options.timing.failAtMs, 2000);
  assert.equal(validateSettings({ timing: "windows-2008" }, "limits").timing, "windows-2008");
  assert.throws(
    () => validateSettings({ timing: "syn:0,500;giveup:100" }, "limits"),
    /limits\.timing: .*giveup must be/,
  );
});

test("property: any text parses to a timing the gate accepts, or fails with a one-line SynlimitError", () => {
  // Near-valid schedules (small numbers, sometimes in order) reach every rule.
  const nearValid = fc
    .tuple(
      fc.array(fc.integer({ min: -1, max: 50 }), { maxLength: 6 }),
      fc.boolean(),
      fc.integer({ min: -2, max: 60 }),
    )
    .map(([rest, sorted, giveUp]) => {
      const syn = [0, ...(sorted ? [...rest].sort((a, b) => a - b) : rest)];
      return `syn:${syn.join(",")};giveup:${giveUp}`;
    });
  const text = fc.oneof(fc.string(), nearValid);
  fc.assert(
    fc.property(text, (t) => {
      let option: ReturnType<typeof parseTiming>;
      try {
        option = parseTiming(t);
      } catch (error) {
        assert.ok(error instanceof SynlimitError, String(error));
        assert.ok(!error.message.includes("\n"));
        return;
      }
      const timing = resolveTiming(option);
      assert.ok(timing.synAtMs[0] === 0);
      assert.ok(timing.synAtMs.every((x, i) => i === 0 || x > (timing.synAtMs[i - 1] as number)));
      assert.ok(timing.failAtMs === null || timing.failAtMs > (timing.synAtMs.at(-1) ?? 0));
    }),
    { numRuns: 2000 },
  );
});

test("property: a valid schedule survives the syn:…;giveup:… text unchanged", () => {
  const schedule = fc
    .uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { maxLength: 10 })
    .chain((rest) =>
      fc.integer({ min: 1, max: 1_000_000 }).map((extra) => {
        const synAtMs = [0, ...rest.sort((a, b) => a - b)];
        return { synAtMs, giveUpMs: (synAtMs.at(-1) ?? 0) + extra };
      }),
    );
  fc.assert(
    fc.property(schedule, (s) => {
      const t = resolveTiming(parseTiming(`syn:${s.synAtMs.join(",")};giveup:${s.giveUpMs}`));
      assert.deepEqual(t.synAtMs, s.synAtMs);
      assert.equal(t.failAtMs, s.giveUpMs);
    }),
  );
});

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { invalidTrace } from "../../src/errors.js";
import { loadTrace, readTrace, TraceCursor } from "../../src/record/read.js";
import { RoleMap } from "../../src/record/roles.js";
import { scanLine } from "../../src/record/scan.js";
import { formatRecord, parseRecord, type TraceRecord } from "../../src/record/trace.js";
import { loadWorkload, workloadFromRecords } from "../../src/simulate/workload.js";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), "synlimit-read-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The reader as it was before the byte scanner, kept as the reference: lines
 * split as readline splits them, every line through JSON.parse and
 * `parseRecord`, then the id checks.
 */
function referenceRead(file: string): TraceRecord[] {
  const seen = new Set<number>();
  const records: TraceRecord[] = [];
  let first: { lineNo: number; hasWait: boolean } | undefined;
  readFileSync(file, "utf8")
    .split(/\r?\n|\r(?!\n)/)
    .forEach((line, i) => {
      if (line.trim() === "") return;
      const r = parseRecord(line, file, i + 1);
      if (seen.has(r.id)) throw invalidTrace(file, i + 1, `id ${r.id} appears twice`);
      const hasWait = r.waitMs !== undefined;
      first ??= { lineNo: i + 1, hasWait };
      if (hasWait !== first.hasWait) {
        const has = (yes: boolean) => (yes ? "has it" : "has none");
        throw invalidTrace(
          file,
          i + 1,
          `"waitMs" must be on every line (recorded under a limiter) or on none: line ${first.lineNo} ${has(first.hasWait)}, this line ${has(hasWait)}`,
        );
      }
      if (r.after !== undefined && !seen.has(r.after)) {
        throw invalidTrace(file, i + 1, `"after" ${r.after} is not an earlier attempt's id`);
      }
      seen.add(r.id);
      records.push(r);
    });
  return records;
}

async function outcomeOf<T>(f: () => T | Promise<T>): Promise<{ value: T } | { error: string }> {
  try {
    return { value: await f() };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

// -0 must stay -0 on both paths; key order does not matter.
const tagged = (x: unknown) =>
  JSON.parse(JSON.stringify(x, (_k, v) => (Object.is(v, -0) ? "-0" : v)) ?? "null");
const sameValue = (a: unknown, b: unknown) => assert.deepEqual(tagged(a), tagged(b));

/** A number as JSON may write it: plain, exponent, padded, many digits; rarely not JSON. */
const numberText = (v: number) =>
  fc.constantFrom(
    String(v),
    v.toExponential(),
    v.toExponential().toUpperCase().replace("+", ""),
    v.toPrecision(17),
    Number.isInteger(v) ? `${v}.000` : String(v),
    Object.is(v, 0) ? "-0" : String(v),
    Number.isInteger(v) && v < 1e15 ? `${v}e0` : String(v),
    Number.isInteger(v) && v > 0 ? `${v / 1000}e3` : String(v),
  );
const badNumberText = fc.constantFrom("01", "1.", ".5", "+1", "1e", "-", "NaN", "0x10", "1_0");

const hex4 = (code: number) => code.toString(16).padStart(4, "0");
const jsonString = (s: string) =>
  fc.oneof(
    { arbitrary: fc.constant(JSON.stringify(s)), weight: 8 },
    // Every non-ASCII character as an escape.
    fc.constant(JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${hex4(c.charCodeAt(0))}`)),
    // The first character escaped (a quote or backslash there makes it invalid JSON: also a case).
    fc.constant(s.length > 0 ? `"\\u${hex4(s.charCodeAt(0))}${JSON.stringify(s).slice(2)}` : '""'),
    // Unescaped: a raw tab, newline, quote or backslash inside is not JSON.
    fc.constant(`"${s}"`),
  );

/** Mostly valid values, now and then one the reader must refuse. */
const mostly = <T>(valid: fc.Arbitrary<T>, invalid: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 29 }, { arbitrary: invalid, weight: 1 });

const dests = mostly(
  fc.constantFrom(
    "127.0.0.1:389",
    "127.0.0.3:9",
    "[::1]:5432",
    "[fe80::1%eth0]:22",
    "hôte.local:636",
    "a:1",
  ),
  fc.constantFrom("a:0", "nohostport", "::1:5", ""),
);
const roleText = mostly(
  fc.oneof(
    fc.constantFrom(
      "login",
      "agent",
      "db",
      "ünïcode",
      "日本",
      "😀",
      'a"b',
      "back\\slash",
      "tab\tnl\n",
      "tab\there",
      "bell\u0007",
    ),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }),
  ),
  fc.constant(""),
);
const ws = fc.constantFrom("", "", "", " ", "\t", "  ");
const extraValue = fc.oneof(
  fc.double().filter(Number.isFinite).map(String),
  fc.string({ maxLength: 5 }).map((s) => JSON.stringify(s)),
  fc.constantFrom("true", "false", "null", "[1,2]", '{"a":{"b":[]}}', '"\\u0041"', "1e400"),
);
const extraKey = fc.constantFrom("x", "note", "über", "ID", "t ", "id2", "durationMS", "__proto__");
const ms = (max: number) => fc.double({ min: 0, max, noNaN: true });

/**
 * Line `index`: the recorder's fields in any order, as JSON allows writing
 * them, with extras and faults. `withWait`: whether the trace's lines carry
 * waitMs (a trace recorded under a limiter); now and then a line breaks that.
 */
const line = (index: number, withWait: boolean) =>
  fc
    .record({
      id: mostly(fc.constant(index), fc.constantFrom(-1, 1.5, 2 ** 53, 0)),
      t: mostly(fc.oneof(ms(1e7), fc.constantFrom(0, 5.116)), fc.constant(-1)),
      dest: dests,
      durationMs: mostly(fc.oneof(ms(1e5), fc.constantFrom(0.5, 100)), fc.constant(-0.5)),
      outcome: mostly(
        fc.constantFrom("connected", "refused", "timeout", "failed", "cancelled"),
        fc.constantFrom("ok", "Connected"),
      ),
      role: fc.option(roleText, { nil: undefined }),
      after: fc.option(
        mostly(fc.integer({ min: 0, max: Math.max(0, index - 1) }), fc.constant(index)),
        {
          nil: undefined,
          freq: 3,
        },
      ),
      gapMs: fc.option(ms(1000), { nil: undefined, freq: 30 }),
      // gapMs goes with after; now and then it comes alone (refused).
      gapAlone: mostly(fc.constant(false), fc.constant(true)),
      waitMs: withWait
        ? mostly(mostly(ms(1000), fc.constant(-2)), fc.constant(undefined))
        : mostly(fc.constant(undefined), ms(1000)),
      extras: fc.array(fc.tuple(extraKey, extraValue), { maxLength: 2 }),
      drop: mostly(fc.constant(null), fc.constantFrom("id", "t", "dest", "durationMs", "outcome")),
      // A field written wrongly: a bad number, a string for a number, null, or twice.
      fault: mostly(
        fc.constant(null),
        fc.tuple(
          fc.constantFrom("id", "t", "durationMs", "after", "gapMs", "role", "dest"),
          fc.constantFrom("bad", "string", "null", "repeat"),
        ),
      ),
      order: fc.array(fc.integer(), { minLength: 16, maxLength: 16 }),
      spaces: fc.array(ws, { minLength: 40, maxLength: 40 }),
      badNumber: badNumberText,
      // After the object: nothing, or something that makes the line not JSON (a lone \r splits it).
      suffix: mostly(fc.constant(""), fc.constantFrom("x", "}", ",", "{}", "\u00a0", "\r", "\r{}")),
    })
    .chain((r) => {
      const texts: Record<string, fc.Arbitrary<string>> = {};
      for (const k of ["id", "t", "durationMs", "after", "gapMs", "waitMs"] as const) {
        if (k === "gapMs" && r.after === undefined && !r.gapAlone) continue;
        const v = r[k];
        if (v !== undefined) texts[k] = numberText(v);
      }
      texts.dest = jsonString(r.dest);
      texts.outcome = jsonString(r.outcome);
      if (r.role !== undefined) texts.role = jsonString(r.role);
      return fc.record(texts).map((values) => ({ r, values }));
    })
    .map(({ r, values }) => {
      const entries: Array<[string, string]> = Object.entries(values).filter(([k]) => k !== r.drop);
      if (r.fault) {
        const [key, kind] = r.fault;
        const at = entries.findIndex(([k]) => k === key);
        if (at >= 0) {
          const bad = { bad: r.badNumber, string: '"5"', null: "null", repeat: undefined }[kind];
          if (bad === undefined) entries.push([key, entries[at]?.[1] as string]);
          else entries[at] = [key, bad];
        }
      }
      for (const [k, v] of r.extras) entries.push([k, v]);
      const keyed = entries.map((e, i) => ({ e, sortKey: r.order[i % 16] as number }));
      keyed.sort((a, b) => a.sortKey - b.sortKey);
      let s = 0;
      const sp = () => r.spaces[s++ % 40] as string;
      const body = keyed.map(
        ({ e: [k, v] }) => `${sp()}${JSON.stringify(k)}${sp()}:${sp()}${v}${sp()}`,
      );
      return `${sp()}{${body.join(",")}}${r.suffix}${sp()}`;
    });

const lineEnd = fc.constantFrom("\n", "\n", "\n", "\n", "\r\n", "\n\n", "\n \n");
const trace = fc
  .tuple(fc.integer({ min: 1, max: 12 }), fc.boolean())
  .chain(([n, withWait]) =>
    fc.tuple(...Array.from({ length: n }, (_, i) => fc.tuple(line(i, withWait), lineEnd))),
  )
  .map((lines) => lines.map(([l, end]) => l + end).join(""));

test("trace reader: the byte scanner and JSON.parse read every line alike, errors and line numbers included", async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, "p.trace");
  let fastLines = 0;
  let lines = 0;
  await fc.assert(
    fc.asyncProperty(trace, async (text) => {
      writeFileSync(file, text);
      const expected = await outcomeOf(() => referenceRead(file));
      const got = await outcomeOf(() => loadTrace(file));
      sameValue(got, expected);
      // Line by line, wherever the scanner says yes, it says what parseRecord says.
      for (const l of text.split(/\r?\n/)) {
        const bytes = Buffer.from(l);
        const cur = new TraceCursor();
        lines++;
        if (scanLine(bytes, 0, bytes.length, cur) !== 1) continue;
        fastLines++;
        sameValue(cur.toRecord(), parseRecord(l, "x", 1));
      }
      if ("value" in expected) {
        const roles = RoleMap.parse(["389=ldap", "9=discard"]);
        sameValue(await loadWorkload(file, roles), workloadFromRecords(expected.value, roles));
      }
    }),
    { numRuns: 500 },
  );
  // The property is not vacuous: a good share of lines took the fast path.
  assert.ok(fastLines > lines / 10, `${fastLines} of ${lines} lines read by the scanner`);
});

test("trace reader: the recorder's lines take the fast path; others fall back to JSON.parse", () => {
  const scan = (l: string) => {
    const bytes = Buffer.from(l);
    return scanLine(bytes, 0, bytes.length, new TraceCursor());
  };
  const r: TraceRecord = {
    id: 7,
    t: 1234.5,
    dest: "127.0.0.1:389",
    durationMs: 0.42,
    outcome: "connected",
    role: "login",
    after: 3,
    gapMs: 10,
    waitMs: 0,
  };
  assert.equal(scan(formatRecord(r).trimEnd()), 1);
  assert.equal(scan(formatRecord({ ...r, role: "日本" }).trimEnd()), 1);
  assert.equal(
    scan('{"id":1,"t":1e3,"dest":"a:1","durationMs":-0,"outcome":"timeout","x":null}'),
    1,
  );
  assert.equal(scan("   "), 0);
  for (const fallback of [
    '{"id":1,"t":1,"dest":"a:1","durationMs":0,"outcome":"connected","role":"a\\"b"}',
    '{"\\u0069d":1,"t":1,"dest":"a:1","durationMs":0,"outcome":"connected"}',
    '{"id":1,"id":2,"t":1,"dest":"a:1","durationMs":0,"outcome":"connected"}',
    '{"id":1,"t":1,"dest":"a:1","durationMs":0,"outcome":"connected","x":{"y":1}}',
    '{"id":1,"t":-1,"dest":"a:1","durationMs":0,"outcome":"connected"}',
    '{"id":01,"t":1,"dest":"a:1","durationMs":0,"outcome":"connected"}',
    "\u00a0",
  ]) {
    assert.equal(scan(fallback), -1, fallback);
  }
});

test("trace reader: a malformed line fails with its line number, wherever it falls in the stream", async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, "big.trace");
  // More than one 4 MiB read, so lines straddle chunk boundaries.
  const good = Array.from({ length: 60_000 }, (_, i) =>
    formatRecord({
      id: i,
      t: i * 1.5,
      dest: i % 7 === 0 ? "127.0.0.3:9" : "127.0.0.2:389",
      durationMs: i % 7 === 0 ? 100 : 0.5,
      outcome: i % 7 === 0 ? "timeout" : "connected",
      role: i % 7 === 0 ? "agent" : "login",
      ...(i > 0 && i % 5 === 0 && { after: i - 1, gapMs: 2 }),
    }),
  );
  writeFileSync(file, good.join(""));
  const records = await loadTrace(file);
  assert.equal(records.length, 60_000);
  sameValue(records, referenceRead(file));
  sameValue(await loadWorkload(file), workloadFromRecords(records));
  let streamed = 0;
  for await (const r of readTrace(file)) assert.equal(r.id, streamed++);
  assert.equal(streamed, 60_000);

  const cases: Array<[number, string, RegExp]> = [
    [45_001, '{"id":45000,"t":1,"dest":"a:1",', /:45001: not a JSON object$/],
    [
      59_999,
      '{"id":1e9,"t":-0.5,"dest":"a:1","durationMs":0,"outcome":"connected"}',
      /:59999: "t" must be a non-negative number of milliseconds, got -0.5$/,
    ],
    [
      3,
      '{"id":1e9,"t":1,"dest":"a:1","durationMs":0,"outcome":"connected","after":77777,"gapMs":0}',
      /:3: "after" 77777 is not an earlier attempt's id$/,
    ],
    [
      40_000,
      formatRecord({ id: 5, t: 0, dest: "a:1", durationMs: 0, outcome: "connected" }),
      /:40000: id 5 appears twice$/,
    ],
  ];
  for (const [lineNo, bad, pattern] of cases) {
    const lines = [...good];
    lines[lineNo - 1] = `${bad.trimEnd()}\n`;
    writeFileSync(file, lines.join(""));
    await assert.rejects(loadTrace(file), pattern);
    await assert.rejects(loadWorkload(file), pattern);
  }
  writeFileSync(file, `${good[0]}${"x".repeat(2 << 20)}\n`);
  await assert.rejects(loadTrace(file), /:2: line longer than 1048576 bytes$/);
});

test("trace reader: sparse and huge ids are found again for after and duplicates", async (t) => {
  const file = path.join(tempDir(t), "ids.trace");
  const ids = [1e12, 5, 2 ** 53 - 1, 70_000, 0];
  const line = (id: number, after?: number) =>
    formatRecord({
      id,
      t: 1,
      dest: "127.0.0.1:389",
      durationMs: 1,
      outcome: "connected",
      ...(after !== undefined && { after, gapMs: 1 }),
    });
  writeFileSync(file, ids.map((id, i) => line(id, i > 0 ? ids[i - 1] : undefined)).join(""));
  const records = await loadTrace(file);
  sameValue(records, referenceRead(file));
  assert.deepEqual(Array.from((await loadWorkload(file)).parent), [-1, 0, 1, 2, 3]);
  for (const dup of ids) {
    writeFileSync(file, ids.map((id) => line(id)).join("") + line(dup));
    await assert.rejects(loadTrace(file), new RegExp(`:6: id ${dup} appears twice$`));
  }
  writeFileSync(file, line(1e12) + line(7, 1e12 + 1));
  await assert.rejects(
    loadTrace(file),
    /:2: "after" 1000000000001 is not an earlier attempt's id$/,
  );
});

test("trace reader: gapMs without after, waitMs on some lines only, and overflowing numbers are refused at their line", async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, "v.trace");
  const ok = '{"id":1,"t":0,"dest":"127.0.0.1:1","durationMs":1,"outcome":"connected"}';
  const cases: Array<[string, RegExp]> = [
    // A gap from nothing: the cause was lost, the line must not replay as a root silently.
    [
      `${ok}\n{"id":2,"t":5,"dest":"127.0.0.1:1","durationMs":1,"outcome":"connected","gapMs":10}\n`,
      /v\.trace:2: "gapMs" needs "after"/,
    ],
    [
      `${ok}\n{"id":2,"t":5,"dest":"127.0.0.1:1","durationMs":1,"outcome":"connected","waitMs":0}\n`,
      /v\.trace:2: "waitMs" must be on every line .* or on none: line 1 has none, this line has it/,
    ],
    [
      `{"id":0,"t":0,"dest":"127.0.0.1:1","durationMs":1,"outcome":"connected","waitMs":3}\n\n${ok}\n`,
      /v\.trace:3: "waitMs" must be on every line .* line 1 has it, this line has none/,
    ],
    [
      '{"id":1,"t":0,"dest":"127.0.0.1:1","durationMs":1e400,"outcome":"connected"}\n',
      /v\.trace:1: "durationMs" must be a non-negative number, got Infinity \(a number too large to be finite\)/,
    ],
  ];
  for (const [text, pattern] of cases) {
    writeFileSync(file, text);
    // Both paths: the scanner and JSON.parse (an escaped key forces the latter).
    await assert.rejects(loadTrace(file), pattern);
    writeFileSync(file, text.replaceAll('"outcome"', '"\\u006futcome"'));
    await assert.rejects(loadTrace(file), pattern);
  }
  // The same lines, consistent, are fine.
  writeFileSync(
    file,
    `{"id":1,"t":0,"dest":"127.0.0.1:1","durationMs":1,"outcome":"connected","waitMs":0}\n{"id":2,"t":5,"dest":"127.0.0.1:1","durationMs":1,"outcome":"connected","after":1,"gapMs":4,"waitMs":2}\n`,
  );
  assert.equal((await loadTrace(file)).length, 2);
});

import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import fc from "fast-check";
import { defaultMaxHeaderBytes, parseHttpHead } from "../../src/proxy/http-parser.js";
import type { ParseResult } from "../../src/proxy/parse-result.js";
import {
  maxGreetingBytes,
  maxRequestBytes,
  maxUserPassBytes,
  parseGreeting,
  parseRequest,
  parseUserPass,
} from "../../src/proxy/socks5-parser.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { recordProxyEvents, startProxy, until, untilIdle } from "../helpers/proxy-fixtures.js";

type Parser = (buf: Uint8Array) => ParseResult<unknown, { reason: string }>;

const u8 = (n: number) => fc.integer({ min: 0, max: n });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });

const greeting = fc
  .uint8Array({ minLength: 1, maxLength: 255 })
  .map((m) => Buffer.from([5, m.length, ...m]));
const userPass = fc
  .tuple(bytes(1, 255), bytes(0, 255))
  .map(([u, p]) => Buffer.from([1, u.length, ...u, p.length, ...p]));
const hostname = fc.integer({ min: 1, max: 255 }).chain((n) =>
  fc.string({
    unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-."),
    minLength: n,
    maxLength: n,
  }),
);
const request = fc.oneof(
  fc
    .tuple(bytes(4, 4), u8(65535))
    .map(([a, p]) => Buffer.from([5, 1, 0, 1, ...a, p >> 8, p & 255])),
  fc
    .tuple(bytes(16, 16), u8(65535))
    .map(([a, p]) => Buffer.from([5, 1, 0, 4, ...a, p >> 8, p & 255])),
  fc
    .tuple(hostname, u8(65535))
    .map(([h, p]) => Buffer.from([5, 1, 0, 3, h.length, ...Buffer.from(h), p >> 8, p & 255])),
);
const token = fc.string({
  unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
  minLength: 1,
  maxLength: 20,
});
const authority = fc.oneof(
  fc.tuple(hostname, fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`),
  fc
    .tuple(bytes(4, 4), fc.integer({ min: 1, max: 65535 }))
    .map(([a, p]) => `${[...a].join(".")}:${p}`),
  fc.integer({ min: 1, max: 65535 }).map((p) => `[::1]:${p}`),
);
const httpHead = fc
  .tuple(
    authority,
    fc.array(
      fc.tuple(token, fc.string({ unit: fc.constantFrom(..."abc xyz=;/,0123"), maxLength: 40 })),
      { maxLength: 10 },
    ),
  )
  .map(([a, hs]) =>
    Buffer.from(
      `CONNECT ${a} HTTP/1.1\r\n${hs.map(([n, v]) => `${n}: ${v}`.trimEnd()).join("\r\n")}${hs.length ? "\r\n" : ""}\r\n`,
      "latin1",
    ),
  );

/** Every strict prefix asks for more, the whole parses to exactly its length, trailing bytes are left. */
function splitEverywhere(parse: Parser, msg: Buffer): void {
  for (let k = 0; k < msg.length; k++) {
    const r = parse(msg.subarray(0, k));
    assert.equal(r.kind, "need-more", `prefix ${k} of ${msg.length}`);
  }
  const whole = parse(Buffer.concat([msg, Buffer.from([0xde, 0xad])]));
  if (whole.kind === "ok") assert.equal(whole.consumed, msg.length);
  else assert.equal(whole.kind, "error"); // e.g. port 0 or a host of 256+ bytes: refused whole, never waited on
}

test("fuzz: valid SOCKS5 messages split at every byte boundary parse the same as whole", () => {
  fc.assert(
    fc.property(greeting, (m) => splitEverywhere(parseGreeting, m)),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(userPass, (m) => splitEverywhere(parseUserPass, m)),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(request, (m) => splitEverywhere(parseRequest, m)),
    { numRuns: 500 },
  );
});

test("fuzz: HTTP CONNECT heads split at every byte boundary; hosts up to 255 bytes accepted, longer refused", () => {
  fc.assert(
    fc.property(httpHead, (m) => {
      splitEverywhere((b) => parseHttpHead(b), m);
      const r = parseHttpHead(m);
      const host = m.toString("latin1").split(" ")[1] ?? "";
      const hostLength = host.startsWith("[") ? 3 : host.lastIndexOf(":");
      if (hostLength <= 255) assert.equal(r.kind, "ok");
    }),
    { numRuns: 300 },
  );
  const long = Buffer.from(`CONNECT ${"a".repeat(300)}:80 HTTP/1.1\r\n\r\n`);
  const r = parseHttpHead(long);
  assert.equal(r.kind === "error" && r.error.status, 400);
});

test("fuzz: arbitrary bytes never throw, and no parser waits past its largest message", () => {
  const bounded: Array<[Parser, number]> = [
    [parseGreeting, maxGreetingBytes],
    [parseUserPass, maxUserPassBytes],
    [parseRequest, maxRequestBytes],
    [(b) => parseHttpHead(b, 2048), 2048],
  ];
  fc.assert(
    fc.property(bytes(0, 3000), (input) => {
      for (const [parse, max] of bounded) {
        const r = parse(input);
        assert.ok(["ok", "need-more", "error"].includes(r.kind));
        if (input.length >= max)
          assert.notEqual(r.kind, "need-more", "an oversized input is decided");
        if (r.kind === "ok") assert.ok(r.consumed > 0 && r.consumed <= input.length);
      }
    }),
    { numRuns: 2000 },
  );
  // Wrong versions and address types, mutated from valid messages.
  fc.assert(
    fc.property(
      request,
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 255 }),
      (m, at, value) => {
        const mutated = Buffer.from(m);
        mutated[at] = value;
        const r = parseRequest(mutated);
        if (at === 0 && value !== 5) assert.equal(r.kind, "error");
        if (at === 3 && ![1, 3, 4].includes(value)) {
          assert.equal(r.kind === "error" && (r.error as { reply?: number }).reply, 8);
        }
      },
    ),
    { numRuns: 1000 },
  );
  assert.equal(parseHttpHead(Buffer.alloc(defaultMaxHeaderBytes + 1, 0x41)).kind, "error");
});

test("socket fuzz: bad, truncated and oversized clients are all closed by their deadline; nothing leaks", async (t) => {
  const clock = new FakeClock();
  const handshakeTimeoutMs = 1_000;
  const proxy = await startProxy(t, {
    clock,
    handshakeTimeoutMs,
    maxHeaderBytes: 2048,
    // Every destination refused before any lookup: fuzzed requests reach nothing.
    deny: ["*"],
    lookup: async () => {
      throw new Error("no lookups in the fuzz test");
    },
  });
  const events = recordProxyEvents(t);
  const tcpHandles = () =>
    process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;
  const before = tcpHandles();
  const input = fc.oneof(
    bytes(0, 600),
    greeting.map((g) => g.subarray(0, Math.max(1, g.length - 1))),
    fc.tuple(greeting, request).map(([g, r]) => Buffer.concat([g, r])),
    fc
      .tuple(greeting, request, fc.nat())
      .map(([g, r, n]) => Buffer.concat([g, r]).subarray(0, 1 + (n % (g.length + r.length)))),
    httpHead,
    httpHead.map((h) => h.subarray(0, h.length - 2)),
    fc.constant(Buffer.alloc(4096, 0x47)),
  );
  const cases = fc.sample(fc.tuple(input, fc.array(fc.nat(), { maxLength: 8 })), {
    numRuns: 120,
    seed: 4226,
  });
  const clients = await Promise.all(
    cases.map(async ([data, cuts]) => {
      const s = net.connect(proxy.port, "127.0.0.1");
      s.on("error", () => {});
      s.on("data", () => {});
      t.after(() => s.destroy());
      const closed = new Promise((r) => s.once("close", r));
      await new Promise((r) => s.once("connect", r));
      // Split at arbitrary boundaries, one write per piece.
      const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      for (const p of [...points, data.length]) {
        if (p > from) s.write(data.subarray(from, p));
        from = p;
        await new Promise((r) => setImmediate(r));
      }
      return { s, closed };
    }),
  );
  // Every client accepted (its deadline armed) before time moves; then a
  // few turns so the proxy reads what was sent.
  await until(
    () => events.of("client").filter((e) => e.event === "open").length === clients.length,
    "every client accepted",
  );
  await new Promise((r) => setTimeout(r, 50));
  clock.advance(handshakeTimeoutMs);
  await until(
    () => clients.every((c) => c.s.destroyed || c.s.readableEnded),
    "every client closed at the deadline",
  );
  clock.advance(5_000); // lingering closes
  await Promise.all(clients.map((c) => c.closed));
  await untilIdle(proxy);
  assert.equal(proxy.stats().clients, 0);
  await until(() => tcpHandles() <= before, "no TCP handle left behind");
});

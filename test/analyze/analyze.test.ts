import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { analyzeStream, defaultAnalyzeOptions } from "../../src/analyze/analyze.js";
import { ACK, RST, SYN } from "../../src/analyze/decode.js";
import { loadTrace } from "../../src/record/read.js";
import { netnsCommand, netnsSupported } from "../helpers/netns.js";
import { frame, ipPacket, type Packet, pcap, pcapng } from "../helpers/pcap-builder.js";
import { runCli } from "../helpers/run-cli.js";

const dir = mkdtempSync(path.join(tmpdir(), "synlimit-analyze-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const scenario = fileURLToPath(new URL("../helpers/capture-scenario.js", import.meta.url));

function capture(name: string, k: string, dead: number, live: number): Promise<string> {
  const file = path.join(dir, `${name}.pcap`);
  const [cmd, ...args] = netnsCommand([
    process.execPath,
    scenario,
    file,
    k,
    String(dead),
    String(live),
  ]);
  const child = spawn(cmd as string, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  return new Promise((resolve, reject) =>
    child.once("close", (code) =>
      code === 0
        ? resolve(file)
        : reject(new Error(`scenario ${name} exited ${code}: ${err}${out}`)),
    ),
  );
}

const real = netnsSupported();
const captures: Record<string, string> = {};
before(async () => {
  if (!real) return;
  // Three namespaces side by side: the same ports, no interference.
  const [k1, k4, unlimited] = await Promise.all([
    capture("k1", "1", 5, 10),
    // 12 dead attempts: three turns of 4, so a loaded machine still leaves
    // enough hand-offs for a verdict (8 gave p = 2.9e-3 once at load 10).
    capture("k4", "4", 12, 20),
    capture("unlimited", "unlimited", 8, 20),
  ]);
  Object.assign(captures, { k1, k4, unlimited });
});

const skip = !real && "needs root for network namespaces and tcpdump";

test("tcpdump capture through synlimit gate with k = 1: limit 1, with the field report's evidence", {
  skip,
}, async () => {
  const r = await runCli([
    "analyze",
    captures.k1 as string,
    "--trace",
    path.join(dir, "k1.trace"),
    "--report",
    path.join(dir, "k1r"),
    "--role",
    "389=login",
    "--role",
    "9=agent",
  ]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /^verdict: limit 1 /);
  assert.match(
    r.stdout,
    /the SYN to 127\.0\.0\.\d:\d+ at \d+\.\d{3} s left \d+ ms after the pending attempt to 127\.0\.0\.3:9 gave up/,
  );
  assert.match(r.stdout, /never more than one pending/);
  assert.match(
    r.stdout,
    /SYN schedule of unanswered attempts: 0\/1\.\d+\/2\.\d+ s, give up 3\.\d+ s/,
  );
  const trace = await loadTrace(path.join(dir, "k1.trace"));
  assert.equal(trace.length, 15);
  assert.equal(trace.filter((x) => x.role === "agent" && x.outcome === "timeout").length, 5);
  assert.equal(trace.filter((x) => x.role === "login" && x.outcome === "connected").length, 10);
  assert.match(
    readFileSync(path.join(dir, "k1r", "index.html"), "utf8"),
    /<svg[^>]*aria-label="outbound handshake attempts over time/,
  );
});

test("tcpdump capture through synlimit gate with k = 4: limit 4 exactly", { skip }, async () => {
  const r = await runCli(["analyze", captures.k4 as string, "--json"]);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  const json = JSON.parse(r.stdout);
  assert.equal(json.verdict, "limit");
  assert.equal(json.k, 4);
  assert.equal(json.attempts, 32);
});

test("the same workload through the gate without a limit: no-limit", { skip }, async () => {
  const r = await runCli(["analyze", captures.unlimited as string, "--json"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const json = JSON.parse(r.stdout);
  assert.equal(json.verdict, "no-limit");
  assert.equal(json.k, null);
  assert.ok(
    json.sources[0].maxPending >= 8,
    `all 8 dead attempts pending at once: ${json.sources[0].maxPending}`,
  );
});

// --- hand-built captures -------------------------------------------------------------

/**
 * The field case on the wire: one attempt at a time from 127.0.0.1, a dead
 * collector (127.0.0.3:9) retransmitting at 0/3/9 s and giving up at 21 s,
 * each time a login (127.0.0.2:389) leaving 3 ms later.
 */
function incidentPackets(v6 = false, cycles = 4): Packet[] {
  const me = v6 ? "::1" : "127.0.0.1";
  const dead = v6 ? "::3" : "127.0.0.3";
  const login = v6 ? "::2" : "127.0.0.2";
  const packets: Packet[] = [];
  let t = 1_700_000_000_000;
  let port = 50_000;
  let id = 1;
  for (let cycle = 0; cycle < cycles; cycle++) {
    const isn = 1000 * cycle + 7;
    const sp = port++;
    for (const at of [0, 3000, 9000])
      packets.push({
        timeMs: t + at,
        src: me,
        dst: dead,
        srcPort: sp,
        dstPort: 9,
        flags: SYN,
        seq: isn,
        ipId: id++,
      });
    t += 21_000 + 3;
    const lp = port++;
    packets.push({
      timeMs: t,
      src: me,
      dst: login,
      srcPort: lp,
      dstPort: 389,
      flags: SYN,
      seq: 5,
      ipId: id++,
    });
    packets.push({
      timeMs: t + 0.4,
      src: login,
      dst: me,
      srcPort: 389,
      dstPort: lp,
      flags: SYN | ACK,
      seq: 9,
      ack: 6,
      ipId: id++,
    });
    // Data on the connection: ignored by the analysis, but read.
    packets.push({
      timeMs: t + 0.5,
      src: me,
      dst: login,
      srcPort: lp,
      dstPort: 389,
      flags: ACK,
      seq: 6,
      ack: 10,
      ipId: id++,
      payload: 100,
    });
    t += 2;
  }
  // A refused attempt at the end.
  packets.push({
    timeMs: t + 1000,
    src: me,
    dst: login,
    srcPort: port,
    dstPort: 7,
    flags: SYN,
    seq: 1,
    ipId: id++,
  });
  packets.push({
    timeMs: t + 1000.2,
    src: login,
    dst: me,
    srcPort: 7,
    dstPort: port,
    flags: RST | ACK,
    seq: 0,
    ack: 2,
    ipId: id++,
  });
  return packets;
}

async function analyzeBuffer(buf: Buffer) {
  async function* chunks() {
    // Odd chunk sizes: records straddle chunk boundaries.
    for (let o = 0; o < buf.length; o += 777) yield buf.subarray(o, o + 777);
  }
  return analyzeStream(chunks(), "mem.pcap", defaultAnalyzeOptions);
}

function assertIncident(r: Awaited<ReturnType<typeof analyzeBuffer>>, label: string) {
  assert.equal(r.verdict, "limit", `${label}: ${r.evidence.join("; ")}`);
  assert.equal(r.k, 1, label);
  assert.equal(r.attempts.length, 9, label);
  assert.deepEqual(r.schedule.synAtMs, [0, 3000, 9000], label);
  assert.equal(r.schedule.giveUpMs, 21_000, label);
  assert.match(
    r.evidence[0] ?? "",
    /the SYN to (127\.0\.0\.2|\[::2\]):389 at 21\.003 s left 3 ms after the pending attempt to (127\.0\.0\.3|\[::3\]):9 gave up/,
    label,
  );
  assert.deepEqual(
    r.attempts.map((a) => a.end),
    [
      "gave-up",
      "connected",
      "gave-up",
      "connected",
      "gave-up",
      "connected",
      "gave-up",
      "connected",
      "refused",
    ],
    label,
  );
}

test("every link type and file format gives the same incident verdict (IPv4 and IPv6)", async () => {
  for (const v6 of [false, true]) {
    const packets = incidentPackets(v6);
    for (const [lt, opts] of [
      [1, {}],
      [1, { vlan: true }],
      [113, {}],
      [276, {}],
      [101, {}],
      [0, {}],
      [0, { nullBigEndian: true }],
      [108, {}],
      [v6 ? 229 : 228, {}],
    ] as const) {
      const frames = packets.map((p) => ({ timeMs: p.timeMs, data: frame(lt, ipPacket(p), opts) }));
      const label = `linktype ${lt} ${JSON.stringify(opts)} ${v6 ? "IPv6" : "IPv4"}`;
      assertIncident(await analyzeBuffer(pcap(lt, frames)), `pcap ${label}`);
      assertIncident(
        await analyzeBuffer(pcap(lt, frames, { bigEndian: true, nanos: true })),
        `pcap BE ns ${label}`,
      );
      assertIncident(await analyzeBuffer(pcapng([lt], frames)), `pcapng ${label}`);
      assertIncident(
        await analyzeBuffer(pcapng([lt], frames, { bigEndian: true, tsresol: 9 })),
        `pcapng BE ns ${label}`,
      );
    }
  }
});

test("pktmon duplicates: every packet once per component is counted once", async () => {
  const packets = incidentPackets();
  // pktmon etl2pcap: Ethernet, each packet seen by three components microseconds apart, on two interfaces.
  const frames = packets.flatMap((p) =>
    [0, 0.004, 0.011].map((d, i) => ({
      timeMs: p.timeMs + d,
      data: frame(1, ipPacket(p)),
      iface: i % 2,
    })),
  );
  const r = await analyzeBuffer(pcapng([1, 1], frames));
  assertIncident(r, "pktmon");
  assert.equal(
    r.duplicatesRemoved,
    2 * packets.filter((p) => (p.flags & (SYN | RST)) !== 0).length,
  );
  // A real retransmission (3 s later, new IP id) is not a duplicate.
  assert.equal(r.attempts[0]?.h.synAtMs.length, 3);
});

test("truncated capture: a verdict on what was read, flagged; corrupt and empty files: one-line errors", async () => {
  const frames = incidentPackets().map((p) => ({ timeMs: p.timeMs, data: frame(1, ipPacket(p)) }));
  const whole = pcap(1, frames);
  const cut = path.join(dir, "cut.pcap");
  writeFileSync(cut, whole.subarray(0, whole.length - 30));
  const r = await runCli(["analyze", cut]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout, /the capture ends mid-record at byte \d+: analysed what came before/);
  assert.match(r.stdout, /pcap, truncated/);

  const ng = pcapng([1], frames);
  const cases: Array<[string, Buffer, RegExp]> = [
    ["empty.pcap", Buffer.alloc(0), /empty file, not a capture/],
    [
      "text.pcap",
      Buffer.from("hello, this is not a capture\n"),
      /not a pcap or pcapng file \(magic 0x68656c6c\) \(at byte 0\)/,
    ],
    ["short.pcap", whole.subarray(0, 10), /pcap file header cut short/],
    [
      "huge-record.pcap",
      Buffer.concat([
        whole.subarray(0, 24),
        Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]),
      ]),
      /packet record of 2147483647 bytes: the file is corrupt \(at byte 24\)/,
    ],
    [
      "bad-block.pcapng",
      Buffer.concat([ng.subarray(0, 28), Buffer.from([6, 0, 0, 0, 13, 0, 0, 0])]),
      /pcapng block of 13 bytes/,
    ],
    [
      "bad-trailer.pcapng",
      (() => {
        const b = Buffer.from(ng);
        b.writeUInt32LE(999, 24);
        return b;
      })(),
      /does not match its trailer/,
    ],
  ];
  for (const [name, buf, pattern] of cases) {
    const file = path.join(dir, name);
    writeFileSync(file, buf);
    const e = await runCli(["analyze", file]);
    assert.equal(e.code, 2, `${name}: ${e.stdout}${e.stderr}`);
    assert.match(e.stderr, pattern, name);
    assert.equal(e.stderr.trim().split("\n").length, 1, e.stderr);
  }
  for (const [args, pattern] of [
    [[dir], /cannot read .*: EISDIR \(a directory\)/],
    [[cut, "--report", cut], /--report .* is a file, not a directory/],
  ] as Array<[string[], RegExp]>) {
    const e = await runCli(["analyze", ...args]);
    assert.equal(e.code, 2, e.stderr);
    assert.match(e.stderr, pattern);
    assert.equal(e.stderr.trim().split("\n").length, 1, e.stderr);
  }
  const missing = await runCli(["analyze", path.join(dir, "nope.pcap")]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read .*nope\.pcap: ENOENT/);
  for (const [args, pattern] of [
    [["--window-ms", "0"], /--window-ms must be a positive number/],
    [["--hold-ms", "x"], /--hold-ms must be a positive number/],
    [["--give-up-ms", "-5"], /--give-up-ms must be a positive number/],
    [["--role", "nope"], /--role must be PORT=ROLE/],
  ] as Array<[string[], RegExp]>) {
    const e = await runCli(["analyze", cut, ...args]);
    assert.equal(e.code, 2);
    assert.match(e.stderr, pattern);
  }
});

test("--give-up-ms is reported as given, in text, JSON and evidence", async () => {
  const frames = incidentPackets().map((p) => ({ timeMs: p.timeMs, data: frame(1, ipPacket(p)) }));
  const file = path.join(dir, "given.pcap");
  writeFileSync(file, pcap(1, frames));
  const text = await runCli(["analyze", file, "--give-up-ms", "21002"]);
  assert.equal(text.code, 3, text.stdout + text.stderr);
  assert.match(text.stdout, /give up 21\.002 s \(given with --give-up-ms\)/);
  assert.doesNotMatch(text.stdout, /inferred from its SYN schedule|give up [\d.]+ s \(inferred/);
  assert.match(text.stdout, /gave up \(--give-up-ms 21002 after its first SYN\)/);
  const json = JSON.parse(
    (await runCli(["analyze", file, "--give-up-ms", "21002", "--json"])).stdout,
  );
  assert.equal(json.schedule.giveUpMs, 21_002);
  assert.equal(json.schedule.giveUpGiven, true);
  const inferred = JSON.parse((await runCli(["analyze", file, "--json"])).stdout);
  assert.equal(inferred.schedule.giveUpMs, 21_000);
  assert.equal(inferred.schedule.giveUpGiven, false);
});

test("a real k = 1 limit with one dead attempt: inconclusive, and the text does not contradict itself", async () => {
  const frames = incidentPackets(false, 1).map((p) => ({
    timeMs: p.timeMs,
    data: frame(1, ipPacket(p)),
  }));
  const file = path.join(dir, "few.pcap");
  writeFileSync(file, pcap(1, frames));
  const r = await runCli(["analyze", file]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /1 of 1 attempts that held the last slot .* followed within 10 ms by a new SYN/,
  );
  assert.match(
    r.stdout,
    /^verdict: inconclusive — too few attempts to tell a limit from chance \(p = /,
  );
  assert.match(r.stdout, /too few attempts to tell: 1 of 1 followed by a new SYN \(p = /);
  assert.doesNotMatch(r.stdout, /no contention|none waited/);
});

/**
 * k = 1 through an emulated limiter whose 2.1 s deadline ends each dead
 * attempt before the kernel's next SYN (0/1 s, next due at 3 s): no packet
 * marks the end, the next login SYN leaves 3 ms after the deadline.
 */
function deadlinePackets(): Packet[] {
  const packets: Packet[] = [];
  let t = 1_700_000_000_000;
  let port = 40_000;
  let id = 1;
  for (let cycle = 0; cycle < 6; cycle++) {
    const sp = port++;
    for (const at of [0, 1000])
      packets.push({
        timeMs: t + at,
        src: "127.0.0.1",
        dst: "127.0.0.3",
        srcPort: sp,
        dstPort: 9,
        flags: SYN,
        seq: 7,
        ipId: id++,
      });
    t += 2100 + 3;
    const lp = port++;
    packets.push({
      timeMs: t,
      src: "127.0.0.1",
      dst: "127.0.0.2",
      srcPort: lp,
      dstPort: 389,
      flags: SYN,
      seq: 5,
      ipId: id++,
    });
    packets.push({
      timeMs: t + 0.4,
      src: "127.0.0.2",
      dst: "127.0.0.1",
      srcPort: 389,
      dstPort: lp,
      flags: SYN | ACK,
      seq: 9,
      ack: 6,
      ipId: id++,
    });
    t += 2;
  }
  return packets;
}

test("an emulated deadline before the kernel's give-up: not a confident no-limit; --give-up-ms finds the limit", async () => {
  const frames = deadlinePackets().map((p) => ({ timeMs: p.timeMs, data: frame(1, ipPacket(p)) }));
  const file = path.join(dir, "deadline.pcap");
  writeFileSync(file, pcap(1, frames));
  const r = await runCli(["analyze", file]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /^verdict: inconclusive — the give-up time is only inferred/);
  assert.match(r.stdout, /constant 2\.10\d s after their first SYN.*pass --give-up-ms 210\d/);
  const given = await runCli(["analyze", file, "--give-up-ms", "2100"]);
  assert.equal(given.code, 3, given.stdout + given.stderr);
  assert.match(given.stdout, /^verdict: limit 1 /);
});

test("no handshakes at all: inconclusive, exit 2", async () => {
  const file = path.join(dir, "quiet.pcap");
  writeFileSync(file, pcap(1, []));
  const r = await runCli(["analyze", file, "--json"]);
  assert.equal(r.code, 2);
  assert.equal(JSON.parse(r.stdout).verdict, "inconclusive");
});

test("a huge capture is read as a stream: memory stays flat over 512 MB of packets", async () => {
  const data = frame(
    1,
    ipPacket({
      timeMs: 0,
      src: "127.0.0.1",
      dst: "127.0.0.2",
      srcPort: 1,
      dstPort: 2,
      flags: ACK,
      seq: 1,
      payload: 1400,
    }),
  );
  const header = pcap(1, []);
  const record = pcap(1, [{ timeMs: 1_000, data }]).subarray(24);
  const perChunk = 700;
  const chunk = Buffer.concat(new Array(perChunk).fill(record));
  const chunks = Math.ceil((512 * 1024 * 1024) / chunk.length);
  async function* stream() {
    yield header;
    for (let i = 0; i < chunks; i++) yield chunk;
  }
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const r = await analyzeStream(stream(), "huge", defaultAnalyzeOptions);
    assert.equal(r.packets, chunks * perChunk);
    assert.equal(r.verdict, "inconclusive");
  } finally {
    clearInterval(timer);
  }
  const grownMb = (Math.max(peak, process.memoryUsage().rss) - before) / 1024 / 1024;
  assert.ok(grownMb < 128, `RSS grew ${grownMb.toFixed(0)} MB while reading 512 MB`);
});

test("--help for analyze and record", async () => {
  const a = await runCli(["analyze", "--help"]);
  assert.equal(a.code, 0);
  assert.match(a.stdout, /Exit codes: 0 no-limit, 3 limit, 2 inconclusive or unreadable/);
  assert.match(a.stdout, /pktmon etl2pcap/);
  const r = await runCli(["record", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /-o, --output <file>/);
});

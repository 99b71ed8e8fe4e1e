import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import net from "node:net";
import { test } from "node:test";
import { linuxSynSchedule } from "../../src/os/linux-syn-schedule.js";
import { cleanEnv, cliPath, finished, firstLine, runCli, startCli } from "../helpers/run-cli.js";
import { tcpdumpsOn } from "./tcpdump-processes.js";

// `synlimit tarpit --show-syns` through the CLI, with real clients on
// loopback: the SYNs the kernel drops at the full accept queue still show,
// at the offsets of this kernel's own retransmission schedule.

const notRoot = process.getuid?.() !== 0 && "capturing with tcpdump needs root (CI runs as root)";

/** This host's SYN resend offsets (ms after the first SYN), from its sysctls. */
function hostResendsMs(): number[] {
  const read = (name: string) => {
    try {
      return Number(readFileSync(`/proc/sys/net/ipv4/${name}`, "utf8").trim());
    } catch {
      return 0; // tcp_syn_linear_timeouts exists from Linux 6.5
    }
  };
  return linuxSynSchedule(read("tcp_syn_retries"), read("tcp_syn_linear_timeouts")).retransmitAtMs;
}

/** Generous: timers drift and the CI machine is busy; the order and rough spacing are the point. */
function assertNear(actualMs: number, expectedMs: number, what: string): void {
  const slackMs = 400 + 0.1 * expectedMs;
  assert.ok(
    Math.abs(actualMs - expectedMs) <= slackMs,
    `${what}: ${Math.round(actualMs)} ms, expected about ${expectedMs} ms`,
  );
}

/** Lines as the CLI prints them, each handed to `on` once complete. */
function onLines(child: ReturnType<typeof startCli>, on: (line: string) => void): void {
  let seen = 0;
  child.stdout?.on("data", () => {
    const lines = child.stdoutText().split("\n");
    for (; seen < lines.length - 1; seen++) on(lines[seen] as string);
  });
}

/** `synlimit tarpit --show-syns`, killed after the test; its first line and port. */
async function startShowSyns(t: { after: (fn: () => void) => void }) {
  const child = startCli(["tarpit", "--show-syns"]);
  t.after(() => child.kill("SIGKILL"));
  const first = await firstLine(child);
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(first)?.[1]);
  assert.ok(port > 0, first);
  return { child, first, port };
}

test("--show-syns prints curl's SYNs, dropped by the full queue, at the kernel's retransmission offsets", {
  skip: notRoot,
}, async (t) => {
  const { child, first, port } = await startShowSyns(t);
  assert.match(first, /showing the SYNs that reach it \(tcpdump on lo\)/);

  const summary = new Promise<string>((resolve) =>
    onLines(child, (line) => {
      if (/ stopped after /.test(line)) resolve(line);
    }),
  );
  const curl = spawn("curl", ["-s", "--connect-timeout", "5", `http://127.0.0.1:${port}/`], {
    stdio: "ignore",
  });
  const [curlCode] = await once(curl, "close");
  assert.equal(curlCode, 28, "curl timed out connecting: the tarpit held it in SYN_SENT");
  const stopped = await summary;

  const synLines = child
    .stdoutText()
    .split("\n")
    .filter((l) => / SYN #\d+ /.test(l));
  const from = /^(\S+) → /.exec(synLines[0] ?? "")?.[1];
  assert.ok(from?.startsWith("127.0.0.1:"), synLines.join("\n"));
  const mine = synLines.filter((l) => l.startsWith(`${from} → 127.0.0.1:${port}  SYN #`));
  assert.equal(mine.length, synLines.length, "one sender: curl");
  const offsetsMs = mine.map((l) => {
    const m = / SYN #(\d+) \+(\d+\.\d+) s$/.exec(l);
    assert.ok(m, l);
    return { n: Number(m[1]), ms: Number(m[2]) * 1000 };
  });
  assert.deepEqual(
    offsetsMs.map((o) => o.n),
    offsetsMs.map((_, i) => i + 1),
    "numbered in arrival order",
  );
  assert.equal(offsetsMs[0]?.ms, 0);
  // curl gives up after 5 s: every resend the kernel schedules well before that shows.
  const expected = [0, ...hostResendsMs().filter((ms) => ms < 4_500)];
  assert.ok(offsetsMs.length >= expected.length, `${offsetsMs.length} SYNs: ${mine.join("\n")}`);
  for (const [i, ms] of expected.entries())
    assertNear(offsetsMs[i]?.ms ?? Number.NaN, ms, `SYN #${i + 1}`);

  assert.ok(
    stopped.startsWith(
      `${from} → 127.0.0.1:${port}  stopped after ${offsetsMs.length} SYNs: schedule 0/1/`,
    ),
    stopped,
  );
  // An estimate from the SYN gaps, not a bound: a stack's last timer can fire later.
  assert.match(stopped, /, gave up at about \+\d+(\.\d)? s \(estimated from the SYN gaps\) \(#1 /);

  const done = finished(child);
  child.kill("SIGTERM");
  const r = await done;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(tcpdumpsOn(port), [], "tcpdump stopped with the tarpit");
});

test("--show-syns --json: one object a line; a Node client's SYNs, then its sender's summary", {
  skip: notRoot,
}, async (t) => {
  const child = startCli(["tarpit", "--show-syns", "--json"]);
  t.after(() => child.kill("SIGKILL"));
  const info = JSON.parse(await firstLine(child)) as {
    event: string;
    port: number;
    verified: boolean;
    showSyns: { interface: string };
  };
  assert.equal(info.event, "listening");
  assert.equal(info.verified, true);
  assert.equal(info.showSyns.interface, "lo");

  const socket = net.connect(info.port, "127.0.0.1");
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  type Event = {
    event: string;
    from: string;
    to: string;
    n?: number;
    offsetMs?: number;
    reason?: string;
    offsetsMs?: number[];
    schedule?: string;
    gaveUpByMs?: number | null;
    nextSynDueMs?: number | null;
  };
  const events: Event[] = [];
  const stopped = new Promise<Event>((resolve) =>
    onLines(child, (line) => {
      const e = JSON.parse(line) as Event; // every line parses
      events.push(e);
      // Waiting on the events, not the clock: the client gives up after its third SYN.
      if (e.event === "syn" && e.n === 3) socket.destroy();
      if (e.event === "stopped") resolve(e);
    }),
  );
  const summary = await stopped;
  const syns = events.filter((e) => e.event === "syn");
  assert.deepEqual(
    syns.map((e) => e.n),
    [1, 2, 3],
  );
  assert.ok(syns.every((e) => e.from === summary.from && e.to === `127.0.0.1:${info.port}`));
  const expected = [0, ...hostResendsMs().slice(0, 2)];
  for (const [i, e] of syns.entries())
    assertNear(e.offsetMs ?? Number.NaN, expected[i] as number, `SYN #${i + 1}`);
  assert.equal(summary.reason, "silent");
  assert.deepEqual(
    summary.offsetsMs,
    syns.map((e) => e.offsetMs),
  );
  assert.match(summary.schedule ?? "", /^0\/1(\.\d)?\/\d+(\.\d)?$/);
  assert.equal(typeof summary.gaveUpByMs, "number", "silent: it gave up");
  assert.equal(summary.gaveUpByMs, summary.nextSynDueMs);

  // A second sender still retransmitting at Ctrl-C: it has not given up.
  const second = net.connect(info.port, "127.0.0.1");
  second.on("error", () => {});
  t.after(() => second.destroy());
  const resent = new Promise<void>((resolve) =>
    onLines(child, (line) => {
      const e = JSON.parse(line) as Event;
      if (e.event === "syn" && e.from !== summary.from && e.n === 2) resolve();
    }),
  );
  await resent;
  const done = finished(child);
  child.kill("SIGTERM");
  assert.equal((await done).code, 0);
  const last = JSON.parse(child.stdoutText().trimEnd().split("\n").at(-1) as string) as Event;
  assert.equal(last.event, "stopped");
  assert.equal(last.reason, "watch-stopped");
  assert.notEqual(last.from, summary.from);
  assert.equal(last.gaveUpByMs, null, "watch-stopped: no give-up happened");
  assert.ok((last.nextSynDueMs ?? 0) > (last.offsetsMs?.[1] ?? Number.POSITIVE_INFINITY));
  assert.deepEqual(tcpdumpsOn(info.port), []);
});

test("a tarpit killed by SIGKILL takes its tcpdump with it", {
  skip: notRoot || (!onPathSync("setpriv") && "needs util-linux's setpriv"),
}, async (t) => {
  const { child, port } = await startShowSyns(t);
  const [tcpdump] = tcpdumpsOn(port);
  assert.ok(tcpdump, "tcpdump is capturing for the tarpit");
  const done = finished(child);
  child.kill("SIGKILL");
  await done;
  // No packet reaches the port, so tcpdump never writes to its closed pipe:
  // only the parent-death signal can end it. Before, it ran on (seen here).
  const gone = await waitFor(() => tcpdumpsOn(port).length === 0, 10_000);
  if (!gone) for (const pid of tcpdumpsOn(port)) process.kill(pid, "SIGKILL");
  assert.ok(gone, `tcpdump (pid ${tcpdump}) still runs 10 s after its tarpit was killed`);
});

/** Polls `ok` until it holds or `withinMs` passes: the orphan is not our child, so no event tells. */
async function waitFor(ok: () => boolean, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (!ok()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function onPathSync(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

test("--show-syns without tcpdump on PATH fails at start with one line and a non-zero exit", {
  skip: notRoot,
}, async () => {
  const r = await runCli(["tarpit", "--show-syns"], { env: { PATH: "/nonexistent" } });
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "", "no listening line: the tarpit did not start");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0] as string,
    /^synlimit: --show-syns: watching SYNs needs tcpdump: tcpdump not found on PATH/,
  );
});

/** Runs the CLI as nobody, when this host can (setpriv present, the build readable). */
function asNobody(): string | false {
  const r = spawnSync("setpriv", [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    process.execPath,
    "-e",
    "0",
  ]);
  return r.status === 0
    ? false
    : "cannot run node as nobody here (setpriv missing or the build unreadable)";
}

test("--show-syns as a user who may not capture fails at start with one line saying so", {
  skip: notRoot || asNobody(),
}, async () => {
  const child = spawn(
    "setpriv",
    [
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      process.execPath,
      cliPath,
      "tarpit",
      "--show-syns",
    ],
    { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  const r = await finished(Object.assign(child, { stdoutText: () => "" }));
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(
    lines[0] as string,
    /^synlimit: --show-syns: tcpdump cannot capture on lo: .*\(capturing needs root or CAP_NET_RAW\)/,
  );
});

test("--capture-interface without --show-syns is a usage error", async () => {
  const r = await runCli(["tarpit", "--capture-interface", "lo"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^synlimit: --capture-interface needs --show-syns\n$/);
});

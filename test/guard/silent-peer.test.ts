import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { readlinkSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { SilentPeerResult } from "./silent-peer-child.js";

/**
 * The field case on a real kernel: an established ReconnectingLink whose
 * collector goes silent (an iptables DROP inside a network namespace this
 * test creates: no FIN, no RST). Before the send-queue watch, a link writing
 * a few bytes every 50 ms never noticed: its send buffer never filled, so
 * the write timeout never started, keep-alive does not probe while data is
 * unacknowledged, and the kernel's ~15 min retransmission limit decided.
 */

// Generous: the bound at the test's scale is about 3 s (ack) and 1 s (echo).
const waitLimitMs = 30_000;

function namespaceUnavailable(): string | null {
  if (process.platform !== "linux") return "needs Linux network namespaces";
  if (process.getuid?.() !== 0) return "needs root for ip netns and iptables";
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" });
    execFileSync("iptables", ["-V"], { stdio: "ignore" });
  } catch {
    return "needs ip and iptables";
  }
  return null;
}

async function inNamespace(
  mode: "ack" | "ack-small-queue" | "ack-tls" | "echo" | "echo-one-miss",
): Promise<SilentPeerResult> {
  const name = `synlimit-silent-${process.pid}-${mode}`;
  execFileSync("ip", ["netns", "add", name], { stdio: "pipe" });
  try {
    execFileSync("ip", ["netns", "exec", name, "ip", "link", "set", "lo", "up"], { stdio: "pipe" });
    const script = fileURLToPath(new URL("./silent-peer-child.js", import.meta.url));
    const child = spawn(
      "ip",
      ["netns", "exec", name, process.execPath, script, mode, String(waitLimitMs)],
      {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, SYNLIMIT_TEST_OUTER_NETNS: readlinkSync("/proc/self/ns/net") },
      },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, `the child in namespace ${name} exited ${code}`);
    return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as SilentPeerResult;
  } finally {
    execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
  }
}

const skip = namespaceUnavailable() ?? false;

test("a link writing little finds its silent collector from unacknowledged bytes, puts them back and reconnects", {
  skip,
}, async () => {
  const r = await inNamespace("ack");
  assert.notEqual(r.detectedMs, null, `the silent collector went unnoticed for ${waitLimitMs} ms`);
  assert.equal(r.errorCode, "SYNLIMIT_LINK_STALLED");
  assert.match(r.errorMessage ?? "", /acknowledged none/);
  assert.equal(r.reconnected, true, "no reconnect once the collector answered again");
  assert.equal(r.stats.connects, 2);
  // At-least-once: what the dead connection held went out again on the new one.
  assert.ok(r.stats.requeued > 0, "nothing was put back");
  assert.equal(r.stats.dropped, 0);
  assert.deepEqual(r.missing, [], `records lost with the dead connection (${r.sent} sent)`);
  assert.ok(r.duplicates <= r.stats.requeued, `${r.duplicates} records arrived twice`);
});

test("over TLS too: the dead connection is reset through its TCP socket, and what is not put back is counted", {
  skip,
}, async () => {
  const r = await inNamespace("ack-tls"); // queueLimit 10, as below
  assert.notEqual(r.detectedMs, null, `the silent collector went unnoticed for ${waitLimitMs} ms`);
  assert.equal(r.errorCode, "SYNLIMIT_LINK_STALLED");
  assert.equal(r.reconnected, true, "no reconnect once the collector answered again");
  assert.ok(r.stats.requeued > 0 && r.stats.requeued <= 10, `requeued ${r.stats.requeued}`);
  // A closed (not reset) connection's orphan would deliver these once the collector answers again.
  assert.ok(r.missingCount > 0, "the old connection delivered what the link had given up");
  assert.ok(
    r.missingCount <= r.stats.dropped,
    `${r.missingCount} records never arrived, ${r.stats.dropped} counted as dropped`,
  );
});

test("with an echo responder, an idle link finds its collector's host gone by missed echoes", {
  skip,
}, async () => {
  const r = await inNamespace("echo");
  assert.notEqual(r.detectedMs, null, `the silent collector went unnoticed for ${waitLimitMs} ms`);
  assert.equal(r.errorCode, "SYNLIMIT_LINK_STALLED");
  assert.match(r.errorMessage ?? "", /liveness probes/);
  assert.equal(r.reconnected, true, "no reconnect once the collector answered again");
  assert.equal(r.stats.connects, 2);
});

test("echoMisses and echoIntervalMs set how soon: one unanswered probe, every 500 ms, is enough", {
  skip,
}, async () => {
  const r = await inNamespace("echo-one-miss");
  assert.notEqual(r.detectedMs, null, `the silent collector went unnoticed for ${waitLimitMs} ms`);
  assert.equal(r.errorCode, "SYNLIMIT_LINK_STALLED");
  assert.match(r.errorMessage ?? "", /a liveness probe went unanswered/);
  assert.equal(r.reconnected, true, "no reconnect once the collector answered again");
});

test("records that cannot be put back (past the queue's bounds) are counted as dropped, never lost silently", {
  skip,
}, async () => {
  const r = await inNamespace("ack-small-queue");
  assert.notEqual(r.detectedMs, null, `the silent collector went unnoticed for ${waitLimitMs} ms`);
  assert.equal(r.reconnected, true, "no reconnect once the collector answered again");
  assert.ok(r.stats.requeued > 0 && r.stats.requeued <= 10, `requeued ${r.stats.requeued}`);
  assert.ok(r.missingCount > 0, "the silence should have outgrown a queue of 10");
  assert.ok(
    r.missingCount <= r.stats.dropped,
    `${r.missingCount} records never arrived, ${r.stats.dropped} counted as dropped`,
  );
});

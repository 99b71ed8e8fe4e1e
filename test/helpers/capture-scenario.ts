/**
 * A queued workload through `synlimit gate`, captured by tcpdump: run inside
 * a fresh network namespace (netnsCommand, tcp_syn_retries=1, so the kernel
 * gives up on a dead peer after 3 s). `DEAD` connects to a tarpit
 * (127.0.0.3:9) go first, then `LIVE` connects to a live server
 * (127.0.0.2:389) every 100 ms, all through the gate's HTTP CONNECT with
 * the limit `K` ("unlimited" for none). The capture holds the gate's
 * upstream handshakes only (the client-to-gate port is filtered out), as a
 * capture on the affected host would.
 *
 * Usage: node capture-scenario.js OUT.pcap K DEAD LIVE
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream } from "node:fs";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { readCapture } from "../../src/analyze/capture.js";
import { ACK, decodeTcp, SYN } from "../../src/analyze/decode.js";
import { Tarpit } from "../../src/targets/tarpit.js";

const [out, k, dead, live] = process.argv.slice(2) as [string, string, string, string];
const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const GATE_PORT = 1080;

function waitForLine(
  child: ChildProcess,
  stream: "stdout" | "stderr",
  pattern: RegExp,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = "";
    child[stream]?.setEncoding("utf8").on("data", (d: string) => {
      text += d;
      if (pattern.test(text)) resolve();
    });
    child.once("exit", (code) => reject(new Error(`${child.spawnfile} exited ${code}: ${text}`)));
  });
}

const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

const tarpit = await Tarpit.listen({ host: "127.0.0.3", port: 9, verify: false });
const server = net.createServer((s) => s.on("error", () => {}).end());
server.listen(389, "127.0.0.2");
await once(server, "listening");

const gate = spawn(
  process.execPath,
  [
    cli,
    "gate",
    "--port",
    String(GATE_PORT),
    "--identity",
    "global",
    "--max-in-flight",
    k,
    "--timing",
    "none",
    "--no-admin",
    "--json",
    "--log-level",
    "error",
  ],
  { stdio: ["ignore", "pipe", "pipe"] },
);
children.push(gate);
await waitForLine(gate, "stdout", /\n/);

const tcpdump = spawn(
  "tcpdump",
  [
    "-i",
    "lo",
    "-n",
    "-U",
    "-s",
    "96",
    "-w",
    out,
    process.env.CAPTURE_FILTER ??
      `tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 and not port ${GATE_PORT}`,
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
children.push(tcpdump);
await waitForLine(tcpdump, "stderr", /listening on/);

/** One CONNECT through the gate: resolves with the gate's status line (or "closed"). */
function connectVia(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(GATE_PORT, "127.0.0.1");
    let got = "";
    s.on("error", () => resolve(got || "error"));
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n")) {
        resolve(got.slice(0, got.indexOf("\r\n")));
        s.destroy();
      }
    });
    s.on("close", () => resolve(got || "closed"));
    s.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  });
}

const results: Array<Promise<string>> = [];
for (let i = 0; i < Number(dead); i++) results.push(connectVia("127.0.0.3", 9));
for (let i = 0; i < Number(live); i++) {
  await new Promise((r) => setTimeout(r, 100));
  results.push(connectVia("127.0.0.2", 389));
}
const statuses = await Promise.all(results);
// Let the last handshakes reach the capture, then stop tcpdump cleanly (it flushes on SIGINT).
// The kernel hands packets to tcpdump in blocks: wait until the file holds the last live handshake.
const deadline = Date.now() + 20_000;
while ((await liveAnswers()) < Number(live) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 200));
}
let tcpdumpErr = "";
tcpdump.stderr?.on("data", (d: string) => {
  tcpdumpErr += d;
});
tcpdump.kill("SIGINT");
await once(tcpdump, "exit");
if (process.env.DEBUG_CAPTURE) process.stderr.write(tcpdumpErr);
gate.kill("SIGTERM");
await once(gate, "exit");
server.close();
await tarpit.close();
process.stdout.write(`${JSON.stringify({ statuses })}\n`);

/** SYN-ACKs from the live server written to the capture so far. */
async function liveAnswers(): Promise<number> {
  let n = 0;
  try {
    for await (const f of readCapture(createReadStream(out), out)) {
      const s = decodeTcp(f.linkType, f.data);
      if (s && s.src === "127.0.0.2" && (s.flags & (SYN | ACK)) === (SYN | ACK)) n++;
    }
  } catch {
    return n;
  }
  return n;
}

import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { readlinkSync } from "node:fs";
import net from "node:net";
import { performance } from "node:perf_hooks";
import tls from "node:tls";
import { ReconnectingLink } from "../../src/guard/link.js";
import { EchoServer } from "../../src/targets/echo.js";
import { freshCert } from "./fixtures.js";

/**
 * Runs inside the network namespace silent-peer.test.ts creates: a collector
 * on loopback, a connected ReconnectingLink, then an iptables DROP (inside
 * this namespace only) that makes the collector silent — no FIN, no RST, as
 * when its host is switched off. Prints one JSON line for the test.
 */
export interface SilentPeerResult {
  /** Real ms from the DROP rule to the link's `disconnected`, or null if it never came. */
  detectedMs: number | null;
  errorCode: string | undefined;
  errorMessage: string | undefined;
  /** Whether the link connected again once the rule was removed. */
  reconnected: boolean;
  sent: number;
  /** Distinct records the collector received over every connection. */
  receivedDistinct: number;
  missing: number[];
  missingCount: number;
  /** Records received more than once (put back, yet delivered by the old connection too). */
  duplicates: number;
  stats: ReturnType<ReconnectingLink["stats"]>;
}

const mode = process.argv[2] as "ack" | "ack-small-queue" | "ack-tls" | "echo" | "echo-one-miss";
const waitLimitMs = Number(process.argv[3]);
const outer = process.env.SYNLIMIT_TEST_OUTER_NETNS;
if (!outer || readlinkSync("/proc/self/ns/net") === outer) {
  throw new Error("silent-peer-child: refusing to touch iptables outside the test's namespace");
}

const received = new Set<number>();
let receivedLines = 0;
const sockets = new Set<net.Socket>();
const cert = mode === "ack-tls" ? freshCert() : null;
const onConnection = (socket: net.Socket) => {
  sockets.add(socket);
  socket.on("error", () => {});
  let partial = "";
  socket.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    receivedLines += lines.length;
    for (const line of lines) received.add(Number(line));
  });
};
const server = cert ? tls.createServer(cert, onConnection) : net.createServer(onConnection);
server.listen(0, "127.0.0.1");
await once(server, "listening");
const port = (server.address() as net.AddressInfo).port;
const echoing = mode === "echo" || mode === "echo-one-miss";
const echo = echoing ? await EchoServer.listen({ host: "127.0.0.1" }) : null;

const link = new ReconnectingLink({
  host: "127.0.0.1",
  port,
  ...(echo ? { udpEchoPort: echo.udpPort } : {}),
  // Shorter waits than production (0.2 × the defaults): the same logic, sooner.
  guard: { timeScale: 0.2 },
  // Fewer records than the silence produces: some cannot be put back.
  ...(mode === "ack-small-queue" || mode === "ack-tls" ? { queueLimit: 10 } : {}),
  ...(cert ? { tls: { ca: cert.cert } } : {}),
  // One unanswered probe is enough, probed twice as often as by default.
  ...(mode === "echo-one-miss" ? { echoMisses: 1, echoIntervalMs: 500 } : {}),
});
await once(link, "connected");

let sent = 0;
// "ack": a little every 50 ms, as an agent's spans: the send buffer never fills.
// "echo": an idle link, nothing in flight: only the echo can tell.
const writer = !echoing
  ? setInterval(() => {
      link.send(`${sent++}\n`);
    }, 50)
  : null;
await new Promise((r) => setTimeout(r, 500)); // a healthy stretch

const rules: string[][] = [];
const ports: Array<["tcp" | "udp", number]> = [["tcp", port]];
if (echo) ports.push(["udp", echo.udpPort]);
for (const [proto, p] of ports) {
  for (const side of ["--dport", "--sport"]) {
    const rule = ["INPUT", "-p", proto, side, String(p), "-j", "DROP"];
    execFileSync("iptables", ["-w", "-A", ...rule]);
    rules.push(rule);
  }
}
const droppedAt = performance.now();
let detectedMs: number | null = null;
let error: (Error & { code?: string }) | undefined;
const detected = await Promise.race([
  once(link, "disconnected").then(([e]) => {
    detectedMs = performance.now() - droppedAt;
    error = e as Error & { code?: string };
    return true;
  }),
  new Promise<boolean>((r) => setTimeout(() => r(false), waitLimitMs).unref()),
]);

let reconnected = false;
if (detected) {
  for (const rule of rules.splice(0)) execFileSync("iptables", ["-w", "-D", ...rule]);
  reconnected = await Promise.race([
    once(link, "connected").then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), waitLimitMs).unref()),
  ]);
}
if (writer) clearInterval(writer);
if (reconnected) {
  // Everything sent (and put back) reaches the collector on the new connection.
  const until = performance.now() + waitLimitMs;
  while (received.size < sent && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
  }
}
for (const rule of rules.splice(0)) execFileSync("iptables", ["-w", "-D", ...rule]);
const stats = link.stats();
await link.close(500);
server.close();
for (const s of sockets) s.destroy();
await echo?.close();
const missing: number[] = [];
for (let i = 0; i < sent; i++) if (!received.has(i)) missing.push(i);
const result: SilentPeerResult = {
  detectedMs,
  errorCode: error?.code,
  errorMessage: error?.message,
  reconnected,
  sent,
  receivedDistinct: received.size,
  missing: missing.slice(0, 20),
  missingCount: missing.length,
  duplicates: receivedLines - received.size,
  stats,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);

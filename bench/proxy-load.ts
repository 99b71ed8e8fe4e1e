// Load: many concurrent clients through `synlimit gate`, one identity's
// attempts piled up against a tarpit, everyone else connecting meanwhile.
// Reports the proxy's memory per pending attempt and per tunnel, and whether
// other identities were delayed. Run alone: node dist/bench/proxy-load.js [--quick]
//
// 10,000 clients need ~19,000 descriptors in the proxy's process (client and
// upstream ends), 10,000 in the clients' and 9,000 in the live server's: each
// runs as its own child under `ulimit -n 65536` where the hard limit allows,
// else under the hard limit (20,000 is enough; below that, lower the counts).
import type { ChildProcess } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import type net from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { channelNames } from "../src/gate/channels.js";
import type { AttemptEvent } from "../src/gate/types.js";
import { GateProxy } from "../src/proxy/server.js";
import { LiveListener } from "../src/targets/live.js";
import { Tarpit } from "../src/targets/tarpit.js";
import { socks5Tunnel, spawnWithFiles } from "./proxy-common.js";
import { max, percentile } from "./stats.js";

const self = fileURLToPath(import.meta.url);

type Request =
  | { cmd: "mem" }
  | { cmd: "stop" }
  | { cmd: "dead"; n: number; proxyPort: number; port: number }
  | { cmd: "live"; n: number; proxyPort: number; port: number; concurrency: number }
  | { cmd: "close" };

interface Mem {
  heapUsed: number;
  rss: number;
  external: number;
  stats: ReturnType<GateProxy["stats"]>;
  queuedOthers: number;
  fds: number;
}

/** A child process answering one request at a time over IPC. */
class Peer {
  readonly child: ChildProcess;
  constructor(role: string) {
    this.child = spawnWithFiles(process.execPath, ["--expose-gc", self, role], { ipc: true });
  }
  async ready<T>(): Promise<T> {
    const [m] = (await once(this.child, "message")) as [T];
    return m;
  }
  async ask<T>(request: Request): Promise<T> {
    const reply = once(this.child, "message") as Promise<[T]>;
    this.child.send(request);
    return (await reply)[0];
  }
  async exit(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.send({ cmd: "stop" });
    await exited;
  }
}

async function serverRole(): Promise<void> {
  const tarpit = await Tarpit.listen();
  const proxy = await GateProxy.listen({
    port: 0,
    identity: "user",
    limits: { profile: "incident" },
    maxClients: 60_000,
  });
  let queuedOthers = 0;
  diagnostics.subscribe(channelNames.queued, (m) => {
    if ((m as AttemptEvent).key !== "user:dead") queuedOthers++;
  });
  const send = (m: unknown) => process.send?.(m);
  process.on("message", async (r: Request) => {
    if (r.cmd === "mem") {
      (globalThis as { gc?: () => void }).gc?.();
      const { heapUsed, rss, external } = process.memoryUsage();
      const { readdirSync } = await import("node:fs");
      const fds = readdirSync("/proc/self/fd").length;
      const m: Mem = { heapUsed, rss, external, stats: proxy.stats(), queuedOthers, fds };
      send(m);
    } else if (r.cmd === "stop") {
      await proxy.close();
      await tarpit.close();
      process.exit(0);
    }
  });
  send({ proxyPort: proxy.port, tarpitPort: tarpit.port });
}

async function liveRole(): Promise<void> {
  const live = await LiveListener.listen();
  process.on("message", async (r: Request) => {
    if (r.cmd === "stop") {
      await live.close();
      process.exit(0);
    } else {
      process.send?.({ accepted: live.accepted, open: live.sockets.size });
    }
  });
  process.send?.({ livePort: live.port });
}

async function clientsRole(): Promise<void> {
  const sockets: net.Socket[] = [];
  const send = (m: unknown) => process.send?.(m);
  process.on("message", async (r: Request) => {
    if (r.cmd === "dead") {
      // Requests sent, replies never awaited: these wait on the tarpit.
      const { connect } = await import("node:net");
      for (let i = 0; i < r.n; i++) {
        const s = connect(r.proxyPort, "127.0.0.1");
        s.on("error", () => {});
        const u = Buffer.from("dead");
        s.write(Buffer.from([5, 1, 2, 1, u.length, ...u, 1, 0x2d]));
        s.write(Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, r.port >> 8, r.port & 255]));
        sockets.push(s);
        if (i % 200 === 199) await new Promise((res) => setImmediate(res));
      }
      send({ ok: true });
    } else if (r.cmd === "live") {
      const latencies: number[] = [];
      let next = 0;
      let failed = 0;
      const worker = async () => {
        while (next < r.n) {
          const i = next++;
          const t0 = performance.now();
          try {
            sockets.push(
              await socks5Tunnel(r.proxyPort, { host: "127.0.0.1", port: r.port }, `live${i}`),
            );
            latencies.push(performance.now() - t0);
          } catch {
            failed++;
          }
        }
      };
      await Promise.all(Array.from({ length: r.concurrency }, worker));
      send({ latencies, failed });
    } else if (r.cmd === "close") {
      for (const s of sockets) s.destroy();
      sockets.length = 0;
      send({ ok: true });
    } else if (r.cmd === "stop") {
      process.exit(0);
    }
  });
  send({ ready: true });
}

export async function runProxyBench(options: { quick: boolean }): Promise<{ markdown: string }> {
  const total = options.quick ? 2_000 : 10_000;
  const pending = options.quick ? 200 : 1_000;
  const server = new Peer("--server");
  const clients = new Peer("--clients");
  const target = new Peer("--live");
  try {
    const { livePort } = await target.ready<{ livePort: number }>();
    const ports = {
      ...(await server.ready<{ proxyPort: number; tarpitPort: number }>()),
      livePort,
    };
    await clients.ready();
    const base = await server.ask<Mem>({ cmd: "mem" });
    await clients.ask({
      cmd: "dead",
      n: pending,
      proxyPort: ports.proxyPort,
      port: ports.tarpitPort,
    });
    let piled = base;
    for (let i = 0; i < 2_000; i++) {
      piled = await server.ask<Mem>({ cmd: "mem" });
      if (piled.stats.inFlight + piled.stats.queued >= pending) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const t0 = performance.now();
    const live = await clients.ask<{ latencies: number[]; failed: number }>({
      cmd: "live",
      n: total - pending,
      proxyPort: ports.proxyPort,
      port: ports.livePort,
      concurrency: 64,
    });
    const liveSeconds = (performance.now() - t0) / 1000;
    const full = await server.ask<Mem>({ cmd: "mem" });
    await clients.ask({ cmd: "close" });
    const perPending = (piled.heapUsed + piled.external - base.heapUsed - base.external) / pending;
    const rssPerPending = (piled.rss - base.rss) / pending;
    const tunnels = full.stats.tunnels;
    const perTunnel =
      (full.heapUsed + full.external - piled.heapUsed - piled.external) / Math.max(1, tunnels);
    const rssPerTunnel = (full.rss - piled.rss) / Math.max(1, tunnels);
    const lat = live.latencies;
    const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
    // RSS moves in allocator-sized steps and can shrink when a GC returns
    // pages: a drop means "lost in the allocator's slack", not negative memory.
    const rssKb = (b: number) => (b < 0 ? "below the allocator's noise (RSS fell)" : kb(b));
    const lines = [
      `${total.toLocaleString("en")} concurrent clients through one \`synlimit gate\` (identity \`user\`, profile \`incident\`): ${pending.toLocaleString("en")} of them as one user whose attempts go to a tarpit (1 in SYN_SENT, the rest queued), then ${(total - pending).toLocaleString("en")} more, each its own user, opening tunnels to a live server (64 at a time) and holding them.`,
      "",
      "| measure | value |",
      "| --- | ---: |",
      `| pending attempts (in flight + queued) | ${piled.stats.inFlight} + ${piled.stats.queued} |`,
      `| JS heap + external per pending attempt | ${kb(perPending)} |`,
      `| RSS per pending attempt | ${rssKb(rssPerPending)} |`,
      `| tunnels established while the line stood | ${tunnels} (${live.failed} failed) |`,
      `| JS heap + external per tunnel | ${kb(perTunnel)} |`,
      `| RSS per tunnel | ${rssKb(rssPerTunnel)} |`,
      `| proxy RSS at ${full.stats.clients.toLocaleString("en")} clients | ${(full.rss / 1024 / 1024).toFixed(0)} MiB (${full.fds.toLocaleString("en")} fds) |`,
      `| other identities' attempts that waited in line | ${full.queuedOthers} |`,
      `| other identities' setup latency p50 / p99 / max | ${percentile(lat, 50).toFixed(1)} / ${percentile(lat, 99).toFixed(1)} / ${max(lat).toFixed(1)} ms |`,
      `| other identities' setups/s (64 in parallel) | ${((total - pending) / liveSeconds).toFixed(0)} |`,
      "",
      `Memory is measured after a forced GC in the proxy's process; RSS includes allocator slack. No other identity waited behind the tarpit: ${full.queuedOthers === 0 ? "yes" : "**no**"}.`,
    ];
    return { markdown: lines.join("\n") };
  } finally {
    await clients.exit().catch(() => {});
    await server.exit().catch(() => {});
    await target.exit().catch(() => {});
  }
}

const role = process.argv[2];
if (process.argv[1] === self) {
  if (role === "--server") await serverRole();
  else if (role === "--clients") await clientsRole();
  else if (role === "--live") await liveRole();
  else {
    const { markdown } = await runProxyBench({ quick: process.argv.includes("--quick") });
    process.stdout.write(`${markdown}\n`);
  }
}

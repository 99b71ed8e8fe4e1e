// How the gate's `process` identity finds a client's socket: one exact
// NETLINK_SOCK_DIAG query against one read of /proc/net/tcp{,6}, on the
// host as it is (run after the proxy benchmarks, which leave tens of
// thousands of TIME_WAIT sockets, as a busy host has).
// Run alone: node dist/bench/identity-lookup.js [--quick]
import { once } from "node:events";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { sockDiagAvailable, tcpSocketInode } from "../src/os/linux/sock-diag.js";
import { readTcpTable } from "../src/os/linux/tcp-table.js";
import { socketEnd } from "../src/proxy/identity.js";
import { median } from "./stats.js";

export async function runIdentityLookupBench(options: {
  quick: boolean;
}): Promise<{ markdown: string }> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, "127.0.0.1");
  await once(client, "connect");
  try {
    const local = socketEnd("127.0.0.1", client.localPort ?? 0);
    const remote = socketEnd("127.0.0.1", port);
    if (!local || !remote) throw new Error("no socket ends");
    const lookups = options.quick ? 200 : 2_000;
    const reads = options.quick ? 3 : 7;
    const diag: number[] = [];
    if (sockDiagAvailable()) {
      for (let i = 0; i < lookups; i++) {
        const t0 = performance.now();
        const inode = tcpSocketInode(local, remote);
        diag.push((performance.now() - t0) * 1000);
        if (!inode) throw new Error("sock_diag did not find a connected socket");
      }
    }
    const table: number[] = [];
    let sockets = 0;
    let timeWait = 0;
    for (let i = 0; i < reads; i++) {
      const t0 = performance.now();
      const rows = await readTcpTable();
      table.push(performance.now() - t0);
      sockets = rows.length;
      timeWait = rows.filter((r) => r.state === "TIME_WAIT").length;
    }
    const lines = [
      `Finding one client's socket inode by its 4-tuple, with ${sockets.toLocaleString("en")} TCP sockets in this network namespace (${timeWait.toLocaleString("en")} in TIME_WAIT) when measured. Medians.`,
      "",
      "| method | per lookup | runs |",
      "| --- | ---: | ---: |",
      diag.length > 0
        ? `| NETLINK_SOCK_DIAG exact query (packages/sockdiag) | ${median(diag).toFixed(1)} µs | ${diag.length} |`
        : "| NETLINK_SOCK_DIAG exact query | not built | – |",
      `| read and parse /proc/net/tcp and tcp6 (the fallback) | ${median(table).toFixed(1)} ms | ${reads} |`,
    ];
    return { markdown: lines.join("\n") };
  } finally {
    client.destroy();
    server.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { markdown } = await runIdentityLookupBench({ quick: process.argv.includes("--quick") });
  process.stdout.write(`${markdown}\n`);
}

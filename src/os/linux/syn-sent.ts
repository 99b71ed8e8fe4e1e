import { readFile } from "node:fs/promises";
import type { Clock } from "../../clock.js";
import { aborted, type Endpoint } from "../../errors.js";
import {
  parseTcpTable,
  readTcpTable,
  socketInodesOf,
  type TcpEntry,
  tcpTableSupported,
} from "./tcp-table.js";

/** Whose sockets to count: one process, or every process in this network namespace. */
export type Owner = number | "any";

// One /proc/net/tcp row in state 02 (SYN_SENT). A host that has just made
// thousands of short connections lists as many TIME_WAIT rows; picking the
// few SYN_SENT rows out with one regex pass, before parsing, keeps a poll
// cheap there.
const synSentRow = /^ *\d+: [0-9A-F]+:[0-9A-F]+ [0-9A-F]+:[0-9A-F]+ 02 .*$/gm;

/** The SYN_SENT rows of this network namespace's TCP table (Linux). */
export async function readSynSent(): Promise<TcpEntry[]> {
  if (!tcpTableSupported()) return readTcpTable(); // throws the platform error
  const texts = await Promise.all(
    ["/proc/net/tcp", "/proc/net/tcp6"].map((f) => readFile(f, "utf8").catch(() => "")),
  );
  const rows = texts.flatMap((t) => t.match(synSentRow) ?? []);
  return parseTcpTable(`header\n${rows.join("\n")}`);
}

/** Sockets in SYN_SENT to `to`, as the kernel's TCP table shows them right now. */
export async function countSynSent(to: Endpoint, owner: Owner): Promise<number> {
  const [table, inodes] = await Promise.all([
    readSynSent(),
    owner === "any" ? Promise.resolve(null) : socketInodesOf(owner),
  ]);
  return table.filter(
    (e) => e.state === "SYN_SENT" && sameEndpoint(e.remote, to) && (!inodes || inodes.has(e.inode)),
  ).length;
}

export { tcpTableSupported };

const POLL_MS = 5;

/**
 * Polls the TCP table until `until(count)` holds or `withinMs` passes. The
 * kernel has no event for "this socket entered SYN_SENT", so a short bounded
 * poll is the only way to watch it.
 */
export async function pollSynSent(
  to: Endpoint,
  owner: Owner,
  until: (count: number) => boolean,
  withinMs: number,
  clock: Clock,
  signal?: AbortSignal,
): Promise<{ count: number; met: boolean; afterMs: number }> {
  const start = clock.now();
  for (;;) {
    if (signal?.aborted) throw aborted("probe", signal.reason);
    const count = await countSynSent(to, owner);
    const afterMs = clock.now() - start;
    if (until(count)) return { count, met: true, afterMs };
    if (afterMs >= withinMs) return { count, met: false, afterMs };
    await new Promise<void>((resolve) => clock.setTimer(resolve, POLL_MS));
  }
}

/** Compares two endpoints as the kernel's TCP table prints them. */
export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  const norm = (h: string) => h.replace(/^::ffff:(?=\d+\.)/i, "").toLowerCase();
  return a.port === b.port && norm(a.host) === norm(b.host);
}

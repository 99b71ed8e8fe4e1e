import type { Clock } from "../clock.js";
import { aborted, type Endpoint } from "../errors.js";
import { sameEndpoint } from "./address.js";
import { readTcpTable, socketInodesOf, tcpTableSupported } from "./tcp-table.js";

/** Whose sockets to count: one process, or every process in this network namespace. */
export type Owner = number | "any";

/** Sockets in SYN_SENT to `to`, as the kernel's TCP table shows them right now. */
export async function countSynSent(to: Endpoint, owner: Owner): Promise<number> {
  const [table, inodes] = await Promise.all([
    readTcpTable(),
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

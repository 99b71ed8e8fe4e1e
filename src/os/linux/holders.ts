import { readdir, readFile, readlink } from "node:fs/promises";
import type { Endpoint } from "../../errors.js";
import { listWindowsHolders } from "../windows/holders.js";
import { readSynSent } from "./syn-sent.js";
import { socketInodesOf, tcpTableSupported } from "./tcp-table.js";

export interface PendingAttempt {
  readonly local: Endpoint;
  readonly remote: Endpoint;
}

/** A process with sockets in SYN_SENT: it holds connect attempts right now. */
export interface Holder {
  readonly pid: number;
  /** The executable (null when /proc does not let us read it). */
  readonly exe: string | null;
  /** The kernel's short process name. */
  readonly comm: string | null;
  readonly attempts: readonly PendingAttempt[];
}

export type HoldersReport =
  | {
      readonly supported: true;
      readonly holders: readonly Holder[];
      /** SYN_SENT sockets whose process we may not inspect (another user, another namespace). */
      readonly unattributed: readonly PendingAttempt[];
    }
  | { readonly supported: false; readonly reason: string };

/**
 * Who holds connect attempts on this host now: every SYN_SENT socket in the
 * kernel's TCP table, matched to its process through /proc/PID/fd. Linux only;
 * without root, other users' processes stay unattributed.
 */
export async function listHolders(): Promise<HoldersReport> {
  if (process.platform === "win32") return listWindowsHolders();
  if (!tcpTableSupported()) {
    return {
      supported: false,
      reason: `listing the processes that hold connect attempts needs Linux /proc, not ${process.platform}`,
    };
  }
  const pending = await readSynSent();
  const byInode = new Map(pending.map((e) => [e.inode, { local: e.local, remote: e.remote }]));
  const holders: Holder[] = [];
  if (byInode.size > 0) {
    const pids = (await readdir("/proc")).filter((name) => /^\d+$/.test(name)).map(Number);
    const found = await Promise.all(
      pids.map(async (pid) => {
        const inodes = await socketInodesOf(pid);
        const attempts = [...inodes].flatMap((i) => byInode.get(i) ?? []);
        return attempts.length > 0 ? { pid, attempts, inodes } : null;
      }),
    );
    for (const f of found) {
      if (!f) continue;
      for (const i of f.inodes) byInode.delete(i);
      const [exe, comm] = await Promise.all([
        readlink(`/proc/${f.pid}/exe`).catch(() => null),
        readFile(`/proc/${f.pid}/comm`, "utf8").then(
          (s) => s.trim(),
          () => null,
        ),
      ]);
      holders.push({ pid: f.pid, exe, comm, attempts: f.attempts });
    }
  }
  holders.sort((a, b) => b.attempts.length - a.attempts.length || a.pid - b.pid);
  return { supported: true, holders, unattributed: [...byInode.values()] };
}

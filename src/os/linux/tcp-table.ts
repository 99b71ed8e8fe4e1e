import { readdir, readFile, readlink } from "node:fs/promises";
import type { Socket } from "node:net";
import { SynlimitError } from "../../errors.js";

/** Kernel TCP states as numbered in include/net/tcp_states.h. */
const states = [
  "",
  "ESTABLISHED",
  "SYN_SENT",
  "SYN_RECV",
  "FIN_WAIT1",
  "FIN_WAIT2",
  "TIME_WAIT",
  "CLOSE",
  "CLOSE_WAIT",
  "LAST_ACK",
  "LISTEN",
  "CLOSING",
  "NEW_SYN_RECV",
] as const;

export type TcpState = Exclude<(typeof states)[number], "">;

export interface TcpEntry {
  readonly local: { host: string; port: number };
  readonly remote: { host: string; port: number };
  readonly state: TcpState;
  readonly inode: number;
}

export function tcpTableSupported(): boolean {
  return process.platform === "linux";
}

/** Every TCP socket of this network namespace, from /proc/net/tcp and tcp6. */
export async function readTcpTable(): Promise<TcpEntry[]> {
  if (!tcpTableSupported()) {
    throw new SynlimitError(
      "SYNLIMIT_UNSUPPORTED_PLATFORM",
      `reading the TCP table needs Linux /proc, not ${process.platform}`,
    );
  }
  const [v4, v6] = await Promise.all([
    readFile("/proc/net/tcp", "utf8").catch(() => ""),
    readFile("/proc/net/tcp6", "utf8").catch(() => ""),
  ]);
  return [...parseTcpTable(v4), ...parseTcpTable(v6)];
}

export function parseTcpTable(text: string): TcpEntry[] {
  const entries: TcpEntry[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [local, remote, st, inode] = [f[1], f[2], f[3], f[9]];
    const state = states[Number.parseInt(st ?? "", 16)];
    if (!local || !remote || !state) continue;
    entries.push({ local: endpoint(local), remote: endpoint(remote), state, inode: Number(inode) });
  }
  return entries;
}

function endpoint(hexPair: string): { host: string; port: number } {
  const [addr = "", port = "0"] = hexPair.split(":");
  return { host: addr.length === 8 ? ipv4(addr) : ipv6(addr), port: Number.parseInt(port, 16) };
}

// The kernel prints each 32-bit word in host (little-endian) byte order.
function words(hex: string): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < hex.length; i += 8) {
    const word = hex.slice(i, i + 8);
    out.push([6, 4, 2, 0].map((j) => Number.parseInt(word.slice(j, j + 2), 16)));
  }
  return out;
}

function ipv4(hex: string): string {
  return (words(hex)[0] ?? []).join(".");
}

function ipv6(hex: string): string {
  const bytes = words(hex).flat();
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255) {
    return `::ffff:${bytes.slice(12).join(".")}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups
    .join(":")
    .replace(/(^|:)0(:0)+(:|$)/, "::")
    .replace(/:{3,}/, "::");
}

/** Socket inodes a process holds open (Linux; needs permission to read its fds). */
export async function socketInodesOf(pid: number): Promise<Set<number>> {
  const inodes = new Set<number>();
  const dir = `/proc/${pid}/fd`;
  const fds = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    fds.map(async (fd) => {
      const target = await readlink(`${dir}/${fd}`).catch(() => "");
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m?.[1]) inodes.add(Number(m[1]));
    }),
  );
  return inodes;
}

/** The sockets of `pid` (default: this process) in SYN_SENT: attempts the kernel holds. */
export async function synSentOf(pid: number = process.pid): Promise<TcpEntry[]> {
  const [table, inodes] = await Promise.all([readTcpTable(), socketInodesOf(pid)]);
  return table.filter((e) => e.state === "SYN_SENT" && inodes.has(e.inode));
}

/** The kernel inode of a Node socket's file descriptor (Linux), or null. */
export async function socketInode(socket: Socket): Promise<number | null> {
  // Node keeps the handle private; its fd is what /proc knows the socket by.
  const fdOf = () => (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  // Node issues connect(2), and so creates the fd, on a later tick than
  // net.connect() returns; a few turns of the event loop settle it.
  for (let i = 0; i < 10 && (fdOf() ?? -1) < 0 && socket.connecting; i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  const fd = fdOf();
  if (typeof fd !== "number" || fd < 0) return null;
  const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
  const m = /^socket:\[(\d+)\]$/.exec(target);
  return m?.[1] ? Number(m[1]) : null;
}

import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import net from "node:net";

/**
 * What the kernel says about one connection's sending side (Linux, from
 * /proc/net/tcp): `unackedBytes` is write_seq − snd_una (tx_queue), bytes
 * the peer has not acknowledged; `retransmits` counts retransmission
 * timeouts since the peer last acknowledged anything (the kernel resets it
 * when snd_una advances). Both above zero: a timeout fired and no ACK came.
 */
export interface SendQueueSample {
  unackedBytes: number;
  retransmits: number;
}

/** One connection under watch. */
export interface SendQueueWatcher {
  /** The socket's ends, as /proc/net/tcp(6) prints them. */
  readonly key: TcpTableKey;
  /** Real ms between reads this watcher wants. */
  readonly intervalMs: number;
  /** Called before a read: false skips this watcher (nothing written lately). */
  prepare(): boolean;
  /** The socket's line, or null when it is not in the table (closed). */
  sample(sample: SendQueueSample | null): void;
}

export interface TcpTableKey {
  v6: boolean;
  /** " LOCAL REMOTE " in the table's hex form, spaces included. */
  text: string;
}

// Node 20 cannot set TCP_USER_TIMEOUT, and the optional sock_diag addon
// answers only inodes; /proc/net/tcp is the one per-socket view of unacked
// bytes a plain install has. Read once per tick for every watched link of the
// process, and only while one of them wrote lately.
const watchers = new Set<SendQueueWatcher>();
let timer: NodeJS.Timeout | null = null;
let available = process.platform === "linux";

/** Whether the kernel's send queues can be watched here (Linux with /proc). */
export function sendQueueWatchAvailable(): boolean {
  return available;
}

/** Watches a connection until the returned function is called. */
export function watchSendQueue(watcher: SendQueueWatcher): () => void {
  watchers.add(watcher);
  schedule();
  return () => {
    watchers.delete(watcher);
    if (watchers.size === 0 && timer) {
      clearTimeout(timer);
      timer = null;
    }
  };
}

function schedule(): void {
  if (timer || watchers.size === 0 || !available) return;
  let intervalMs = Number.POSITIVE_INFINITY;
  for (const w of watchers) intervalMs = Math.min(intervalMs, w.intervalMs);
  timer = setTimeout(tick, Math.max(intervalMs, 1));
  timer.unref(); // watching never keeps a process alive
}

async function tick(): Promise<void> {
  const active = [...watchers].filter((w) => w.prepare());
  if (active.length > 0) {
    const [v4, v6] = await Promise.all([
      active.some((w) => !w.key.v6) ? readTable("/proc/net/tcp") : "",
      active.some((w) => w.key.v6) ? readTable("/proc/net/tcp6") : "",
    ]);
    if (v4 === null || v6 === null) available = false;
    else {
      for (const w of active) {
        if (watchers.has(w)) w.sample(findSample(w.key.v6 ? v6 : v4, w.key));
      }
    }
  }
  timer = null;
  schedule();
}

function readTable(path: string): Promise<string | null> {
  return readFile(path, "latin1").catch(() => null);
}

/**
 * One read of a connection's send queue now, or null (not Linux, no /proc,
 * or the socket is not in the table): for a last count before a socket is
 * destroyed, when waiting for the next tick is no longer possible.
 */
export function sampleSendQueueNow(key: TcpTableKey): SendQueueSample | null {
  if (!available) return null;
  try {
    return findSample(readFileSync(key.v6 ? "/proc/net/tcp6" : "/proc/net/tcp", "latin1"), key);
  } catch {
    return null;
  }
}

/** The socket's sample in a /proc/net/tcp(6) text, or null. */
export function findSample(table: string, key: TcpTableKey): SendQueueSample | null {
  const at = table.indexOf(key.text);
  if (at < 0) return null;
  const end = table.indexOf("\n", at);
  // " LOCAL REMOTE st tx_queue:rx_queue tr:tm->when retrnsmt ..."
  const fields = table
    .slice(at, end < 0 ? undefined : end)
    .trim()
    .split(/\s+/);
  const tx = Number.parseInt((fields[3] ?? "").split(":")[0] ?? "", 16);
  const retransmits = Number.parseInt(fields[5] ?? "", 16);
  if (!(Number.isFinite(tx) && Number.isFinite(retransmits))) return null;
  return { unackedBytes: tx, retransmits };
}

/** The key of a connected socket, or null when its ends are not known (yet). */
export function tcpTableKey(socket: {
  localAddress?: string | undefined;
  localPort?: number | undefined;
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
}): TcpTableKey | null {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (!localAddress || !remoteAddress || !localPort || !remotePort) return null;
  const local = addressBytes(localAddress);
  const remote = addressBytes(remoteAddress);
  if (!local || !remote || local.length !== remote.length) return null;
  return {
    v6: local.length === 16,
    text: ` ${hexEnd(local, localPort)} ${hexEnd(remote, remotePort)} `,
  };
}

// The kernel prints each 32-bit word of the address in host (little-endian)
// byte order, the port as four hex digits.
function hexEnd(bytes: number[], port: number): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4) {
    for (let j = 3; j >= 0; j--) out += hex2(bytes[i + j] ?? 0);
  }
  return `${out}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

function addressBytes(address: string): number[] | null {
  const bare = address.split("%")[0] ?? "";
  if (net.isIPv4(bare)) return bare.split(".").map(Number);
  if (!net.isIPv6(bare)) return null;
  let tail: number[] = [];
  let text = bare;
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  if (dotted?.[1]) {
    tail = dotted[1].split(".").map(Number);
    text = `${bare.slice(0, dotted.index)}:0:0`; // two placeholder groups, replaced below
  }
  const [head = "", rest] = text.split("::");
  const groupsOf = (s: string) => (s === "" ? [] : s.split(":"));
  const before = groupsOf(head);
  const after = rest === undefined ? [] : groupsOf(rest);
  const fill = 8 - before.length - after.length;
  const groups = [...before, ...Array(rest === undefined ? 0 : fill).fill("0"), ...after];
  if (groups.length !== 8) return null;
  const bytes = groups.flatMap((g) => {
    const v = Number.parseInt(g, 16);
    return [(v >> 8) & 255, v & 255];
  });
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

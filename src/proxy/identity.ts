import { readdirSync, readlinkSync } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import { type Clock, systemClock } from "../clock.js";
import { type SocketEnd, sockDiagAvailable, tcpSocketInode } from "../os/linux/sock-diag.js";
import { readTcpTable, type TcpEntry, tcpTableSupported } from "../os/linux/tcp-table.js";
import { canonicalAddress, canonicalHost } from "./acl.js";

/**
 * Who a limit applies to:
 * - `process`: the client program (one running process), found from its
 *   socket via /proc, as the incident's security product limited each EXE;
 * - `exe`: every process of the same executable together;
 * - `user`: the SOCKS username or the Proxy-Authorization user;
 * - `source`: the client's address;
 * - `global`: the whole machine, as Windows XP SP2 did.
 */
export type IdentityKind = "process" | "exe" | "user" | "source" | "global";
export const identityKinds: readonly IdentityKind[] = [
  "process",
  "exe",
  "user",
  "source",
  "global",
];

export interface ClientEndpoints {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

export interface ProcessInfo {
  readonly pid: number;
  readonly exe: string;
}

export function userIdentity(username: string | undefined): string {
  return `user:${username ?? "anonymous"}`;
}

export function sourceIdentity(address: string): string {
  return `source:${canonicalAddress(address) ?? address}`;
}

export function processIdentity(info: ProcessInfo): string {
  return `process:${info.pid}:${info.exe}`;
}

export function exeIdentity(info: ProcessInfo): string {
  return `exe:${info.exe}`;
}

interface Lookup {
  readonly client: ClientEndpoints;
  readonly resolve: (info: ProcessInfo | null) => void;
}

const RECENT_PIDS = 64;
// How long a client process's program (its /proc/<pid>/exe) is taken as read.
const EXE_TTL_MS = 1_000;
// A lookup starts at accept and is needed a handshake later (two round trips
// of the client's), so a short wait for company is mostly hidden. Scans take
// at most about a fifth of the time; a lookup never waits more than 10 ms.
const MIN_BATCH_INTERVAL_MS = 2;
const MAX_BATCH_INTERVAL_MS = 10;
const BATCH_INTERVAL_PER_SCAN = 5;

/**
 * Finds the process on the other end of a loopback connection: the client's
 * 4-tuple gives its socket inode (one NETLINK_SOCK_DIAG query where the
 * native part is built, else a read of /proc/net/tcp{,6}), the process
 * holding that inode among its /proc/<pid>/fd links gives the pid,
 * /proc/<pid>/exe the program. Lookups made in the same turn of the event
 * loop share one scan of /proc (and one read of the TCP table), so a burst
 * of clients costs about what one does. Needs the rights to read other
 * processes' fds (root, or the same user).
 */
export class ProcessResolver {
  #batch: Lookup[] = [];
  #scheduled = false;
  #running = false;
  // Clients tend to reconnect: their fds are scanned first.
  readonly #recent: number[] = [];
  #sockDiag: boolean;
  // Set once sock_diag has found a socket: from then on a miss means the
  // client is gone, not that the kernel cannot answer.
  #sockDiagSeen = false;
  readonly #inodeOf: typeof tcpSocketInode;
  readonly #clock: Clock;
  #lastBatchAt = Number.NEGATIVE_INFINITY;
  #intervalMs = MIN_BATCH_INTERVAL_MS;

  /**
   * `sockDiag: false` reads /proc/net/tcp even where the native lookup is
   * built; `clock` paces the batches; `socketInode` replaces the sock_diag
   * query (tests inject a kernel that cannot answer).
   */
  constructor(
    options: { sockDiag?: boolean; clock?: Clock; socketInode?: typeof tcpSocketInode } = {},
  ) {
    this.#sockDiag = options.sockDiag ?? sockDiagAvailable();
    this.#inodeOf = options.socketInode ?? tcpSocketInode;
    this.#clock = options.clock ?? systemClock;
  }

  /** How sockets are found now: "sock_diag", or "proc" (/proc/net/tcp). */
  get method(): "sock_diag" | "proc" {
    return this.#sockDiag ? "sock_diag" : "proc";
  }

  get supported(): boolean {
    return tcpTableSupported();
  }

  lookup(client: ClientEndpoints): Promise<ProcessInfo | null> {
    if (!this.supported) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#batch.push({ client, resolve });
      this.#kick();
    });
  }

  // One batch at a time: lookups arriving meanwhile wait for the next one,
  // so a burst of clients never runs concurrent scans of /proc. A scan costs
  // about the same for one lookup as for ten (a readlink per fd of the
  // client's process), so a batch starts no sooner than a few times its
  // predecessor's duration after it: an idle proxy answers in the next turn,
  // a busy one shares each scan and spends a bounded share of its time on them.
  #kick(): void {
    if (this.#scheduled || this.#running || this.#batch.length === 0) return;
    this.#scheduled = true;
    const waitMs = this.#lastBatchAt + this.#intervalMs - this.#clock.now();
    if (waitMs > 0) this.#clock.setTimer(() => this.#start(), waitMs);
    else setImmediate(() => this.#start());
  }

  #start(): void {
    this.#scheduled = false;
    const batch = this.#batch;
    this.#batch = [];
    this.#running = true;
    const startedAt = this.#clock.now();
    this.#lastBatchAt = startedAt;
    this.#run(batch)
      .catch(() => {
        for (const l of batch) l.resolve(null);
      })
      .finally(() => {
        const tookMs = this.#clock.now() - startedAt;
        this.#intervalMs = Math.min(
          MAX_BATCH_INTERVAL_MS,
          Math.max(MIN_BATCH_INTERVAL_MS, BATCH_INTERVAL_PER_SCAN * tookMs),
        );
        this.#running = false;
        this.#kick();
      });
  }

  async #run(batch: Lookup[]): Promise<void> {
    const inodeOf = await this.#inodes(batch);
    if (inodeOf.size === 0) return;
    const wanted = new Set(inodeOf.values());
    const owner = new Map<number, number>();
    // A client's next connections are often already in its fd table when a
    // scan reads it (connected, not yet accepted): their owners are known.
    const seen = this.#socketOwners;
    for (const inode of wanted) {
      const pid = seen.get(inode);
      if (pid === undefined) continue;
      owner.set(inode, pid);
      seen.delete(inode); // one lookup per connection: a hit is not needed again
    }
    if (owner.size === wanted.size) {
      this.#resolveAll(inodeOf, owner);
      return;
    }
    await this.#scan(this.#recent.slice(), wanted, owner, true);
    if (owner.size < wanted.size) {
      const all = (await readdir("/proc").catch(() => [] as string[]))
        .filter((d) => /^\d+$/.test(d))
        .map(Number);
      await this.#scan(all, wanted, owner, false);
    }
    // Only recent clients keep their settled fds (a full scan reads everyone's).
    if (this.#settled.size > 2 * RECENT_PIDS) {
      for (const pid of this.#settled.keys()) {
        if (!this.#recent.includes(pid) && !owner.has(pid)) this.#settled.delete(pid);
      }
    }
    this.#resolveAll(inodeOf, owner);
  }

  #resolveAll(inodeOf: Map<Lookup, number>, owner: Map<number, number>): void {
    const now = this.#clock.now();
    for (const [l, inode] of inodeOf) {
      const pid = owner.get(inode);
      if (pid === undefined) {
        l.resolve(null);
        continue;
      }
      this.#remember(pid);
      l.resolve({ pid, exe: this.#exeOf(pid, now) });
    }
  }

  // A client's program, read once per pid and second: one readlink of a
  // /proc link (a plain system call, cheaper than a thread-pool round trip),
  // not one per batch. A process that execs keeps its pid; its new program
  // shows within EXE_TTL_MS. Bounded by the recent pids (see #remember).
  #exeOf(pid: number, now: number): string {
    const known = this.#exes.get(pid);
    if (known && now - known.readAt < EXE_TTL_MS) return known.exe;
    let exe: string;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      exe = "unknown";
    }
    this.#exes.set(pid, { exe, readAt: now });
    return exe;
  }

  readonly #exes = new Map<number, { exe: string; readAt: number }>();

  async #scan(
    pids: number[],
    wanted: Set<number>,
    owner: Map<number, number>,
    remember: boolean,
  ): Promise<void> {
    const seen = remember ? this.#socketOwners : null;
    const chunk = 32;
    for (let i = 0; i < pids.length && owner.size < wanted.size; i += chunk) {
      // A turn of the event loop between chunks: a scan of every process
      // must not hold the proxy's I/O until it ends.
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      await Promise.all(
        pids.slice(i, i + chunk).map((pid) => scanFds(pid, wanted, owner, this.#settled, seen)),
      );
    }
  }

  // Lookups without an answer are resolved (null) here; the rest go on to
  // the /proc scan.
  async #inodes(batch: Lookup[]): Promise<Map<Lookup, number>> {
    if (!this.#sockDiag) return inodesByTable(batch);
    let found: Map<Lookup, number>;
    let missed: Lookup[];
    try {
      ({ found, missed } = inodesBySockDiag(batch, this.#inodeOf));
    } catch {
      // The query itself is refused here (seccomp, a sandbox): /proc from now on.
      this.#sockDiag = false;
      return inodesByTable(batch);
    }
    if (found.size > 0) this.#sockDiagSeen = true;
    if (missed.length === 0 || this.#sockDiagSeen) {
      for (const l of missed) l.resolve(null);
      return found;
    }
    // Nothing found by sock_diag yet: the kernel says "no such socket" too
    // when it has no TCP diag handler. The table tells the two apart.
    const byTable = await inodesByTable(missed);
    if (byTable.size > 0) this.#sockDiag = false;
    for (const [l, inode] of byTable) found.set(l, inode);
    return found;
  }

  #remember(pid: number): void {
    const i = this.#recent.indexOf(pid);
    if (i >= 0) this.#recent.splice(i, 1);
    this.#recent.unshift(pid);
    if (this.#recent.length > RECENT_PIDS) {
      const gone = this.#recent.pop();
      if (gone !== undefined) {
        this.#settled.delete(gone);
        this.#exes.delete(gone);
      }
    }
  }

  /**
   * Per recent client process, its fds that were not sockets when last
   * read (stdio, the event loop's epoll and eventfd, pipes, files): a
   * program's long-lived fds, read again only when its new socket is not
   * among the others. A keep-alive client's next connect then costs a
   * readlink per socket it holds, not per fd.
   */
  readonly #settled = new Map<number, Set<string>>();

  /**
   * Socket inodes a scan read in a client's fd table, and the pid holding
   * each: a socket's inode is unique while it exists, so a later lookup of
   * that socket needs no scan. Bounded; oldest first out.
   */
  readonly #socketOwners = new Map<number, number>();
}

/** How many socket inodes a resolver remembers from its scans. */
const SOCKET_OWNERS_MAX = 4_096;

function rememberSocket(seen: Map<number, number>, inode: number, pid: number): void {
  if (seen.size >= SOCKET_OWNERS_MAX) {
    const oldest = seen.keys().next();
    if (!oldest.done) seen.delete(oldest.value);
  }
  seen.set(inode, pid);
}

// The client's own socket: its local end is our remote end.
function inodesBySockDiag(
  batch: readonly Lookup[],
  inodeOf: typeof tcpSocketInode,
): { found: Map<Lookup, number>; missed: Lookup[] } {
  const found = new Map<Lookup, number>();
  const missed: Lookup[] = [];
  for (const l of batch) {
    const c = l.client;
    const local = socketEnd(c.remoteAddress, c.remotePort);
    const remote = socketEnd(c.localAddress, c.localPort);
    let inode = local && remote ? inodeOf(local, remote) : null;
    // An IPv6 socket connected to an IPv4-mapped address.
    if (!inode && local && remote && local.address.length === 4)
      inode = inodeOf(mappedEnd(local), mappedEnd(remote));
    if (inode) found.set(l, inode);
    else missed.push(l);
  }
  return { found, missed };
}

async function inodesByTable(batch: readonly Lookup[]): Promise<Map<Lookup, number>> {
  const table = await readTcpTable();
  const inodeOf = new Map<Lookup, number>();
  const index = new Map<string, TcpEntry>();
  for (const e of table) {
    if (e.inode === 0) continue;
    index.set(
      `${canonicalAddress(e.local.host)}|${e.local.port}|${canonicalAddress(e.remote.host)}|${e.remote.port}`,
      e,
    );
  }
  for (const l of batch) {
    const c = l.client;
    const key = `${canonicalAddress(c.remoteAddress)}|${c.remotePort}|${canonicalAddress(c.localAddress)}|${c.localPort}`;
    const row = index.get(key);
    if (row) inodeOf.set(l, row.inode);
    else l.resolve(null);
  }
  return inodeOf;
}

/** One end of a TCP socket as sock_diag wants it (address bytes in network order), or null. */
export function socketEnd(address: string, port: number): SocketEnd | null {
  const c = canonicalHost(address);
  if (!c || c.kind === "name") return null;
  if (c.kind === "ipv6") return { address: c.bytes, port };
  const v = c.value;
  return { address: Uint8Array.of(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255), port };
}

/** The same end as an IPv4-mapped IPv6 address (an IPv6 socket connected to IPv4). */
export function mappedEnd(end: SocketEnd): SocketEnd {
  const address = new Uint8Array(16);
  address[10] = 255;
  address[11] = 255;
  address.set(end.address, 12);
  return { address, port: end.port };
}

// A few hundred readlinks take well under a millisecond as plain system
// calls, but many times that as thread-pool round trips; past this many fds
// a process is scanned without blocking the event loop.
const SYNC_SCAN_MAX_FDS = 512;

function isSocketOf(target: string, wanted: Set<number>, owner: Map<number, number>): number {
  if (!target.startsWith("socket:[")) return -1;
  const inode = Number(target.slice(8, -1));
  return wanted.has(inode) && !owner.has(inode) ? inode : -1;
}

async function scanFds(
  pid: number,
  wanted: Set<number>,
  owner: Map<number, number>,
  settledOf: Map<number, Set<string>>,
  // Recent clients' sockets are remembered; a scan of every process's are not.
  seen: Map<number, number> | null,
) {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return; // gone, or not ours to read
  }
  const settled = settledOf.get(pid);
  if (fds.length <= SYNC_SCAN_MAX_FDS) {
    // First the fds that were sockets (or unseen), then, only if need be,
    // those that were not: a closed file's number may now hold a socket.
    const fresh = settled ? fds.filter((fd) => !settled.has(fd)) : fds;
    const found = scanSync(pid, dir, fresh, wanted, owner, settledOf, seen);
    if (!found && settled && fresh.length < fds.length) {
      scanSync(
        pid,
        dir,
        fds.filter((fd) => settled.has(fd)),
        wanted,
        owner,
        settledOf,
        seen,
      );
    }
    return;
  }
  for (let i = 0; i < fds.length && owner.size < wanted.size; i += 64) {
    const targets = await Promise.all(
      fds.slice(i, i + 64).map((fd) => readlink(`${dir}/${fd}`).catch(() => "")),
    );
    for (const target of targets) {
      const inode = isSocketOf(target, wanted, owner);
      if (inode >= 0) owner.set(inode, pid);
    }
  }
}

/** Reads `fds` of one process; true once every wanted inode has its owner. */
function scanSync(
  pid: number,
  dir: string,
  fds: readonly string[],
  wanted: Set<number>,
  owner: Map<number, number>,
  settledOf: Map<number, Set<string>>,
  seen: Map<number, number> | null,
): boolean {
  let settled = settledOf.get(pid);
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`${dir}/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    if (!target.startsWith("socket:[")) {
      if (!settled) {
        settled = new Set();
        settledOf.set(pid, settled);
      }
      settled.add(fd);
      continue;
    }
    settled?.delete(fd);
    const inode = isSocketOf(target, wanted, owner);
    if (inode < 0) {
      // Not wanted now: perhaps a connection this proxy has yet to accept.
      if (seen) rememberSocket(seen, Number(target.slice(8, -1)), pid);
      continue;
    }
    owner.set(inode, pid);
    if (owner.size === wanted.size) return true;
  }
  return owner.size === wanted.size;
}

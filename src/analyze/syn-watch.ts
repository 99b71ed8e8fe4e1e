import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter, once } from "node:events";
import { accessSync, constants } from "node:fs";
import net from "node:net";
import path from "node:path";
import { type Clock, systemClock, type Timer } from "../clock.js";
import { defaults } from "../defaults.js";
import { formatEndpoint, invalidOption, SynlimitError } from "../errors.js";
import { readCapture } from "./capture.js";
import { ACK, decodeTcp, isSupportedLinkType, SYN } from "./decode.js";
import { inferSchedule } from "./fingerprint.js";
import { type Handshake, HandshakeBuilder } from "./handshakes.js";

export interface SynWatchOptions {
  /** The address SYNs are sent to (the tarpit's); 0.0.0.0 or :: watches every address. */
  host: string;
  port: number;
  /** Capture interface; default `lo` (`lo0` off Linux) for a loopback host, else `any`. */
  interface?: string;
  /** Default `tcpdump` from PATH. */
  tcpdump?: string;
  /** Times the silences that end a sender (injected in tests). */
  clock?: Clock;
}

/** One SYN as it arrived: the sender's n-th, `offsetMs` after its first. */
export interface SynArrival {
  from: string;
  to: string;
  /** 1 for the first SYN, 2 for the first retransmission, … */
  n: number;
  /** Capture time, ms since the epoch. */
  atMs: number;
  offsetMs: number;
}

/**
 * A sender that stopped retransmitting: `silent` (no SYN for twice its last
 * gap plus a margin, or for the longest initial RTO plus the margin after a
 * single SYN: it gave up), `new-attempt` (a SYN with a new sequence number on
 * the same ports) or `watch-stopped` (still going when the watch ended).
 */
export interface SenderStopped {
  from: string;
  to: string;
  reason: "silent" | "new-attempt" | "watch-stopped";
  offsetsMs: number[];
  /**
   * When its next SYN would have been due, ms after the first, estimated from
   * the SYN gaps (the last gap again when the last two were equal, else
   * doubled). Null after one SYN.
   */
  nextSynDueMs: number | null;
  /**
   * `silent` only: about when it gave up, ms after the first SYN — the
   * estimated next SYN time, where a TCP stack gives up. An estimate, not a
   * bound: the stack's last timer drifts (Linux gave up 0.5 s after this in
   * one run), and an application deadline ends the attempt earlier. Null
   * after one SYN, and for `new-attempt` and `watch-stopped`, where nothing
   * gave up.
   */
  gaveUpByMs: number | null;
}

export interface SynWatchEvents {
  syn: [SynArrival];
  stopped: [SenderStopped];
  /** tcpdump died or its output could not be read; the watch is over. */
  error: [Error];
}

interface Sender {
  h: Handshake;
  silentTimer: Timer;
}

/**
 * Every SYN sent to one address and port, grouped by sender — including the
 * ones the kernel drops, which no socket ever sees (a full accept queue, a
 * firewall). tcpdump does the capturing (it needs root or CAP_NET_RAW); its
 * pcap stream goes through the same reader, handshake rebuilding and
 * schedule inference as `synlimit analyze`.
 */
export class SynWatch extends EventEmitter<SynWatchEvents> {
  readonly interface: string;
  readonly #child: ChildProcess;
  readonly #clock: Clock;
  readonly #builder = new HandshakeBuilder();
  readonly #senders = new Map<Handshake, Sender>();
  #closed: Promise<void> | null = null;

  private constructor(child: ChildProcess, iface: string, clock: Clock) {
    super();
    this.#child = child;
    this.interface = iface;
    this.#clock = clock;
    // tcpdump is in its own process group, so nothing else stops it if this
    // process ends without close() (an uncaught error, process.exit()).
    process.once("exit", this.#killOnExit);
  }

  readonly #killOnExit = () => {
    this.#child.kill("SIGTERM");
  };

  /** Resolves once tcpdump is capturing; rejects with one line saying what is missing. */
  static async start(options: SynWatchOptions): Promise<SynWatch> {
    const { host, port } = options;
    if (net.isIP(host) === 0) throw invalidOption("host", "an IP address", host);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw invalidOption("port", "an integer from 1 to 65535", port);
    // The BSDs and macOS call the loopback interface lo0.
    const loopback = process.platform === "linux" ? "lo" : "lo0";
    const iface = options.interface ?? (isLoopbackHost(host) ? loopback : "any");
    const tool = options.tcpdump ?? "tcpdump";
    // -U: each packet is written as it comes, not when a buffer fills.
    // Its own process group: a terminal's Ctrl-C reaches only us, and we stop
    // tcpdump ourselves, so its exit is never mistaken for a failure.
    const [command, args] = dieWithParent(tool, [
      "-U",
      "-n",
      "-s",
      "128",
      "-w",
      "-",
      "-i",
      iface,
      captureFilter(host, port),
    ]);
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
    const watch = new SynWatch(child, iface, options.clock ?? systemClock);
    try {
      await capturing(child, tool, iface);
    } catch (error) {
      await watch.close();
      throw error;
    }
    void watch.#read(`tcpdump on ${iface}`);
    return watch;
  }

  async #read(where: string): Promise<void> {
    try {
      for await (const frame of readCapture(this.#child.stdout as AsyncIterable<Buffer>, where)) {
        if (!isSupportedLinkType(frame.linkType)) continue;
        const s = decodeTcp(frame.linkType, frame.data);
        if (!s || (s.flags & SYN) === 0 || (s.flags & ACK) !== 0) continue;
        const before = this.#builder.done.length;
        const h = this.#builder.add(frame.timeMs, s);
        // Only the open handshakes matter here; the builder's finished list would only grow.
        const replaced = this.#builder.done.splice(before);
        for (const old of replaced) this.#stop(old, "new-attempt");
        if (h) this.#arrived(h);
      }
    } catch (error) {
      if (this.#closed === null) this.emit("error", error as Error);
      return;
    }
    const child = this.#child;
    if (child.exitCode === null && child.signalCode === null) await once(child, "exit");
    if (this.#closed === null) {
      const how =
        child.signalCode !== null ? `killed by ${child.signalCode}` : `exit code ${child.exitCode}`;
      this.emit("error", new SynlimitError("SYNLIMIT_CHILD_FAILED", `${where} stopped (${how})`));
    }
  }

  #arrived(h: Handshake): void {
    const first = h.synAtMs[0] as number;
    const atMs = h.synAtMs[h.synAtMs.length - 1] as number;
    const sender = this.#senders.get(h);
    sender?.silentTimer.cancel();
    const silentTimer = this.#clock.setTimer(() => this.#stop(h, "silent"), silenceMs(h.synAtMs));
    this.#senders.set(h, { h, silentTimer });
    this.emit("syn", {
      from: formatEndpoint({ host: h.src, port: h.srcPort }),
      to: formatEndpoint({ host: h.dst, port: h.dstPort }),
      n: h.synAtMs.length,
      atMs,
      offsetMs: atMs - first,
    });
  }

  #stop(h: Handshake, reason: SenderStopped["reason"]): void {
    const sender = this.#senders.get(h);
    if (!sender) return;
    sender.silentTimer.cancel();
    this.#senders.delete(h);
    this.#builder.forget(h);
    const nextSynDueMs = inferSchedule([h]).giveUpMs;
    this.emit("stopped", {
      from: formatEndpoint({ host: h.src, port: h.srcPort }),
      to: formatEndpoint({ host: h.dst, port: h.dstPort }),
      reason,
      offsetsMs: h.synAtMs.map((t) => t - (h.synAtMs[0] as number)),
      nextSynDueMs,
      // A sender still retransmitting, or starting over, has not given up.
      gaveUpByMs: reason === "silent" ? nextSynDueMs : null,
    });
  }

  /** Stops tcpdump; senders still retransmitting get a `watch-stopped` summary. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      process.off("exit", this.#killOnExit);
      for (const h of [...this.#senders.keys()]) this.#stop(h, "watch-stopped");
      const child = this.#child;
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        const exited = once(child, "close");
        child.kill("SIGTERM");
        await exited;
      }
    })();
    return this.#closed;
  }
}

/**
 * How long a sender may stay silent before it counts as done: TCP at most
 * doubles its wait after every SYN, so no SYN for twice the last gap (plus a
 * margin for timer drift and capture delay) means it gave up. After a single
 * SYN the gap is the initial RTO, up to old Windows' 3 s. Counted from when
 * the SYN is read from the capture, so `docs/windows.md` states these sums.
 */
function silenceMs(synAtMs: readonly number[]): number {
  const n = synAtMs.length;
  if (n < 2) return defaults.synWatchFirstRtoMs + defaults.synWatchMarginMs;
  return 2 * ((synAtMs[n - 1] as number) - (synAtMs[n - 2] as number)) + defaults.synWatchMarginMs;
}

function isLoopbackHost(host: string): boolean {
  return host === "::1" || host.startsWith("127.") || host.startsWith("::ffff:127.");
}

/**
 * SYNs without ACK to the port. libpcap reads TCP flags by offset only over
 * IPv4, so over IPv6 the flags are checked after decoding.
 */
function captureFilter(host: string, port: number): string {
  const anyAddress = host === "0.0.0.0" || host === "::";
  const to = anyAddress ? "" : ` and dst host ${host.replace(/^::ffff:/, "")}`;
  const v4 = `(ip and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn and tcp dst port ${port}${to})`;
  if (net.isIPv4(host) || host.startsWith("::ffff:")) return v4;
  const v6 = `(ip6 and tcp dst port ${port}${to})`;
  return anyAddress ? `${v4} or ${v6}` : v6;
}

/**
 * Waits for tcpdump's "listening on" line (it prints it once the capture is
 * set up), so no SYN sent after start() resolves is missed.
 */
/**
 * The command that runs `tool` so that it ends when this process does, even
 * by SIGKILL (no "exit" handler runs then): util-linux's setpriv sets the
 * kernel's parent-death signal, kept across its exec of the tool. Without it
 * tcpdump outlived a killed tarpit until its next write, which on a quiet
 * port never comes. The kernel clears that signal when the process changes
 * user, and tcpdump started as root drops to its own user once capturing, so
 * then it is told to stay root (`-Z root`); it only copies packets to us
 * (`-w -`) and dissects nothing. Elsewhere, or without setpriv, the tool runs
 * as it is; a tool not found is left for spawn to report (ENOENT).
 */
function dieWithParent(tool: string, args: string[]): [string, string[]] {
  if (process.platform !== "linux") return [tool, args];
  const setpriv = onPath("setpriv");
  const resolved = tool.includes("/") ? (executable(tool) ? tool : null) : onPath(tool);
  if (setpriv === null || resolved === null) return [tool, args];
  const stayRoot = process.getuid?.() === 0 ? ["-Z", "root"] : [];
  return [setpriv, ["--pdeathsig", "TERM", "--", resolved, ...stayRoot, ...args]];
}

function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "") continue;
    const full = path.join(dir, name);
    if (executable(full)) return full;
  }
  return null;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function capturing(child: ChildProcess, tool: string, iface: string): Promise<void> {
  let stderr = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
      if (/listening on /.test(stderr)) {
        child.stderr?.off("data", onData);
        // Later stderr (the packet count at exit) is drained, not kept.
        child.stderr?.resume();
        resolve();
      }
    };
    child.stderr?.on("data", onData);
    child.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        new SynlimitError(
          "SYNLIMIT_CHILD_FAILED",
          error.code === "ENOENT"
            ? `watching SYNs needs tcpdump: ${tool} not found${tool.includes("/") ? "" : " on PATH"} (install it, e.g. apt-get install tcpdump)`
            : `cannot start ${tool}: ${error.code ?? error.message}`,
        ),
      );
    });
    child.once("close", (code, signal) => {
      const line =
        stderr
          .split("\n")
          .map((l) => l.trim())
          .find((l) => l !== "" && !/^tcpdump: (verbose|data link)/.test(l))
          ?.replace(/^tcpdump: /, "") ?? `exit ${code ?? signal}`;
      const permission = /permission|not permitted/i.test(stderr)
        ? " (capturing needs root or CAP_NET_RAW)"
        : "";
      reject(
        new SynlimitError(
          "SYNLIMIT_CHILD_FAILED",
          `${tool} cannot capture on ${iface}: ${line}${permission}`,
        ),
      );
    });
  });
}

/** For a summary line: offsets in seconds, 0/1/3/7. */
export function formatSchedule(offsetsMs: readonly number[]): string {
  return offsetsMs.map((ms) => String(Math.round(ms / 100) / 10)).join("/");
}

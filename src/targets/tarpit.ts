import { once } from "node:events";
import net from "node:net";
import type { Worker } from "node:worker_threads";
import { defaults } from "../defaults.js";
import { cannotListen, formatEndpoint, invalidOption, SynlimitError } from "../errors.js";
import { isLoopbackAddress } from "../loopback.js";
import { readSynSent } from "../os/linux/syn-sent.js";
import { socketInode, tcpTableSupported } from "../os/linux/tcp-table.js";
import { loopbackTarpitPossible, WINDOWS_NEEDS_BLACKHOLE } from "../os/platform.js";
import { markUnemulated } from "../unemulated.js";
import { startWorker } from "../worker-options.js";

export interface TarpitOptions {
  /** A loopback address (default 127.0.0.1); any other needs `allowNonLoopback`. */
  host?: string;
  /**
   * Listen on a non-loopback address, so another host (a Windows machine,
   * where no loopback tarpit can exist) can use this one as its blackhole.
   * Off by default: a tarpit others can reach is a deliberate choice.
   */
  allowNonLoopback?: boolean;
  /** The operating system to decide for (default `process.platform`; injected in tests). */
  platform?: NodeJS.Platform;
  /** Default 0: any free port. */
  port?: number;
  /**
   * Prove, from the kernel's TCP table, that a connect to the tarpit stays in
   * SYN_SENT before resolving (default true on Linux; elsewhere it cannot be
   * checked and `verified` is false).
   */
  verify?: boolean;
}

// The listener lives in a worker whose event loop never runs again: nothing
// ever calls accept(), so once the accept queue is full the kernel drops
// every further SYN and the connecting side stays in SYN_SENT — what a
// firewall that silently drops SYNs does, without root.
// Dynamic imports, not require(): the source is read as CommonJS or, when the
// program was started with --input-type=module, as ESM; import() works in both.
const workerSource = `
Promise.all([import("node:worker_threads"), import("node:net")]).then(([threads, net]) => {
  const { parentPort, workerData } = threads;
  const server = net.createServer();
  server.once("error", (error) => {
    parentPort.postMessage({ error: { message: error.message, code: error.code } });
  });
  server.listen({ host: workerData.host, port: workerData.port, backlog: workerData.backlog }, () => {
    parentPort.postMessage({ port: server.address().port });
    const stop = new Int32Array(workerData.stop);
    // Short waits so worker.terminate() can still interrupt between them.
    while (Atomics.load(stop, 0) === 0) Atomics.wait(stop, 0, 0, 200);
    server.close();
    process.exit(0);
  });
});
`;

const MAX_FILLERS = 16;
// Loopback handshakes complete in well under a millisecond.
const FILLER_GRACE_MS = 250;

/**
 * A loopback TCP endpoint whose connects never complete: each one sits in
 * SYN_SENT until the client gives up (Linux: ~127 s) or the socket is
 * destroyed. The incident's dead collector, as a test fixture.
 */
export class Tarpit {
  readonly host: string;
  readonly port: number;
  #verified = false;
  readonly #worker: Worker;
  readonly #stop: Int32Array;
  readonly #fillers: net.Socket[];
  #closed: Promise<void> | null = null;

  private constructor(
    host: string,
    port: number,
    worker: Worker,
    stop: Int32Array,
    fillers: net.Socket[],
  ) {
    this.host = host;
    this.port = port;
    this.#worker = worker;
    this.#stop = stop;
    this.#fillers = fillers;
  }

  static async listen(options: TarpitOptions = {}): Promise<Tarpit> {
    const host = options.host ?? "127.0.0.1";
    if (net.isIP(host) === 0) throw invalidOption("host", "an IP address", host);
    if (!loopbackTarpitPossible(options.platform ?? process.platform)) {
      // Windows answers a SYN to a full backlog with RST: connects would be refused, not held.
      throw new SynlimitError(
        "SYNLIMIT_UNSUPPORTED_PLATFORM",
        `tarpit: ${WINDOWS_NEEDS_BLACKHOLE}`,
      );
    }
    if (!isLoopbackAddress(host) && options.allowNonLoopback !== true) {
      throw new SynlimitError(
        "SYNLIMIT_INVALID_OPTION",
        `tarpit on ${host}: not a loopback address; a tarpit other hosts can reach needs allowNonLoopback (CLI: --allow-non-loopback)`,
      );
    }
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw invalidOption("port", "an integer from 0 to 65535", port);
    }
    const verify = options.verify ?? tcpTableSupported();

    const stopBuffer = new SharedArrayBuffer(4);
    const stop = new Int32Array(stopBuffer);
    const worker = startWorker(workerSource, {
      eval: true,
      workerData: { host, port, backlog: defaults.tarpitBacklog, stop: stopBuffer },
    });
    worker.unref();
    const [message] = (await once(worker, "message")) as [
      { port?: number; error?: { message: string; code?: string } },
    ];
    if (message.error || message.port === undefined) {
      Atomics.store(stop, 0, 1);
      await worker.terminate();
      throw cannotListen("tarpit", formatEndpoint({ host, port }), message.error ?? "no port");
    }
    const fillers: net.Socket[] = [];
    const tarpit = new Tarpit(host, message.port, worker, stop, fillers);
    try {
      tarpit.#verified = await tarpit.#fill(verify);
      return tarpit;
    } catch (error) {
      await tarpit.close();
      throw error;
    }
  }

  /** True when the kernel's TCP table showed a connect stuck in SYN_SENT. */
  get verified(): boolean {
    return this.#verified;
  }

  get address(): string {
    return formatEndpoint(this);
  }

  /**
   * Fills the accept queue (Linux admits backlog + 1 handshakes) and, when
   * asked, proves the next connect stays in SYN_SENT. A connect that still
   * completes becomes one more filler.
   */
  async #fill(verify: boolean): Promise<boolean> {
    for (let i = 0; i <= defaults.tarpitBacklog; i++)
      this.#fillers.push(await this.#connectFiller());
    if (!verify) return false;
    while (this.#fillers.length < MAX_FILLERS) {
      const probe = markUnemulated(net.connect({ host: this.host, port: this.port }));
      probe.unref();
      const stuck = await stuckInSynSent(probe);
      if (stuck) {
        probe.destroy();
        return true;
      }
      if (probe.connecting || probe.destroyed) {
        probe.destroy();
        break;
      }
      this.#fillers.push(probe);
    }
    throw new SynlimitError(
      "SYNLIMIT_TARPIT_UNVERIFIED",
      `tarpit at ${this.address}: connects do not stay in SYN_SENT on this system (a full accept queue may answer with RST); use a blackhole you control instead`,
    );
  }

  /**
   * A filler connects at once unless other clients already filled the queue
   * (a tarpit taking over a busy port): then it stays pending too, which is
   * just as good, and after a short grace we stop waiting for it.
   */
  async #connectFiller(): Promise<net.Socket> {
    const socket = markUnemulated(net.connect({ host: this.host, port: this.port }));
    socket.unref();
    socket.on("error", () => {});
    await new Promise<void>((resolve) => {
      const grace = setTimeout(resolve, FILLER_GRACE_MS);
      grace.unref();
      socket.once("connect", () => {
        clearTimeout(grace);
        resolve();
      });
    });
    return socket;
  }

  /** Keeps the process alive while the tarpit is open (the CLI wants this). */
  ref(): this {
    this.#worker.ref();
    for (const s of this.#fillers) s.ref();
    return this;
  }

  async close(): Promise<void> {
    this.#closed ??= (async () => {
      Atomics.store(this.#stop, 0, 1);
      Atomics.notify(this.#stop, 0);
      for (const s of this.#fillers) s.destroy();
      if (this.#worker.threadId >= 0) {
        const exited = once(this.#worker, "exit");
        await Promise.race([exited, this.#worker.terminate()]);
      }
    })();
    return this.#closed;
  }
}

/** 127.0.0.0/8 (also IPv4-mapped) and ::1: addresses no other host can reach. */

/**
 * Polls the kernel's TCP table until `socket` shows up in SYN_SENT (true) or
 * it connects or fails (false). The kernel enters SYN_SENT inside connect(2);
 * the socket is found by its inode, as Node hides the local port until the
 * connect completes.
 */
async function stuckInSynSent(socket: net.Socket): Promise<boolean> {
  let settled = false;
  const done = new Promise<void>((resolve) => {
    const settle = () => {
      settled = true;
      resolve();
    };
    socket.once("connect", settle);
    socket.once("error", settle);
  });
  for (let i = 0; i < 50 && !settled; i++) {
    const inode = await socketInode(socket);
    // Only SYN_SENT rows are parsed: a busy host lists thousands of TIME_WAIT ones.
    if (inode !== null && (await readSynSent()).some((e) => e.inode === inode)) return !settled;
    await Promise.race([done, new Promise((r) => setTimeout(r, 10))]);
  }
  return false;
}

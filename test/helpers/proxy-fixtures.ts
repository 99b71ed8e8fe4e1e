import { execFile, spawnSync } from "node:child_process";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import net from "node:net";
import type { TestContext } from "node:test";
import { SocksClient } from "socks";
import { proxyChannelNames } from "../../src/proxy/channels.js";
import { GateProxy, type GateProxyOptions } from "../../src/proxy/server.js";

/** Starts a proxy on a free loopback port; closed when the test ends. */
export async function startProxy(
  t: TestContext,
  options: GateProxyOptions = {},
): Promise<GateProxy> {
  const proxy = await GateProxy.listen({ port: 0, ...options });
  t.after(() => proxy.close());
  return proxy;
}

type ProxyChannel = keyof typeof proxyChannelNames;

/** Records the proxy's diagnostics events; `next()` waits for one, `stop()` unsubscribes. */
export class ProxyEvents {
  readonly events: Array<{ channel: ProxyChannel; event: Record<string, unknown> }> = [];
  readonly #subs: Array<() => void> = [];
  readonly #waiters: Array<{
    channel: ProxyChannel;
    where: (e: Record<string, unknown>) => boolean;
    resolve: (e: Record<string, unknown>) => void;
  }> = [];

  constructor() {
    for (const [channel, name] of Object.entries(proxyChannelNames) as Array<
      [ProxyChannel, string]
    >) {
      const fn = (m: unknown) => {
        const event = m as Record<string, unknown>;
        this.events.push({ channel, event });
        for (const w of [...this.#waiters]) {
          if (w.channel === channel && w.where(event)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(event);
          }
        }
      };
      diagnostics.subscribe(name, fn);
      this.#subs.push(() => diagnostics.unsubscribe(name, fn));
    }
  }

  next(
    channel: ProxyChannel,
    where: (e: Record<string, unknown>) => boolean = () => true,
  ): Promise<Record<string, unknown>> {
    const seen = this.events.find((r) => r.channel === channel && where(r.event));
    if (seen) return Promise.resolve(seen.event);
    return new Promise((resolve) => this.#waiters.push({ channel, where, resolve }));
  }

  of(channel: ProxyChannel): Array<Record<string, unknown>> {
    return this.events.filter((r) => r.channel === channel).map((r) => r.event);
  }

  stop(): void {
    for (const u of this.#subs) u();
  }
}

export function recordProxyEvents(t: TestContext): ProxyEvents {
  const r = new ProxyEvents();
  t.after(() => r.stop());
  return r;
}

/** Waits (yielding to the event loop) until `check` holds; fails after many turns, not a time. */
export async function until(check: () => boolean, what: string, turns = 2_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Waits until the proxy holds nothing: no client, tunnel, dial, slot or queued attempt. */
export async function untilIdle(proxy: GateProxy): Promise<void> {
  await until(
    () => {
      const s = proxy.stats();
      return (
        s.clients === 0 && s.tunnels === 0 && s.dialing === 0 && s.inFlight === 0 && s.queued === 0
      );
    },
    `an idle proxy (${JSON.stringify(proxy.stats())})`,
  );
}

/** A SOCKS5 CONNECT with the `socks` package; the socket is destroyed when the test ends. */
export async function socksConnect(
  t: TestContext,
  proxy: { port: number },
  destination: { host: string; port: number },
  auth?: { userId: string; password: string },
): Promise<net.Socket> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: "127.0.0.1", port: proxy.port, type: 5, ...(auth ?? {}) },
    command: "connect",
    destination,
    timeout: 60_000,
  });
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  return socket;
}

/** A raw TCP client to the proxy, reading everything it is sent. */
export class RawClient {
  readonly socket: net.Socket;
  #data = Buffer.alloc(0);
  readonly closed: Promise<void>;
  #waiters: Array<() => void> = [];

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.on("error", () => {});
    this.socket.on("data", (d: Buffer) => {
      this.#data = Buffer.concat([this.#data, d]);
      for (const w of this.#waiters.splice(0)) w();
    });
    // A close listener, not events.once: that rejects on the reset a proxy
    // may end a client with, and nobody would handle it.
    this.closed = new Promise<void>((resolve) =>
      this.socket.once("close", () => {
        for (const w of this.#waiters.splice(0)) w();
        resolve();
      }),
    );
  }

  static async connect(t: TestContext, port: number): Promise<RawClient> {
    const c = new RawClient(port);
    t.after(() => c.socket.destroy());
    await once(c.socket, "connect");
    return c;
  }

  get data(): Buffer {
    return this.#data;
  }

  write(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  /** Resolves once at least `n` bytes arrived (or the socket closed). */
  async read(n: number): Promise<Buffer> {
    while (this.#data.length < n && !this.socket.destroyed && !this.socket.readableEnded) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return this.#data.subarray(0, n);
  }

  /** Resolves once the head of an HTTP response is in. */
  async readHttpHead(): Promise<string> {
    while (
      !this.#data.includes("\r\n\r\n") &&
      !this.socket.destroyed &&
      !this.socket.readableEnded
    ) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return this.#data.toString("latin1");
  }
}

export function socks5Greeting(methods: number[] = [0]): Buffer {
  return Buffer.from([5, methods.length, ...methods]);
}

export function socks5Connect(host: string, port: number): Buffer {
  const p = [port >> 8, port & 255];
  if (net.isIPv4(host)) return Buffer.from([5, 1, 0, 1, ...host.split(".").map(Number), ...p]);
  const name = Buffer.from(host, "latin1");
  return Buffer.from([5, 1, 0, 3, name.length, ...name, ...p]);
}

export function socks5ConnectIpv6(bytes: number[], port: number): Buffer {
  return Buffer.from([5, 1, 0, 4, ...bytes, port >> 8, port & 255]);
}

/** Fails (never skips) when a binary the test needs is missing: CI must install it. */
export function requireBinary(name: string): string {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) {
    throw new Error(
      `${name} is not installed (CI installs it; locally: apt-get install ${debianPackage[name] ?? name})`,
    );
  }
  return path;
}

const debianPackage: Record<string, string> = {
  proxychains4: "proxychains4",
  curl: "curl",
  microsocks: "microsocks",
  danted: "dante-server",
};

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion without blocking the event loop (the proxy lives in this process). */
export function run(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { encoding: "utf8", env: env ?? process.env, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: unknown }).code as number | null) : 0;
        resolve({ code: typeof code === "number" ? code : null, stdout, stderr });
      },
    );
  });
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

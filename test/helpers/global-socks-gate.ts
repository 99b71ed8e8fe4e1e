import { once } from "node:events";
import net from "node:net";
import { type Attempt, AttemptGate } from "../../src/gate/gate.js";
import type { GateOptions } from "../../src/gate/types.js";

// RFC 1928 reply codes.
const SUCCEEDED = 0x00;
const GENERAL_FAILURE = 0x01;
const CONNECTION_REFUSED = 0x05;
const COMMAND_NOT_SUPPORTED = 0x07;
const ADDRESS_TYPE_NOT_SUPPORTED = 0x08;

/**
 * A minimal SOCKS5 proxy (no auth, CONNECT only) whose upstream dials all
 * share one AttemptGate: a machine-wide limit for every client, whichever
 * process it is. A stand-in for the gate proxy in tests.
 */
export class GlobalSocksGate {
  readonly gate: AttemptGate;
  readonly server: net.Server;
  port = 0;
  readonly #sockets = new Set<net.Socket>();
  readonly #idleWaiters: Array<() => void> = [];

  constructor(options: GateOptions = {}) {
    this.gate = new AttemptGate({ name: "global-socks-gate", ...options });
    this.server = net.createServer((client) => this.#serve(client));
  }

  async listen(port = 0): Promise<this> {
    this.server.listen(port, "127.0.0.1");
    await once(this.server, "listening");
    this.port = (this.server.address() as net.AddressInfo).port;
    return this;
  }

  get url(): string {
    return `socks5://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Resolves once every client and upstream socket has closed. */
  idle(): Promise<void> {
    if (this.#sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on("error", () => {});
    socket.once("close", () => {
      this.#sockets.delete(socket);
      if (this.#sockets.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
    });
  }

  #serve(client: net.Socket): void {
    this.#track(client);
    let buffered = Buffer.alloc(0);
    let stage: "greeting" | "request" | "done" = "greeting";
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (stage === "greeting") {
        const n = buffered[1];
        if (buffered.length < 2 || n === undefined || buffered.length < 2 + n) return;
        if (buffered[0] !== 5) return void client.destroy();
        buffered = buffered.subarray(2 + n);
        client.write(Buffer.from([5, 0]));
        stage = "request";
      }
      if (stage === "request") {
        const request = parseRequest(buffered);
        if (request === "incomplete") return;
        stage = "done";
        client.off("data", onData);
        if (typeof request === "number") return void reply(client, request);
        this.#connect(client, request);
      }
    };
    client.on("data", onData);
  }

  /** Asks the gate for a slot, then dials; the client's close cancels in every state. */
  #connect(client: net.Socket, destination: { host: string; port: number }): void {
    let upstream: net.Socket | null = null;
    const attempt: Attempt = this.gate.request(destination, {
      onStart: () => {
        const socket = net.connect(destination);
        upstream = socket;
        this.#track(socket);
        socket.once("connect", () => {
          attempt.connected();
          if (client.destroyed) return void socket.destroy();
          reply(client, SUCCEEDED);
          client.pipe(socket).pipe(client);
        });
        socket.once("error", (error) => {
          attempt.failed(error);
          reply(
            client,
            (error as NodeJS.ErrnoException).code === "ECONNREFUSED"
              ? CONNECTION_REFUSED
              : GENERAL_FAILURE,
          );
          client.end();
        });
      },
      onTimeout: (_a, error) => {
        upstream?.destroy(error);
      },
    });
    if (attempt.state === "rejected") {
      reply(client, CONNECTION_REFUSED);
      client.end();
      return;
    }
    client.once("close", () => {
      attempt.cancel();
      upstream?.destroy();
    });
  }
}

function reply(client: net.Socket, code: number): void {
  if (client.destroyed) return;
  // Bound address 0.0.0.0:0: the probe never uses it.
  client.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
}

/** VER CMD RSV ATYP DST.ADDR DST.PORT; a number is a reply code to refuse with. */
function parseRequest(b: Buffer): { host: string; port: number } | number | "incomplete" {
  if (b.length < 5) return "incomplete";
  if (b[1] !== 1) return COMMAND_NOT_SUPPORTED;
  const atyp = b[3];
  let host: string;
  let end: number;
  if (atyp === 1) {
    end = 8;
    if (b.length < end + 2) return "incomplete";
    host = [...b.subarray(4, 8)].join(".");
  } else if (atyp === 4) {
    end = 20;
    if (b.length < end + 2) return "incomplete";
    const groups: string[] = [];
    for (let i = 4; i < 20; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    host = groups.join(":");
  } else if (atyp === 3) {
    const len = b[4] ?? 0;
    end = 5 + len;
    if (b.length < end + 2) return "incomplete";
    host = b.subarray(5, end).toString("latin1");
  } else {
    return ADDRESS_TYPE_NOT_SUPPORTED;
  }
  return { host: net.isIP(host) === 6 ? normalizeV6(host) : host, port: b.readUInt16BE(end) };
}

/** 0:0:0:0:0:0:0:1 → ::1, 0:…:ffff:7f00:1 → ::ffff:127.0.0.1, as the probe writes them. */
function normalizeV6(host: string): string {
  const words = host.split(":").map((w) => Number.parseInt(w, 16));
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    const [hi = 0, lo = 0] = words.slice(6);
    return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  if (words.slice(0, 7).every((w) => w === 0) && words[7] === 1) return "::1";
  return host;
}

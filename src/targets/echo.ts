import dgram from "node:dgram";
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import net from "node:net";
import { cannotListen, formatEndpoint, invalidOption, type SynlimitError } from "../errors.js";

export interface EchoServerOptions {
  /** An IP address (default 127.0.0.1); its family picks udp4 or udp6. */
  host?: string;
  /** Default 0: any free port. RFC 862's port 7 needs root or CAP_NET_BIND_SERVICE. */
  udpPort?: number;
  /** Also answer TCP echo (default false). */
  tcp?: boolean;
  /**
   * Default: the UDP port when it is free for TCP, else any free port. Only
   * with `tcp: true`.
   */
  tcpPort?: number;
  /** Concurrent TCP connections; extra ones are closed at once (default 256). */
  maxTcpConnections?: number;
  /** A TCP connection with no traffic for this long is destroyed; 0 never (default 30 000). */
  tcpIdleTimeoutMs?: number;
}

/** Published on `echoChannelNames.datagram` for every datagram received. */
export interface EchoDatagramEvent {
  from: { host: string; port: number };
  bytes: number;
  /** False when the loop guard dropped it instead of answering. */
  echoed: boolean;
}

export const echoChannelNames = { datagram: "synlimit:echo:datagram" } as const;

const datagramChannel = diagnostics.channel(echoChannelNames.datagram);

const DEFAULT_MAX_TCP_CONNECTIONS = 256;
const DEFAULT_TCP_IDLE_TIMEOUT_MS = 30_000;
// Larger values make Node's timers fire after 1 ms instead.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

// A reply to another small service would be answered in turn, and a spoofed
// source address makes two such services bounce one datagram forever (CERT
// CA-1996-01); inetd refuses the same ports. Port 0 cannot be replied to.
const LOOP_PORTS = new Set([0, 7, 13, 17, 19, 37]);

const noop = () => {};

/**
 * An RFC 862 echo responder: what a collector runs so an agent can learn it
 * is alive from one UDP round trip, before opening a TCP connection whose SYN
 * would sit unanswered if it were not. Optionally echoes over TCP too.
 */
export class EchoServer {
  readonly host: string;
  readonly udpPort: number;
  readonly tcpPort: number | null;
  /** Datagrams echoed. */
  datagrams = 0;
  /** Datagrams dropped by the loop guard. */
  droppedDatagrams = 0;
  /** TCP connections accepted. */
  tcpConnections = 0;
  /** TCP connections closed at once because `maxTcpConnections` were open. */
  droppedTcpConnections = 0;
  readonly #udp: dgram.Socket;
  readonly #tcp: net.Server | null;
  readonly #sockets = new Set<net.Socket>();
  #closed: Promise<void> | null = null;

  private constructor(udp: dgram.Socket, tcp: net.Server | null) {
    const { address, port } = udp.address();
    this.host = address;
    this.udpPort = port;
    this.tcpPort = tcp ? (tcp.address() as net.AddressInfo).port : null;
    this.#udp = udp;
    this.#tcp = tcp;
  }

  static async listen(options: EchoServerOptions = {}): Promise<EchoServer> {
    const o = validate(options);
    const udp = dgram.createSocket(net.isIPv6(o.host) ? "udp6" : "udp4");
    try {
      udp.bind(o.udpPort, o.host);
      await once(udp, "listening");
    } catch (error) {
      udp.close();
      throw listenFailed("udp", o.host, o.udpPort, error);
    }
    // Past bind, errors are per datagram (e.g. an ICMP unreachable surfacing
    // on send); none of them is a reason to stop answering the others.
    udp.on("error", noop);

    let tcp: net.Server | null = null;
    if (o.tcp) {
      const port = o.tcpPort ?? udp.address().port;
      try {
        tcp = await listenTcp(o.host, port).catch((error: NodeJS.ErrnoException) => {
          if (o.tcpPort === undefined && error.code === "EADDRINUSE") return listenTcp(o.host, 0);
          throw error;
        });
      } catch (error) {
        await new Promise<void>((resolve) => udp.close(resolve));
        throw listenFailed("tcp", o.host, port, error);
      }
    }

    const server = new EchoServer(udp, tcp);
    udp.on("message", (message, from) => server.#onDatagram(message, from));
    if (tcp) {
      tcp.maxConnections = o.maxTcpConnections;
      tcp.on("drop", () => server.droppedTcpConnections++);
      tcp.on("connection", (socket) => server.#onConnection(socket, o.tcpIdleTimeoutMs));
    }
    return server;
  }

  #onDatagram(message: Buffer, from: dgram.RemoteInfo): void {
    const echoed = !LOOP_PORTS.has(from.port) && from.port !== this.udpPort;
    if (echoed) this.datagrams++;
    else this.droppedDatagrams++;
    if (datagramChannel.hasSubscribers) {
      datagramChannel.publish({
        from: { host: from.address, port: from.port },
        bytes: message.length,
        echoed,
      } satisfies EchoDatagramEvent);
    }
    // The same buffer, to the sender only: a reply can never be larger than
    // the request, so the responder cannot amplify a spoofed one.
    if (echoed) this.#udp.send(message, from.port, from.address, noop);
  }

  #onConnection(socket: net.Socket, idleTimeoutMs: number): void {
    this.tcpConnections++;
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", noop);
    // A peer that stops reading would otherwise hold its slot forever.
    if (idleTimeoutMs > 0) socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    socket.pipe(socket);
  }

  /** Destroys every TCP connection and closes both listeners. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const socket of this.#sockets) socket.destroy();
      const tcp = this.#tcp;
      await Promise.all([
        new Promise<void>((resolve) => this.#udp.close(resolve)),
        tcp && new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    })();
    return this.#closed;
  }
}

interface ValidOptions {
  host: string;
  udpPort: number;
  tcp: boolean;
  tcpPort: number | undefined;
  maxTcpConnections: number;
  tcpIdleTimeoutMs: number;
}

function validate(options: EchoServerOptions): ValidOptions {
  if (typeof options !== "object" || options === null) {
    throw invalidOption("options", "an object", options);
  }
  const {
    host = "127.0.0.1",
    udpPort = 0,
    tcp = false,
    tcpPort,
    maxTcpConnections = DEFAULT_MAX_TCP_CONNECTIONS,
    tcpIdleTimeoutMs = DEFAULT_TCP_IDLE_TIMEOUT_MS,
  } = options;
  if (typeof host !== "string" || net.isIP(host) === 0) {
    throw invalidOption("host", "an IP address", host);
  }
  if (!isPort(udpPort)) throw invalidOption("udpPort", "an integer from 0 to 65535", udpPort);
  if (typeof tcp !== "boolean") throw invalidOption("tcp", "a boolean", tcp);
  if (tcpPort !== undefined) {
    if (!isPort(tcpPort)) throw invalidOption("tcpPort", "an integer from 0 to 65535", tcpPort);
    if (!tcp) throw invalidOption("tcp", "true when tcpPort is set", tcp);
  }
  if (!Number.isSafeInteger(maxTcpConnections) || maxTcpConnections < 1) {
    throw invalidOption("maxTcpConnections", "a positive integer", maxTcpConnections);
  }
  if (
    typeof tcpIdleTimeoutMs !== "number" ||
    !(tcpIdleTimeoutMs >= 0 && tcpIdleTimeoutMs <= MAX_TIMEOUT_MS)
  ) {
    throw invalidOption(
      "tcpIdleTimeoutMs",
      `a number from 0 to ${MAX_TIMEOUT_MS}`,
      tcpIdleTimeoutMs,
    );
  }
  return { host, udpPort, tcp, tcpPort, maxTcpConnections, tcpIdleTimeoutMs };
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65535;
}

async function listenTcp(host: string, port: number): Promise<net.Server> {
  // Half-open, so a client that ends its side still gets the rest of its echo.
  const server = net.createServer({ allowHalfOpen: true });
  server.listen({ host, port });
  try {
    await once(server, "listening");
    return server;
  } catch (error) {
    server.close();
    throw error;
  }
}

function listenFailed(
  protocol: "udp" | "tcp",
  host: string,
  port: number,
  cause: unknown,
): SynlimitError {
  return cannotListen("echo", `${protocol} ${formatEndpoint({ host, port })}`, cause);
}

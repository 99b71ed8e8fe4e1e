import { once } from "node:events";
import net from "node:net";
import { formatEndpoint, invalidOption } from "../errors.js";

export interface LiveListenerOptions {
  /** A local address (default 127.0.0.1). */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
}

/**
 * A loopback TCP listener that accepts at once: the incident's live web
 * server, and the other half of every test. Counts accepted connections and
 * closes them all on `close()`.
 */
export class LiveListener {
  readonly server: net.Server;
  readonly sockets = new Set<net.Socket>();
  accepted = 0;

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async listen(options: LiveListenerOptions = {}): Promise<LiveListener> {
    const host = options.host ?? "127.0.0.1";
    if (net.isIP(host) === 0) throw invalidOption("host", "an IP address", host);
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw invalidOption("port", "an integer from 0 to 65535", port);
    }
    const server = net.createServer();
    const live = new LiveListener(server);
    server.on("connection", (socket) => {
      live.accepted++;
      live.sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => live.sockets.delete(socket));
    });
    server.listen({ host, port });
    await once(server, "listening");
    const { address, port: boundPort } = server.address() as net.AddressInfo;
    live.host = address;
    live.port = boundPort;
    return live;
  }

  // Kept after close so reports can still name the address.
  host = "";
  port = 0;

  get address(): string {
    return formatEndpoint(this);
  }

  /** Resolves with the next accepted connection. */
  async nextConnection(): Promise<net.Socket> {
    const [socket] = (await once(this.server, "connection")) as [net.Socket];
    return socket;
  }

  ref(): this {
    this.server.ref();
    return this;
  }

  unref(): this {
    this.server.unref();
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (!this.server.listening) return;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

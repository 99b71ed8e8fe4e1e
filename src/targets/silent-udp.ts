import dgram from "node:dgram";
import { once } from "node:events";
import net from "node:net";
import { invalidOption } from "../errors.js";

/**
 * A bound UDP port that never answers: a dead collector's echo port, or one
 * behind a firewall that drops UDP. Bound, so the kernel sends no ICMP port
 * unreachable; counts what arrives so tests can see the preflight asked.
 */
export class SilentUdpPort {
  readonly socket: dgram.Socket;
  received = 0;
  /** Kept after close, so a test can aim at the port once nothing is bound there. */
  port = 0;

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
  }

  static async listen(options: { host?: string; port?: number } = {}): Promise<SilentUdpPort> {
    const host = options.host ?? "127.0.0.1";
    if (net.isIP(host) === 0) throw invalidOption("host", "an IP address", host);
    const socket = dgram.createSocket(net.isIPv6(host) ? "udp6" : "udp4");
    const silent = new SilentUdpPort(socket);
    socket.on("message", () => {
      silent.received++;
    });
    socket.bind(options.port ?? 0, host);
    await once(socket, "listening");
    silent.port = socket.address().port;
    return silent;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}

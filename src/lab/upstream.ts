import { once } from "node:events";
import http from "node:http";
import type net from "node:net";
import { Tarpit } from "../targets/tarpit.js";

/**
 * An HTTP API the app calls through a keep-alive pool. `die()` makes it go
 * dark the way a crashed host behind a firewall does: its connections are
 * reset, and new connects to its port stay in SYN_SENT (a tarpit takes over
 * the port).
 */
export class Upstream {
  readonly #server: http.Server;
  readonly #sockets = new Set<net.Socket>();
  #tarpit: Tarpit | null = null;
  port = 0;

  constructor() {
    this.#server = http.createServer((_req, res) => res.end("ok"));
    this.#server.keepAliveTimeout = 600_000;
    this.#server.on("connection", (s: net.Socket) => {
      this.#sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => this.#sockets.delete(s));
    });
  }

  async listen(): Promise<this> {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  get dead(): boolean {
    return this.#tarpit !== null;
  }

  async die(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.resetAndDestroy();
    await closed;
    this.#tarpit = await Tarpit.listen({ port: this.port, verify: false });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    if (this.#server.listening)
      await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#tarpit?.close();
  }
}

import net from "node:net";

/**
 * The incident's agent before the fix: a plain reconnect loop to its
 * collector. Every try is a TCP attempt that, against a dead collector,
 * sits in SYN_SENT until the OS gives up — holding the process's slot.
 */
export class NaiveAgent {
  readonly #sockets = new Set<net.Socket>();
  #stopped = false;
  attempts = 0;

  /**
   * @param channels independent reconnect loops, as an agent keeps one
   *   connection per kind of data (traces, metrics): with two, one is always
   *   pending and the other waiting in the limiter's line.
   */
  constructor(
    readonly host: string,
    readonly port: number,
    readonly channels = 1,
  ) {}

  start(): this {
    for (let i = 0; i < this.channels; i++) this.#connect();
    return this;
  }

  #connect(): void {
    if (this.#stopped) return;
    this.attempts++;
    const socket = net.connect(this.port, this.host);
    this.#sockets.add(socket);
    socket.on("error", () => {});
    socket.once("close", () => {
      this.#sockets.delete(socket);
      // Retry at once, as the field agent did: the next SYN follows the last failure.
      setImmediate(() => this.#connect());
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const s of this.#sockets) s.destroy();
  }
}

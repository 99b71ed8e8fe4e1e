import net from "node:net";

/**
 * The incident's agent before the fix: a plain reconnect loop to its
 * collector. Every try is a TCP attempt that, against a dead collector,
 * sits in SYN_SENT until the OS gives up — holding the process's slot.
 */
export class NaiveAgent {
  #socket: net.Socket | null = null;
  #stopped = false;
  attempts = 0;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {}

  start(): this {
    this.#connect();
    return this;
  }

  #connect(): void {
    if (this.#stopped) return;
    this.attempts++;
    const socket = net.connect(this.port, this.host);
    this.#socket = socket;
    socket.on("error", () => {});
    socket.once("close", () => {
      this.#socket = null;
      // Retry at once, as the field agent did: the next SYN follows the last failure.
      setImmediate(() => this.#connect());
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#socket?.destroy();
  }
}

import net from "node:net";

/**
 * The incident's agent before the fix: a plain reconnect loop to its
 * collector. Every try is a TCP attempt that, against a dead collector,
 * sits in SYN_SENT until the OS gives up — holding the process's slot.
 */
export class NaiveAgent {
  readonly #sockets = new Set<net.Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  attempts = 0;

  /**
   * @param channels independent reconnect loops (an agent may keep one
   *   connection per kind of data); with two, one attempt is always queued
   *   behind the pending one.
   * @param retryPauseMs wall milliseconds between a failed attempt and the next
   *   try of the same loop; 0 retries at once.
   */
  constructor(
    readonly host: string,
    readonly port: number,
    readonly channels = 1,
    readonly retryPauseMs = 0,
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
    socket.once("close", () => this.#sockets.delete(socket));
    // Retried from the failure's 'error' handler (not 'close', which Node runs in the
    // context the socket was made in): a recording links each retry to the failure
    // that caused it (docs/trace.md), as the lab's traces need for a faithful replay.
    socket.on("error", () => {
      if (this.#stopped) return;
      if (this.retryPauseMs === 0) {
        // The next SYN follows the last failure, after what is already queued.
        setImmediate(() => this.#connect());
        return;
      }
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#connect();
      }, this.retryPauseMs);
      this.#timers.add(timer);
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const s of this.#sockets) s.destroy();
  }
}

import diagnostics from "node:diagnostics_channel";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { install } from "../src/emulate/install.js";
import { channelNames } from "../src/gate/channels.js";
import type { AttemptEvent } from "../src/gate/types.js";
import { LiveListener } from "../src/targets/live.js";
import { Tarpit } from "../src/targets/tarpit.js";

export interface HandoffOptions {
  iterations: number;
  warmup: number;
}

export interface HandoffResult {
  options: HandoffOptions;
  /** destroy() of the pending socket → `synlimit:attempt:start` of the queued one, ms. */
  toSyn: number[];
  /** destroy() of the pending socket → 'connect' of the queued one, ms. */
  toConnect: number[];
}

const noop = () => {};
const WAIT_MS = 5_000;

/**
 * The incident's moment of release: one attempt sits in SYN_SENT holding the
 * only slot, another waits behind it; how soon after the first ends does the
 * second's SYN go out? Gate events are stamped with performance.now(), the
 * same clock as the destroy stamp, so the two subtract directly.
 */
export async function runHandoff(options: HandoffOptions): Promise<HandoffResult> {
  const result: HandoffResult = { options, toSyn: [], toConnect: [] };
  // Undone in reverse whatever happens, so a failed run leaves nothing open.
  const cleanup: Array<() => unknown> = [];
  try {
    // Fixtures first: their own setup connects must not queue behind the limit.
    const tarpit = await Tarpit.listen({ host: "127.0.0.1" });
    cleanup.push(() => tarpit.close());
    const live = await LiveListener.listen({ host: "127.0.0.1" });
    cleanup.push(() => live.close());
    const events = new EventLog();
    cleanup.push(() => events.close());
    const emulation = install({ profile: "incident", timing: "none" });
    cleanup.push(() => emulation.uninstall());

    for (let i = 0; i < options.warmup + options.iterations; i++) {
      const sample = await handoffOnce(tarpit.port, live.port, events);
      if (i < options.warmup) continue;
      result.toSyn.push(sample.toSyn);
      result.toConnect.push(sample.toConnect);
    }
    const { inFlight, queued } = emulation.gate.stats();
    if (inFlight !== 0 || queued !== 0) {
      throw new Error(`handoff: gate not idle after run (${inFlight} in flight, ${queued} queued)`);
    }
  } finally {
    for (const undo of cleanup.reverse()) await undo();
  }
  return result;
}

async function handoffOnce(tarpitPort: number, livePort: number, events: EventLog) {
  const pending = net.connect({ host: "127.0.0.1", port: tarpitPort });
  pending.on("error", noop);
  let queued: net.Socket | null = null;
  try {
    const pendingStart = await events.next("start", tarpitPort);
    queued = net.connect({ host: "127.0.0.1", port: livePort });
    const socket = queued;
    let connectedAt = 0;
    const connected = new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.once("connect", () => {
        connectedAt = performance.now();
        resolve();
      });
    });
    const waiting = await events.next("queued", livePort);
    if (!pending.connecting || pendingStart.id >= waiting.id) {
      throw new Error("handoff: the tarpit connect did not stay pending ahead of the live one");
    }
    const queuedStart = events.next("start", livePort);
    const destroyedAt = performance.now();
    pending.destroy();
    const syn = await queuedStart;
    await connected;
    if (syn.id !== waiting.id) throw new Error("handoff: a different attempt got the slot");
    return { toSyn: syn.at - destroyedAt, toConnect: connectedAt - destroyedAt };
  } finally {
    pending.destroy();
    queued?.destroy();
  }
}

type Kind = "start" | "queued";

/**
 * Buffers gate events so a wait set up after the event fired still sees it:
 * the live connect's start is published synchronously inside destroy().
 */
class EventLog {
  readonly #seen: Array<{ kind: Kind; event: AttemptEvent }> = [];
  readonly #waiters: Array<{ kind: Kind; port: number; resolve: (e: AttemptEvent) => void }> = [];
  readonly #handlers = {
    start: (message: unknown) => this.#push("start", message as AttemptEvent),
    queued: (message: unknown) => this.#push("queued", message as AttemptEvent),
  };

  constructor() {
    diagnostics.subscribe(channelNames.start, this.#handlers.start);
    diagnostics.subscribe(channelNames.queued, this.#handlers.queued);
  }

  next(kind: Kind, port: number): Promise<AttemptEvent> {
    const i = this.#seen.findIndex((s) => s.kind === kind && s.event.port === port);
    if (i >= 0) {
      const [found] = this.#seen.splice(i, 1);
      return Promise.resolve((found as { event: AttemptEvent }).event);
    }
    return new Promise((resolve, reject) => {
      // A missing event means the gate did not behave as the incident profile
      // promises; fail the run rather than hang it.
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`handoff: no ${kind} event for port ${port} within ${WAIT_MS} ms`));
      }, WAIT_MS);
      const waiter = {
        kind,
        port,
        resolve: (e: AttemptEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    diagnostics.unsubscribe(channelNames.start, this.#handlers.start);
    diagnostics.unsubscribe(channelNames.queued, this.#handlers.queued);
  }

  #push(kind: Kind, event: AttemptEvent): void {
    const i = this.#waiters.findIndex((w) => w.kind === kind && w.port === event.port);
    if (i >= 0) {
      const [waiter] = this.#waiters.splice(i, 1);
      waiter?.resolve(event);
    } else {
      this.#seen.push({ kind, event });
    }
  }
}

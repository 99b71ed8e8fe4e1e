import diagnostics from "node:diagnostics_channel";
import { channelNames } from "../../src/gate/channels.js";
import type { AttemptEvent, LimitReachedEvent } from "../../src/gate/types.js";

export type Recorded =
  | { channel: keyof typeof channelNames; event: AttemptEvent }
  | { channel: "limitReached"; event: LimitReachedEvent };

/** Records every synlimit gate event in publication order until `stop()`. */
export class EventRecorder {
  readonly events: Array<{
    channel: keyof typeof channelNames;
    event: AttemptEvent & LimitReachedEvent;
  }> = [];
  readonly #unsubscribers: Array<() => void> = [];
  readonly #waiters: Array<{
    match: (e: AttemptEvent, channel: string) => boolean;
    resolve: (e: AttemptEvent) => void;
  }> = [];

  constructor() {
    for (const [channel, name] of Object.entries(channelNames) as Array<
      [keyof typeof channelNames, string]
    >) {
      const fn = (message: unknown) => {
        const event = message as AttemptEvent & LimitReachedEvent;
        this.events.push({ channel, event });
        for (const w of [...this.#waiters]) {
          if (w.match(event, channel)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(event);
          }
        }
      };
      diagnostics.subscribe(name, fn);
      this.#unsubscribers.push(() => diagnostics.unsubscribe(name, fn));
    }
  }

  /** Resolves with the first event (already seen or future) on `channel` matching `where`. */
  next(
    channel: keyof typeof channelNames,
    where: (e: AttemptEvent) => boolean = () => true,
  ): Promise<AttemptEvent> {
    const seen = this.events.find((r) => r.channel === channel && where(r.event));
    if (seen) return Promise.resolve(seen.event);
    return new Promise((resolve) => {
      this.#waiters.push({ match: (e, c) => c === channel && where(e), resolve });
    });
  }

  of(channel: keyof typeof channelNames): AttemptEvent[] {
    return this.events.filter((r) => r.channel === channel).map((r) => r.event);
  }

  /** "channel:port" in order, for asserting sequences. */
  sequence(): string[] {
    return this.events.map((r) => `${r.channel}:${r.event.port ?? ""}`);
  }

  stop(): void {
    for (const u of this.#unsubscribers) u();
  }
}

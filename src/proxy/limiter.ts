import { type Clock, systemClock } from "../clock.js";
import type { AttemptGate } from "../gate/gate.js";
import type { LimitReachedEvent } from "../gate/types.js";
import { createGate, type LimitSettings, servesOwnersInTurn } from "./limits.js";
import type { GatedDial } from "./upstream.js";

interface Entry {
  readonly identity: string;
  readonly aliases: readonly string[];
  gate: AttemptGate;
  settings: LimitSettings;
  readonly dials: Set<GatedDial>;
  /** Clock time of the last dial's end (or start): idle rate gates go oldest first. */
  lastUsedAt: number;
}

export interface LimiterContext {
  readonly timeScale: number;
  readonly clock: Clock | undefined;
  /** An identity of this limiter hit its limit (Event 4226). */
  readonly onLimitReached?: (identity: string, event: LimitReachedEvent) => void;
}

// Gate names are unique in the process: two proxies' events never share one.
let nextLimiter = 1;

export interface IdentityStats {
  readonly identity: string;
  readonly inFlight: number;
  readonly queued: number;
}

/**
 * One gate per identity, so each identity has its own limit and profile and
 * the accounting of one never touches another's. When an identity's settings
 * change, its dials move to a new gate in their order (in flight first, then
 * the line); dials in flight over a lowered limit stop their SYN and wait
 * again, so the new limit holds at once.
 */
export class Limiter {
  #default: LimitSettings;
  readonly #overrides = new Map<string, LimitSettings>();
  readonly #entries = new Map<string, Entry>();
  readonly #initial: { default: LimitSettings; overrides: Map<string, LimitSettings> };
  readonly #instance = nextLimiter++;
  #serial = 0;
  #sweepAt = IDLE_ENTRIES_KEPT;
  readonly #ctx: LimiterContext;
  readonly #clock: Clock;

  constructor(
    defaults: LimitSettings,
    overrides: ReadonlyMap<string, LimitSettings>,
    ctx: LimiterContext,
  ) {
    this.#default = defaults;
    for (const [k, v] of overrides) this.#overrides.set(k, v);
    this.#initial = { default: defaults, overrides: new Map(overrides) };
    this.#ctx = ctx;
    this.#clock = ctx.clock ?? systemClock;
  }

  /** Identities with a gate now (in use, or idle and kept for reuse). */
  get size(): number {
    return this.#entries.size;
  }

  get defaultSettings(): LimitSettings {
    return this.#default;
  }

  get overrides(): ReadonlyMap<string, LimitSettings> {
    return this.#overrides;
  }

  settingsFor(identity: string, aliases: readonly string[] = []): LimitSettings {
    for (const k of [identity, ...aliases]) {
      const o = this.#overrides.get(k);
      if (o) return o;
    }
    return this.#default;
  }

  /**
   * Whether the identity's attempts wait in per-owner buckets served in
   * turn; asks without creating a gate (an identity whose requests are all
   * refused must not leave one behind).
   */
  servesOwnersInTurn(identity: string): boolean {
    const e = this.#entries.get(identity);
    if (e) return e.gate.options.fairness === "round-robin";
    return servesOwnersInTurn(this.settingsFor(identity));
  }

  /** The identity's current gate, created on first use. */
  gateOf(identity: string, aliases: readonly string[] = []): AttemptGate {
    return this.#entry(identity, aliases).gate;
  }

  track(dial: GatedDial, aliases: readonly string[] = []): void {
    this.#entry(dial.identity, aliases).dials.add(dial);
  }

  untrack(dial: GatedDial): void {
    const e = this.#entries.get(dial.identity);
    if (!e) return;
    e.dials.delete(dial);
    if (e.dials.size === 0 && e.gate.options.policy === "rate") e.lastUsedAt = this.#clock.now();
    this.#maybeForget(e);
  }

  /** Every dial not yet settled, in no particular order. */
  *dials(): Iterable<GatedDial> {
    for (const e of this.#entries.values()) yield* e.dials;
  }

  stats(): IdentityStats[] {
    const out: IdentityStats[] = [];
    for (const e of this.#entries.values()) {
      const s = e.gate.stats();
      if (s.inFlight > 0 || s.queued > 0)
        out.push({ identity: e.identity, inFlight: s.inFlight, queued: s.queued });
    }
    return out;
  }

  setDefault(settings: LimitSettings): void {
    this.#default = settings;
    for (const e of this.#entries.values()) this.#refresh(e);
  }

  setOverride(identity: string, settings: LimitSettings): void {
    this.#overrides.set(identity, settings);
    for (const e of this.#entries.values()) this.#refresh(e);
  }

  clearOverride(identity: string): boolean {
    const had = this.#overrides.delete(identity);
    if (had) for (const e of this.#entries.values()) this.#refresh(e);
    return had;
  }

  /** Back to the limits the proxy started with. */
  restore(): void {
    this.#default = this.#initial.default;
    this.#overrides.clear();
    for (const [k, v] of this.#initial.overrides) this.#overrides.set(k, v);
    for (const e of this.#entries.values()) this.#refresh(e);
  }

  #entry(identity: string, aliases: readonly string[]): Entry {
    let e = this.#entries.get(identity);
    if (!e) {
      const settings = this.settingsFor(identity, aliases);
      e = {
        identity,
        aliases,
        settings,
        gate: this.#newGate(settings, identity),
        dials: new Set(),
        lastUsedAt: 0,
      };
      this.#entries.set(identity, e);
    }
    return e;
  }

  #newGate(settings: LimitSettings, identity: string): AttemptGate {
    const report = this.#ctx.onLimitReached;
    return createGate(settings, identity, `${this.#instance}.${++this.#serial}`, {
      timeScale: this.#ctx.timeScale,
      clock: this.#ctx.clock,
      ...(report ? { onLimitReached: (event) => report(identity, event) } : {}),
    });
  }

  #refresh(e: Entry): void {
    const settings = this.settingsFor(e.identity, e.aliases);
    if (settings === e.settings) return;
    e.settings = settings;
    e.gate = this.#newGate(settings, e.identity);
    const started = (d: GatedDial) => d.attempt?.startedAt ?? Number.POSITIVE_INFINITY;
    const moving = [...e.dials]
      .filter((d) => !d.done && d.attempt !== null)
      .sort((a, b) => started(a) - started(b) || (a.attempt?.id ?? 0) - (b.attempt?.id ?? 0));
    // Leave the old line first, so releasing old slots starts nothing there.
    for (const d of [...moving].reverse()) d._detach();
    for (const d of moving) d._reattach();
    this.#maybeForget(e);
  }

  #maybeForget(e: Entry): void {
    // An idle entry is kept: most identities dial again soon, and a new gate
    // per dial would cost every setup. Past the mark the idle ones go; rate
    // gates, which remember recent destinations, go once idle for a while,
    // or oldest first when too many are idle at once. The next sweep waits
    // until the map has doubled, so sweeps stay amortized O(1) even when
    // what is left cannot go.
    if (e.dials.size > 0 || this.#entries.size <= this.#sweepAt) return;
    const now = this.#clock.now();
    const idleRate: Entry[] = [];
    for (const x of this.#entries.values()) {
      if (x.dials.size > 0) continue;
      if (
        x.gate.options.policy !== "rate" ||
        now - x.lastUsedAt >= RATE_IDLE_MS * this.#ctx.timeScale
      ) {
        this.#entries.delete(x.identity);
      } else {
        idleRate.push(x);
      }
    }
    if (idleRate.length > IDLE_ENTRIES_KEPT) {
      idleRate.sort((a, b) => a.lastUsedAt - b.lastUsedAt);
      for (const x of idleRate.slice(0, idleRate.length - IDLE_ENTRIES_KEPT)) {
        this.#entries.delete(x.identity);
      }
    }
    this.#sweepAt = Math.max(IDLE_ENTRIES_KEPT, 2 * this.#entries.size);
  }
}

/** Identities whose idle gate is kept (process identities come and go with pids). */
const IDLE_ENTRIES_KEPT = 1024;
/**
 * An idle rate gate's working set is forgotten after this (unscaled): a
 * minute without a connect, and the identity's next new destination waits
 * at most one release tick, as after a restart.
 */
const RATE_IDLE_MS = 60_000;

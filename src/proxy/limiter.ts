import type { Clock } from "../clock.js";
import type { AttemptGate } from "../gate/gate.js";
import { createGate, type LimitSettings } from "./limits.js";
import type { GatedDial } from "./upstream.js";

interface Entry {
  readonly identity: string;
  readonly aliases: readonly string[];
  gate: AttemptGate;
  settings: LimitSettings;
  readonly dials: Set<GatedDial>;
}

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
  /** Gate name → identity, to attribute the gate's limit events. */
  readonly gateNames = new Map<string, string>();
  readonly #initial: { default: LimitSettings; overrides: Map<string, LimitSettings> };
  #serial = 0;
  #sweepAt = IDLE_ENTRIES_KEPT;
  readonly #ctx: { timeScale: number; clock: Clock | undefined };

  constructor(
    defaults: LimitSettings,
    overrides: ReadonlyMap<string, LimitSettings>,
    ctx: { timeScale: number; clock: Clock | undefined },
  ) {
    this.#default = defaults;
    for (const [k, v] of overrides) this.#overrides.set(k, v);
    this.#initial = { default: defaults, overrides: new Map(overrides) };
    this.#ctx = ctx;
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
      };
      this.#entries.set(identity, e);
    }
    return e;
  }

  #newGate(settings: LimitSettings, identity: string): AttemptGate {
    const gate = createGate(settings, identity, ++this.#serial, this.#ctx);
    this.gateNames.set(gate.options.name, identity);
    return gate;
  }

  #refresh(e: Entry): void {
    const settings = this.settingsFor(e.identity, e.aliases);
    if (settings === e.settings) return;
    const old = e.gate;
    e.settings = settings;
    e.gate = this.#newGate(settings, e.identity);
    const started = (d: GatedDial) => d.attempt?.startedAt ?? Number.POSITIVE_INFINITY;
    const moving = [...e.dials]
      .filter((d) => !d.done && d.attempt !== null)
      .sort((a, b) => started(a) - started(b) || (a.attempt?.id ?? 0) - (b.attempt?.id ?? 0));
    // Leave the old line first, so releasing old slots starts nothing there.
    for (const d of [...moving].reverse()) d._detach();
    for (const d of moving) d._reattach();
    this.gateNames.delete(old.options.name);
    this.#maybeForget(e);
  }

  #maybeForget(e: Entry): void {
    // An idle entry is kept: most identities dial again soon, and a new gate
    // per dial would cost every setup. Past the mark the idle ones go, but
    // for rate gates, which remember recent destinations; the next sweep
    // waits until the map has doubled, so sweeps stay amortized O(1) even
    // when what is left cannot go.
    if (e.dials.size > 0 || this.#entries.size <= this.#sweepAt) return;
    for (const x of this.#entries.values()) {
      if (x.dials.size === 0 && x.gate.options.policy !== "rate") {
        this.#entries.delete(x.identity);
        this.gateNames.delete(x.gate.options.name);
      }
    }
    this.#sweepAt = Math.max(IDLE_ENTRIES_KEPT, 2 * this.#entries.size);
  }
}

/** Identities whose idle gate is kept (process identities come and go with pids). */
const IDLE_ENTRIES_KEPT = 1024;

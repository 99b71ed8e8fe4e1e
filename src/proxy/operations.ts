import type { Clock } from "../clock.js";
import { invalidOption } from "../errors.js";
import { proxyChannels, publish } from "./channels.js";
import type { DialPipeline } from "./dial.js";
import type { IdentityKind } from "./identity.js";
import type { Limiter } from "./limiter.js";
import { type LimitSettings, settingsToJson, validateSettings } from "./limits.js";
import { identityNameExpected, isIdentityName } from "./options.js";

export interface AttemptInfo {
  readonly id: number;
  readonly identity: string;
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly state: "queued" | "pending";
  readonly waitMs: number;
  readonly pendingMs: number;
  readonly client: string;
  readonly protocol: string;
}

export interface ProxyStats {
  readonly clients: number;
  readonly tunnels: number;
  readonly dialing: number;
  readonly inFlight: number;
  readonly queued: number;
  readonly identities: ReadonlyArray<{ identity: string; inFlight: number; queued: number }>;
}

export interface LimitsJson {
  default: Record<string, unknown>;
  identities: Record<string, Record<string, unknown>>;
}

/** What the admin API serves and changes: the proxy, as the admin API sees it. */
export interface AdminTarget {
  readonly address: string;
  readonly identityKind: IdentityKind;
  readonly timeScale: number;
  readonly authenticated: boolean;
  readonly acl: { allow: string[]; deny: string[] };
  readonly metricsContentType: string;
  limits(): LimitsJson;
  setLimits(identity: string, settings: LimitSettings): void;
  clearLimits(identity: string): boolean;
  attempts(): AttemptInfo[];
  cancelAttempt(id: number): boolean;
  reset(): { cancelled: number };
  stats(): ProxyStats;
  metrics(): Promise<string>;
}

/** The operator's operations on limits and attempts (the admin API and the library API). */
export class ProxyOperations {
  readonly #limiter: Limiter;
  readonly #pipeline: DialPipeline;
  readonly #clock: Clock;

  constructor(limiter: Limiter, pipeline: DialPipeline, clock: Clock) {
    this.#limiter = limiter;
    this.#pipeline = pipeline;
    this.#clock = clock;
  }

  limits(): LimitsJson {
    // Built from entries: an identity is never a key of a plain object's prototype chain.
    const identities = Object.fromEntries(
      [...this.#limiter.overrides].map(([k, v]) => [k, settingsToJson(v)]),
    );
    return { default: settingsToJson(this.#limiter.defaultSettings), identities };
  }

  setLimits(identity: string, settings: LimitSettings): void {
    if (identity !== "default" && !isIdentityName(identity))
      throw invalidOption("identity", `"default", ${identityNameExpected}`, identity);
    const s = validateSettings(settings, "settings");
    if (identity === "default") this.#limiter.setDefault(s);
    else this.#limiter.setOverride(identity, s);
    publish(proxyChannels.limits, () => ({ identity, settings: settingsToJson(s) }));
  }

  clearLimits(identity: string): boolean {
    if (!isIdentityName(identity)) return false;
    const had = this.#limiter.clearOverride(identity);
    if (had) publish(proxyChannels.limits, () => ({ identity, settings: null }));
    return had;
  }

  attempts(): AttemptInfo[] {
    const now = this.#clock.now();
    const out: AttemptInfo[] = [];
    for (const d of this.#limiter.dials()) {
      if (d.done) continue;
      const a = d.attempt;
      const state = d.state === "pending" ? "pending" : "queued";
      const conn = this.#pipeline.clients.get(d);
      out.push({
        id: d.id,
        identity: d.identity,
        host: d.requested,
        address: d.address,
        port: d.port,
        state,
        waitMs: (a?.startedAt ?? now) - d.requestedAt,
        pendingMs: state === "pending" && a?.startedAt != null ? now - a.startedAt : 0,
        client: conn?.remote ?? "",
        protocol: conn?.protocol ?? "",
      });
    }
    return out.sort((x, y) => x.id - y.id);
  }

  cancelAttempt(id: number): boolean {
    for (const d of this.#limiter.dials()) {
      if (d.id === id && !d.done) {
        d.cancel("reset");
        return true;
      }
    }
    return false;
  }

  reset(): { cancelled: number } {
    const dials = [...this.#limiter.dials()].filter((d) => !d.done);
    // Waiting ones first, so ending those in flight starts nothing.
    dials.sort((a, b) => (a.state === "queued" ? 0 : 1) - (b.state === "queued" ? 0 : 1));
    for (const d of dials) d.cancel("reset");
    this.#limiter.restore();
    publish(proxyChannels.limits, () => ({ identity: "*", settings: "restored" }));
    return { cancelled: dials.length };
  }

  stats(clients: number, tunnels: number): ProxyStats {
    const identities = this.#limiter.stats();
    let inFlight = 0;
    let queued = 0;
    for (const s of identities) {
      inFlight += s.inFlight;
      queued += s.queued;
    }
    return {
      clients,
      tunnels,
      dialing: this.#pipeline.clients.size,
      inFlight,
      queued,
      identities,
    };
  }
}

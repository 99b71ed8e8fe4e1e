import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { IdentityStats } from "./limiter.js";

export interface MetricsSource {
  identities(): IdentityStats[];
  clients(): number;
  tunnels(): number;
}

/**
 * Why a client was closed during its handshake: the `reason` label of
 * synlimit_gate_client_errors_total. Set where the error is found, so a
 * reworded message never moves a count to another label.
 */
export type ClientErrorCode = "auth" | "deadline" | "too-large" | "malformed" | "max-clients";

/**
 * The proxy's Prometheus metrics, in a registry of its own so several
 * proxies (and the host application's metrics) never collide.
 */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly attempts: Counter<"outcome">;
  readonly waitSeconds: Histogram;
  readonly limitReached: Counter<"identity">;
  readonly clientErrors: Counter<"reason">;

  /** A client closed during its handshake. */
  countClientError(code: ClientErrorCode): void {
    this.clientErrors.inc({ reason: code });
  }
  readonly #attemptCounts = new Map<string, number>();

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    new Gauge({
      name: "synlimit_gate_attempts_in_flight",
      help: "Connect attempts holding a slot (SYN sent, not yet connected, failed or timed out), per identity",
      labelNames: ["identity"],
      registers,
      collect() {
        this.reset();
        for (const s of source.identities()) this.set({ identity: s.identity }, s.inFlight);
      },
    });
    new Gauge({
      name: "synlimit_gate_attempts_queued",
      help: "Connect attempts waiting for a slot, per identity",
      labelNames: ["identity"],
      registers,
      collect() {
        this.reset();
        for (const s of source.identities()) this.set({ identity: s.identity }, s.queued);
      },
    });
    new Gauge({
      name: "synlimit_gate_clients",
      help: "Client connections open on the proxy",
      registers,
      collect() {
        this.set(source.clients());
      },
    });
    new Gauge({
      name: "synlimit_gate_tunnels",
      help: "Established tunnels (connected upstream, piping bytes)",
      registers,
      collect() {
        this.set(source.tunnels());
      },
    });
    const attemptCounts = this.#attemptCounts;
    this.attempts = new Counter({
      name: "synlimit_gate_attempts_total",
      help: "Upstream connect attempts by outcome",
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const [outcome, n] of attemptCounts) this.inc({ outcome }, n);
      },
    });
    this.waitSeconds = new Histogram({
      name: "synlimit_gate_attempt_wait_seconds",
      help: "Time an attempt waited in line for a slot before its SYN went out",
      // Up to Windows' 21 s and Linux's 127 s connect timeouts: a wait is one pending attempt long.
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 21, 42, 127],
      registers,
    });
    this.limitReached = new Counter({
      name: "synlimit_gate_limit_reached_total",
      help: "Times an identity hit its limit (Event 4226), once per congestion episode",
      labelNames: ["identity"],
      registers,
    });
    this.clientErrors = new Counter({
      name: "synlimit_gate_client_errors_total",
      help: "Clients closed during the handshake, by reason",
      labelNames: ["reason"],
      registers,
    });
  }

  /** One attempt ended: counted here, handed to prom-client at a scrape (not on every setup). */
  countAttempt(outcome: string): void {
    this.#attemptCounts.set(outcome, (this.#attemptCounts.get(outcome) ?? 0) + 1);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

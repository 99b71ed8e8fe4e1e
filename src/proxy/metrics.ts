import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { IdentityStats } from "./limiter.js";

export interface MetricsSource {
  identities(): IdentityStats[];
  clients(): number;
  tunnels(): number;
}

/** Distinct identity label values a metric may carry; the rest are counted as `other`. */
export const MAX_IDENTITY_LABELS = 200;

/**
 * Which label an identity is counted under: a process by its executable
 * (pids come and go; a label per pid would grow without end).
 */
export function identityLabel(identity: string): string {
  if (identity.startsWith("process:")) {
    const exeAt = identity.indexOf(":", "process:".length);
    if (exeAt > 0) return `exe:${identity.slice(exeAt + 1)}`;
  }
  return identity;
}

/**
 * Why a client was closed during its handshake: the `reason` label of
 * synlimit_gate_client_errors_total. Set where the error is found, so a
 * reworded message never moves a count to another label.
 */
export type ClientErrorCode =
  | "auth"
  | "deadline"
  | "too-large"
  | "malformed"
  | "max-clients"
  | "peer-unknown";

/**
 * The proxy's Prometheus metrics, in a registry of its own so several
 * proxies (and the host application's metrics) never collide. Every label
 * set is bounded: identities by executable and at most
 * {@link MAX_IDENTITY_LABELS} of them, reasons and outcomes by code.
 */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly attempts: Counter<"outcome">;
  readonly waitSeconds: Histogram;
  readonly #limitReached: Counter<"identity">;
  readonly #clientErrors: Counter<"reason">;
  readonly #fdRefusals: Counter<"reason">;

  /** A client closed during its handshake. */
  countClientError(code: ClientErrorCode): void {
    this.#clientErrors.inc({ reason: code });
  }
  readonly #attemptCounts = new Map<string, number>();
  readonly #labels = new Set<string>();

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    const byLabel = (pick: (s: IdentityStats) => number): Map<string, number> => {
      const out = new Map<string, number>();
      for (const s of source.identities()) {
        const label = this.label(s.identity);
        out.set(label, (out.get(label) ?? 0) + pick(s));
      }
      return out;
    };
    new Gauge({
      name: "synlimit_gate_attempts_in_flight",
      help: "Connect attempts holding a slot (SYN sent, not yet connected, failed or timed out), per identity (processes by executable)",
      labelNames: ["identity"],
      registers,
      collect() {
        this.reset();
        for (const [identity, n] of byLabel((s) => s.inFlight)) this.set({ identity }, n);
      },
    });
    new Gauge({
      name: "synlimit_gate_attempts_queued",
      help: "Connect attempts waiting for a slot, per identity (processes by executable)",
      labelNames: ["identity"],
      registers,
      collect() {
        this.reset();
        for (const [identity, n] of byLabel((s) => s.queued)) this.set({ identity }, n);
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
    this.#limitReached = new Counter({
      name: "synlimit_gate_limit_reached_total",
      help: "Times an identity hit its limit (Event 4226), once per congestion episode (processes by executable)",
      labelNames: ["identity"],
      registers,
    });
    this.#clientErrors = new Counter({
      name: "synlimit_gate_client_errors_total",
      help: "Clients closed during the handshake, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.#fdRefusals = new Counter({
      name: "synlimit_gate_fd_limit_refusals_total",
      help: "Clients refused near the file descriptor limit: told to try later, dropped at accept, or lost to a failed accept",
      labelNames: ["reason"],
      registers,
    });
  }

  /** The label an identity is counted under; new ones past the bound become `other`. */
  label(identity: string): string {
    const label = identityLabel(identity);
    if (this.#labels.has(label)) return label;
    if (this.#labels.size >= MAX_IDENTITY_LABELS) return "other";
    this.#labels.add(label);
    return label;
  }

  /** One attempt ended: counted here, handed to prom-client at a scrape (not on every setup). */
  countAttempt(outcome: string): void {
    this.#attemptCounts.set(outcome, (this.#attemptCounts.get(outcome) ?? 0) + 1);
  }

  limitReached(identity: string): void {
    this.#limitReached.inc({ identity: this.label(identity) });
  }

  fdRefusal(reason: "try-later" | "dropped" | "accept-failed"): void {
    this.#fdRefusals.inc({ reason });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

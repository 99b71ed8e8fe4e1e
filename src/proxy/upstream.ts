import dns from "node:dns";
import net from "node:net";
import type { Clock } from "../clock.js";
import type { Attempt, AttemptGate } from "../gate/gate.js";
import { type Acl, type CanonicalHost, canonicalHost, isLoopback, isUnspecified } from "./acl.js";

/** Why a dial did not produce a connected upstream socket. */
export type FailureKind =
  | "denied"
  | "invalid-host"
  | "refused"
  | "rejected"
  | "host-unreachable"
  | "network-unreachable"
  | "timeout"
  | "failed"
  | "cancelled"
  | "reset"
  | "overloaded";

export type DialOutcome =
  | { readonly ok: true; readonly socket: net.Socket; readonly address: string }
  | {
      readonly ok: false;
      readonly kind: FailureKind;
      readonly error?: unknown;
      readonly rule?: string;
    };

export type Lookup = (hostname: string) => Promise<string[]>;

/** getaddrinfo, every address, in the resolver's order. */
export const systemLookup: Lookup = async (hostname) =>
  (await dns.promises.lookup(hostname, { all: true, verbatim: true })).map((a) => a.address);

export interface ResolveContext {
  readonly acl: Acl;
  readonly lookup: Lookup;
  /** The proxy's own listening ports: never a destination on this host (no loops, no admin access). */
  readonly selfPorts: ReadonlySet<number>;
  /** Canonical addresses of this host's interfaces. */
  readonly localAddresses: ReadonlySet<string>;
}

export type Resolved =
  | { readonly ok: true; readonly addresses: string[]; readonly host: CanonicalHost }
  | {
      readonly ok: false;
      readonly kind: FailureKind;
      readonly rule?: string;
      readonly error?: unknown;
    };

function isSelf(ctx: ResolveContext, host: CanonicalHost, port: number): boolean {
  if (!ctx.selfPorts.has(port)) return false;
  return isLoopback(host) || (host.kind !== "name" && ctx.localAddresses.has(host.address));
}

/**
 * Turns what the client asked for into addresses it may reach: the name is
 * checked as requested, resolved, and every address checked again, so a DNS
 * answer pointing at a denied network is refused like its literal spelling.
 * A literal address is answered at once; only a name returns a promise.
 */
export function resolveDestination(
  ctx: ResolveContext,
  requested: string,
  port: number,
): Resolved | Promise<Resolved> {
  const host = canonicalHost(requested);
  if (!host) return { ok: false, kind: "invalid-host" };
  if (isUnspecified(host)) return { ok: false, kind: "denied", rule: "unspecified address" };
  if (isSelf(ctx, host, port)) return { ok: false, kind: "denied", rule: "the proxy itself" };
  const first = ctx.acl.checkRequested(host);
  if (!first.allowed) return { ok: false, kind: "denied", rule: first.rule };
  if (host.kind !== "name") return checkAddresses(ctx, host, port, [host.address]);
  return ctx.lookup(host.name).then(
    (candidates) => checkAddresses(ctx, host, port, candidates),
    (error): Resolved => ({ ok: false, kind: "host-unreachable", error }),
  );
}

function checkAddresses(
  ctx: ResolveContext,
  host: CanonicalHost,
  port: number,
  candidates: readonly string[],
): Resolved {
  const addresses: string[] = [];
  let refusal: string | undefined;
  for (const a of candidates) {
    const c = canonicalHost(a);
    if (!c || c.kind === "name") continue;
    if (isUnspecified(c)) refusal = "unspecified address";
    else if (isSelf(ctx, c, port)) refusal = "the proxy itself";
    else {
      const v = ctx.acl.checkResolved(host, c);
      if (v.allowed) addresses.push(c.address);
      else refusal = v.rule;
    }
  }
  if (addresses.length === 0) {
    return refusal
      ? { ok: false, kind: "denied", rule: refusal }
      : { ok: false, kind: "host-unreachable" };
  }
  return { ok: true, addresses, host };
}

export function classify(error: unknown): FailureKind {
  const e = error as { code?: string; reason?: string } | null;
  switch (e?.code) {
    case "ECONNREFUSED":
      return e.reason === "SYNLIMIT_ATTEMPT_REJECTED" ? "rejected" : "refused";
    case "EHOSTUNREACH":
    case "EHOSTDOWN":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_FAIL":
    case "EAI_NONAME":
      return "host-unreachable";
    case "ENETUNREACH":
    case "ENETDOWN":
    case "EADDRNOTAVAIL":
      return "network-unreachable";
    case "ETIMEDOUT":
      return "timeout";
    default:
      return "failed";
  }
}

// Failures after which the next address of the name is worth a try, as a
// resolver-aware client would; a timeout already cost the client its wait.
const tryNext: ReadonlySet<FailureKind> = new Set([
  "refused",
  "host-unreachable",
  "network-unreachable",
]);

let nextDialId = 1;

export interface DialInit {
  readonly identity: string;
  /** The host as the client asked for it (for display). */
  readonly requested: string;
  readonly port: number;
  /** Whose bucket the attempt waits in when the gate serves owners in turn (a process). */
  readonly owner: string;
  readonly addresses: readonly string[];
  /** The identity's gate now: it may change while the dial waits. */
  readonly gateOf: () => AttemptGate;
  readonly clock: Clock;
  readonly onStarted?: (dial: GatedDial, waitMs: number) => void;
  /** The dial's one outcome; it may come before `begin()` returns (a refusal). */
  readonly onDone: (outcome: DialOutcome) => void;
}

/**
 * The gated dial: one upstream connect whose attempt holds a slot of the
 * identity's gate from the SYN until connected, failed, timed out or
 * cancelled. Every way out ends the kernel's attempt (the socket) before the
 * slot passes on, and reports to the gate exactly once.
 */
export class GatedDial {
  readonly id = nextDialId++;
  readonly identity: string;
  readonly requested: string;
  readonly port: number;
  readonly requestedAt: number;
  #addresses: readonly string[];
  #index = 0;
  #attempt: Attempt | null = null;
  #socket: net.Socket | null = null;
  #done = false;
  #started = false;
  readonly #init: DialInit;

  constructor(init: DialInit) {
    this.#init = init;
    this.identity = init.identity;
    this.requested = init.requested;
    this.port = init.port;
    this.#addresses = init.addresses;
    this.requestedAt = init.clock.now();
  }

  /** Asks the identity's gate for a slot; the SYN goes out when it is granted. */
  begin(): this {
    this.#request(this.#init.gateOf());
    return this;
  }

  get done(): boolean {
    return this.#done;
  }

  /** The address being (or to be) dialled. */
  get address(): string {
    return this.#addresses[this.#index] ?? "";
  }

  get state(): "queued" | "pending" | "done" {
    if (this.#done) return "done";
    return this.#attempt?.state === "pending" ? "pending" : "queued";
  }

  get attempt(): Attempt | null {
    return this.#attempt;
  }

  /** The client went away, or the operator ended the attempt. */
  cancel(kind: "cancelled" | "reset" = "cancelled"): void {
    if (this.#done) return;
    this.#abortSocket();
    this.#attempt?.cancel();
    this.#finish({ ok: false, kind });
  }

  /** @internal the limiter moves this dial to the identity's new gate: first leave the old one… */
  _detach(): void {
    const a = this.#attempt;
    this.#attempt = null;
    a?.cancel();
  }

  /** @internal …then line up in the new one, keeping a dial in progress if it may go on. */
  _reattach(): void {
    if (this.#done) return;
    this.#request(this.#init.gateOf());
  }

  #request(gate: AttemptGate): void {
    const host = this.address;
    const attempt = gate.request(
      { host, port: this.port },
      {
        onStart: (a) => this.#onStart(a),
        onTimeout: (a, error) => this.#onTimeout(a, error),
      },
      this.#init.owner,
    );
    if (this.#done) return;
    this.#attempt = attempt;
    if (attempt.state === "rejected") {
      this.#abortSocket();
      this.#finish({ ok: false, kind: "rejected", error: attempt.error });
    } else if (attempt.state === "queued" && this.#socket) {
      // A lowered limit put this dial back in line: its SYN must stop too.
      this.#abortSocket();
    }
  }

  #onStart(a: Attempt): void {
    if (this.#done) {
      a.cancel();
      return;
    }
    this.#attempt = a;
    if (!this.#started) {
      this.#started = true;
      this.#init.onStarted?.(this, (a.startedAt ?? this.requestedAt) - this.requestedAt);
    }
    if (this.#socket) return; // carried over from the previous gate, still dialling
    // allowHalfOpen: a server that finishes sending first (FIN) may still
    // read what the client sends after; the tunnel passes the half-close on.
    const socket = net.connect({
      host: this.address,
      port: this.port,
      noDelay: true,
      allowHalfOpen: true,
    });
    this.#socket = socket;
    socket.on("error", (error) => this.#onSocketError(socket, error));
    // `on`: 'connect' comes once, and once() wraps the listener on every setup.
    socket.on("connect", () => this.#onConnect(socket));
  }

  #onConnect(socket: net.Socket): void {
    if (socket !== this.#socket || this.#done) return;
    this.#socket = null;
    // The error listener stays: from here it only destroys the socket (the
    // tunnel adds its own), and removing it would cost every setup.
    this.#attempt?.connected();
    this.#finish({ ok: true, socket, address: this.address });
  }

  #onSocketError(socket: net.Socket, error: Error): void {
    socket.destroy();
    if (socket !== this.#socket || this.#done) return;
    this.#socket = null;
    const kind = classify(error);
    const attempt = this.#attempt;
    this.#attempt = null;
    if (tryNext.has(kind) && this.#index + 1 < this.#addresses.length) {
      attempt?.failed(error);
      this.#index++;
      if (!this.#done) this.#request(this.#init.gateOf());
      return;
    }
    // Settle before the slot passes on, so the client hears first.
    this.#finish({ ok: false, kind, error });
    attempt?.failed(error);
  }

  #onTimeout(a: Attempt, error: unknown): void {
    if (a !== this.#attempt) return;
    this.#abortSocket();
    this.#finish({ ok: false, kind: "timeout", error });
  }

  #abortSocket(): void {
    const s = this.#socket;
    this.#socket = null;
    s?.destroy();
  }

  #finish(outcome: DialOutcome): void {
    if (this.#done) {
      if (outcome.ok) outcome.socket.destroy();
      return;
    }
    this.#done = true;
    this.#init.onDone(outcome);
  }
}

import type { Clock } from "../clock.js";
import { proxyChannels, publish } from "./channels.js";
import type { ClientRequest, Connection, DialCancel } from "./connection.js";
import {
  exeIdentity,
  type IdentityKind,
  type ProcessInfo,
  ProcessResolver,
  processIdentity,
  sourceIdentity,
  userIdentity,
} from "./identity.js";
import type { Limiter } from "./limiter.js";
import type { ProxyMetrics } from "./metrics.js";
import {
  type DialOutcome,
  GatedDial,
  type ResolveContext,
  type Resolved,
  resolveDestination,
} from "./upstream.js";

export interface Who {
  readonly identity: string;
  readonly aliases: readonly string[];
  /**
   * Whose bucket an attempt waits in under round-robin fairness (winxp-sp2:
   * per-process FIFO buckets served in turn): the client's process when it
   * is known, else the identity.
   */
  readonly owner: string;
}

const globalWho: Who = { identity: "global", aliases: [], owner: "global" };

export interface DialPipelineInit {
  readonly identity: IdentityKind;
  readonly limiter: Limiter;
  readonly metrics: ProxyMetrics;
  readonly clock: Clock;
  /** False when the proxy is near its descriptor limit: the request is answered "try later". */
  readonly mayDial: () => boolean;
}

/**
 * From a client's request to a connected upstream socket: who the client is
 * (its identity), where it may go (the ACL, resolution), and the gated dial
 * that holds one of its identity's slots from the SYN until the outcome.
 * Callbacks, not promises: every setup takes this path, and where the
 * identity and the address are at hand it runs to the SYN in one go.
 */
export class DialPipeline {
  readonly #init: DialPipelineInit;
  readonly #resolver = new ProcessResolver();
  readonly #processOf = new WeakMap<Connection, Promise<ProcessInfo | null>>();
  /** Every dial not yet settled, with its client. */
  readonly clients = new Map<GatedDial, Connection>();
  /** Dials past their first SYN and not yet settled: each holds (or held) an upstream socket. */
  upstreams = 0;
  /** Set once the proxy listens (the ACL needs its own ports). */
  context: ResolveContext | null = null;

  constructor(init: DialPipelineInit) {
    this.#init = init;
  }

  /** A client was accepted: a process identity is looked up while it shakes hands. */
  accepted(conn: Connection): void {
    const kind = this.#init.identity;
    if (kind === "process" || kind === "exe") {
      this.#processOf.set(conn, this.#resolver.lookup(conn));
    }
  }

  // Synchronous where the answer is at hand: a promise (and a turn of the
  // microtask queue) only for the /proc lookup.
  #identify(conn: Connection, request: ClientRequest): Who | Promise<Who> {
    let who: Who;
    switch (this.#init.identity) {
      case "global":
        who = globalWho;
        break;
      case "user": {
        const identity = userIdentity(request.username);
        who = { identity, aliases: [], owner: identity };
        break;
      }
      case "source": {
        const identity = sourceIdentity(conn.remoteAddress);
        who = { identity, aliases: [], owner: identity };
        break;
      }
      default:
        return (this.#processOf.get(conn) ?? Promise.resolve(null)).then((info): Who => {
          // A remote client, or one gone before it was seen: its address stands in.
          if (!info) {
            const identity = sourceIdentity(conn.remoteAddress);
            return { identity, aliases: [], owner: identity };
          }
          const owner = processIdentity(info);
          if (this.#init.identity === "exe")
            return { identity: exeIdentity(info), aliases: [], owner };
          return { identity: owner, aliases: [exeIdentity(info)], owner };
        });
    }
    // Only a gate that serves owners in turn needs to know the client's
    // process: other identities skip the /proc lookup on every setup.
    if (!this.#init.limiter.servesOwnersInTurn(who.identity)) return who;
    return this.#resolver
      .lookup(conn)
      .then((info): Who => (info ? { ...who, owner: processIdentity(info) } : who));
  }

  dial(
    conn: Connection,
    request: ClientRequest,
    cancel: DialCancel,
    done: (outcome: DialOutcome) => void,
  ): void {
    const ctx = this.context;
    if (!ctx) {
      done({ ok: false, kind: "failed" });
      return;
    }
    if (!this.#init.mayDial()) {
      done({ ok: false, kind: "overloaded" });
      return;
    }
    const who = this.#identify(conn, request);
    if (who instanceof Promise) {
      // A throw in a later step must still answer the client (and not
      // become an unhandled rejection): the catch ends it as failed.
      who
        .then((w) => this.#dialAs(ctx, conn, request, cancel, w, done))
        .catch(() => done({ ok: false, kind: "failed" }));
    } else {
      this.#dialAs(ctx, conn, request, cancel, who, done);
    }
  }

  #dialAs(
    ctx: ResolveContext,
    conn: Connection,
    request: ClientRequest,
    cancel: DialCancel,
    who: Who,
    done: (outcome: DialOutcome) => void,
  ): void {
    if (cancel.cancelled) {
      done({ ok: false, kind: "cancelled" });
      return;
    }
    if (proxyChannels.request.hasSubscribers)
      publish(proxyChannels.request, () => ({
        client: conn.id,
        identity: who.identity,
        host: request.host,
        port: request.port,
        protocol: request.protocol,
      }));
    const resolved = resolveDestination(ctx, request.host, request.port);
    if (resolved instanceof Promise) {
      resolved
        .then((r) => this.#dialResolved(conn, request, cancel, who, r, done))
        .catch(() => done({ ok: false, kind: "failed" }));
    } else {
      this.#dialResolved(conn, request, cancel, who, resolved, done);
    }
  }

  #dialResolved(
    conn: Connection,
    request: ClientRequest,
    cancel: DialCancel,
    who: Who,
    resolved: Resolved,
    done: (outcome: DialOutcome) => void,
  ): void {
    if (cancel.cancelled) {
      done({ ok: false, kind: "cancelled" });
      return;
    }
    const { identity, aliases } = who;
    const { limiter, metrics, clock } = this.#init;
    if (!resolved.ok) {
      metrics.countAttempt(resolved.kind);
      if (resolved.kind === "denied") {
        publish(proxyChannels.denied, () => ({
          client: conn.id,
          identity,
          host: request.host,
          port: request.port,
          rule: resolved.rule,
        }));
      }
      done(resolved);
      return;
    }
    let started = false;
    const dial: GatedDial = new GatedDial({
      identity,
      requested: request.host,
      port: request.port,
      addresses: resolved.addresses,
      owner: who.owner,
      gateOf: () => limiter.gateOf(identity, aliases),
      clock,
      onStarted: (_d, waitMs) => {
        started = true;
        this.upstreams++;
        metrics.waitSeconds.observe(waitMs / 1000);
      },
      onDone: (outcome) => {
        if (started) this.upstreams--;
        cancel.onCancel(null);
        limiter.untrack(dial);
        this.clients.delete(dial);
        const kind = outcome.ok ? "connected" : outcome.kind;
        metrics.countAttempt(kind);
        if (proxyChannels.attempt.hasSubscribers)
          publish(proxyChannels.attempt, () => {
            const a = dial.attempt;
            return {
              dial: dial.id,
              client: conn.id,
              identity,
              host: request.host,
              port: request.port,
              address: dial.address,
              outcome: kind,
              waitMs:
                a && a.startedAt !== null
                  ? a.startedAt - dial.requestedAt
                  : clock.now() - dial.requestedAt,
              ...(outcome.ok
                ? {}
                : { code: (outcome.error as { code?: string } | undefined)?.code }),
            };
          });
        done(outcome);
      },
    });
    limiter.track(dial, aliases);
    this.clients.set(dial, conn);
    cancel.onCancel(() => dial.cancel());
    dial.begin();
  }
}

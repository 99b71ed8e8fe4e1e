import net from "node:net";
import os from "node:os";
import { FifoDeadlines } from "../deadlines.js";
import { formatEndpoint } from "../errors.js";
import { canonicalAddress, canonicalHost, isUnspecified } from "./acl.js";
import { AdminServer } from "./admin.js";
import { proxyChannels, publish } from "./channels.js";
import { Connection, type ConnectionHost } from "./connection.js";
import { DialPipeline } from "./dial.js";
import { FdBudget, type FdEpisode, openFds, softFdLimit } from "./fds.js";
import type { IdentityKind } from "./identity.js";
import { Limiter } from "./limiter.js";
import type { LimitSettings } from "./limits.js";
import { listenOn } from "./listen.js";
import { ProxyMetrics } from "./metrics.js";
import {
  type AdminTarget,
  type AttemptInfo,
  type LimitsJson,
  ProxyOperations,
  type ProxyStats,
} from "./operations.js";
import { type GateProxyOptions, type NormalizedOptions, normalizeOptions } from "./options.js";

export type { AttemptInfo, ProxyStats } from "./operations.js";
export type { AdminOptions, GateProxyOptions } from "./options.js";

/**
 * `synlimit gate`: a SOCKS5 and HTTP proxy whose upstream connects are the
 * attempts a limiter counts. Any program pointed at it (curl, a JVM, a
 * Python service, proxychains) runs under the incident's rules: each
 * identity's connects hold a slot from the SYN until connected, failed or
 * timed out, and wait in line, are refused or throttled over the limit.
 *
 * This file wires the roles together: options (options.ts), the dial
 * pipeline (dial.ts), the operator's operations (operations.ts, served by
 * admin.ts), metrics (metrics.ts) and descriptors (fds.ts).
 */
export class GateProxy implements AdminTarget {
  readonly #o: NormalizedOptions;
  readonly #server: net.Server;
  readonly #limiter: Limiter;
  readonly #metrics: ProxyMetrics;
  readonly #pipeline: DialPipeline;
  readonly #ops: ProxyOperations;
  readonly #conns = new Set<Connection>();
  #tunnels = 0;
  #fds: FdBudget | null = null;
  #acceptFailing = false;
  #admin: AdminServer | null = null;
  #closed: Promise<void> | null = null;
  readonly #host: ConnectionHost & { listening: ConnectionHost["listening"] };
  readonly #needsPeer: boolean;
  host = "";
  port = 0;

  private constructor(o: NormalizedOptions) {
    this.#o = o;
    this.#needsPeer = o.identity !== "global" && o.identity !== "user";
    this.#metrics = new ProxyMetrics({
      identities: () => this.#limiter.stats(),
      clients: () => this.#conns.size,
      tunnels: () => this.#tunnels,
    });
    this.#limiter = new Limiter(o.limits, o.identities, {
      timeScale: o.timeScale,
      clock: o.clock,
      onLimitReached: (identity, event) => {
        this.#metrics.limitReached(identity);
        publish(proxyChannels.limit, () => ({
          identity,
          key: event.key,
          maxInFlight:
            event.maxInFlight === Number.POSITIVE_INFINITY ? "unlimited" : event.maxInFlight,
          policy: event.policy,
          eventId: 4226,
          message: event.message,
        }));
      },
    });
    this.#pipeline = new DialPipeline({
      identity: o.identity,
      limiter: this.#limiter,
      metrics: this.#metrics,
      clock: o.clock,
      mayDial: () => this.#mayDial(),
    });
    this.#ops = new ProxyOperations(this.#limiter, this.#pipeline, o.clock);
    // noDelay here sets TCP_NODELAY on the accepted handle before the socket object exists.
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false, noDelay: true });
    this.#server.maxConnections = o.maxClients;
    this.#server.on("connection", (socket) => this.#accept(socket));
    // Node drops a client over maxConnections before making a socket: over
    // --max-clients it is a client error, under it the descriptor budget's.
    this.#server.on("drop", () => {
      if (this.#conns.size >= o.maxClients) this.#metrics.countClientError("max-clients");
      else this.#refused("dropped");
    });
    this.#host = {
      clock: o.clock,
      handshakes: new FifoDeadlines(o.clock, o.handshakeTimeoutMs, (c: Connection) =>
        c.handshakeExpired(),
      ),
      maxHeaderBytes: o.maxHeaderBytes,
      credentials: o.credentials,
      listening: null,
      dial: (conn, request, cancel, done) => this.#pipeline.dial(conn, request, cancel, done),
      clientError: (conn, phase, reason, code) => {
        this.#metrics.countClientError(code);
        publish(proxyChannels.clientError, () => ({
          client: conn.id,
          remote: conn.remote,
          phase,
          reason,
        }));
      },
      tunnelOpened: () => {
        this.#tunnels++;
      },
      tunnelClosed: () => {
        this.#tunnels--;
      },
      closed: (conn) => {
        this.#conns.delete(conn);
        if (this.#fds?.inEpisode) this.#fds.released(this.#fdsInUse());
        this.#acceptFailing = false;
        if (proxyChannels.client.hasSubscribers)
          publish(proxyChannels.client, () => ({
            client: conn.id,
            remote: conn.remote,
            protocol: conn.protocol,
            event: "close",
            bytesIn: conn.socket.bytesRead,
            bytesOut: conn.socket.bytesWritten,
          }));
      },
    };
  }

  static async listen(options: GateProxyOptions = {}): Promise<GateProxy> {
    const proxy = new GateProxy(normalizeOptions(options));
    await proxy.#listen();
    return proxy;
  }

  async #listen(): Promise<void> {
    const o = this.#o;
    await listenOn(this.#server, "proxy address", { host: o.host, port: o.port, backlog: 4096 });
    // After listening, an error is an accept that failed (EMFILE, ENFILE):
    // the listener stays, the client is lost, the episode is reported once.
    this.#server.on("error", () => this.#refused("accept-failed"));
    const addr = this.#server.address() as net.AddressInfo;
    this.host = addr.address;
    this.port = addr.port;
    const bound = canonicalHost(addr.address);
    if (bound && bound.kind !== "name" && !isUnspecified(bound)) {
      this.#host.listening = { address: addr.address, port: addr.port };
    }
    try {
      if (o.admin) this.#admin = await AdminServer.listen(this, o.admin);
    } catch (error) {
      this.#server.close();
      throw error;
    }
    const selfPorts = new Set([this.port]);
    if (this.#admin && this.#admin.port > 0) selfPorts.add(this.#admin.port);
    const localAddresses = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) {
      for (const i of list ?? []) {
        const c = canonicalAddress(i.address);
        if (c) localAddresses.add(c);
      }
    }
    this.#pipeline.context = { acl: o.acl, lookup: o.lookup, selfPorts, localAddresses };
    const fdLimit = o.maxOpenFds ?? softFdLimit();
    const baseline = openFds();
    if (fdLimit !== null && baseline !== null) {
      this.#fds = new FdBudget(fdLimit, baseline, (e) => this.#fdEpisode(e));
      // Clients alone never take the admin API's reserve: past this the
      // listener closes new ones at once.
      this.#server.maxConnections = Math.min(o.maxClients, this.#fds.budget);
    }
  }

  // Clients, upstream sockets being dialled, and tunnels' upstreams; a
  // queued attempt has no socket yet and costs nothing here.
  #fdsInUse(): number {
    return this.#conns.size + this.#pipeline.upstreams + this.#tunnels;
  }

  #mayDial(): boolean {
    const fds = this.#fds;
    if (!fds) return true;
    const inUse = this.#fdsInUse();
    if (fds.allows(inUse)) return true;
    this.#refused("try-later");
    return false;
  }

  #refused(reason: "try-later" | "dropped" | "accept-failed"): void {
    this.#metrics.fdRefusal(reason);
    this.#fds?.refused(this.#fdsInUse());
    if (!this.#fds && reason === "accept-failed" && !this.#acceptFailing) {
      // No budget known (no /proc): still one report per episode, which
      // ends when a client closes and gives a descriptor back.
      this.#acceptFailing = true;
      publish(proxyChannels.fdLimit, () => ({ event: "start", inUse: this.#fdsInUse() }));
    }
  }

  #fdEpisode(e: FdEpisode): void {
    publish(proxyChannels.fdLimit, () => ({ ...e }));
  }

  get address(): string {
    return formatEndpoint(this);
  }

  /** The admin API's address (`port` 0 and `path` set on a Unix socket), or null when it is off. */
  get adminAddress(): { host: string; port: number; path?: string } | null {
    const a = this.#admin;
    if (!a) return null;
    return a.path ? { host: a.host, port: a.port, path: a.path } : { host: a.host, port: a.port };
  }

  get identityKind(): IdentityKind {
    return this.#o.identity;
  }

  get timeScale(): number {
    return this.#o.timeScale;
  }

  get acl(): { allow: string[]; deny: string[] } {
    return this.#o.acl.rules;
  }

  get authenticated(): boolean {
    return this.#o.credentials !== null;
  }

  #accept(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    // maxConnections counts clients only; their upstreams share the budget,
    // so a client that would take the last descriptor is closed here, before
    // the process runs out and libuv drops clients where nobody counts them.
    const fds = this.#fds;
    if (fds !== null && !fds.allows(this.#fdsInUse())) {
      socket.destroy();
      this.#refused("dropped");
      return;
    }
    const conn = new Connection(socket, this.#host);
    this.#conns.add(conn);
    // A client gone before its address is known must not share a slot (and
    // a label) with every other such client: it is refused, not pooled.
    if (this.#needsPeer && conn.remoteAddress === "") {
      conn.refuse("peer address unknown", "peer-unknown");
      return;
    }
    // Checked here, not only in publish(): no closure is made per client when nobody listens.
    if (proxyChannels.client.hasSubscribers)
      publish(proxyChannels.client, () => ({
        client: conn.id,
        remote: conn.remote,
        event: "open",
      }));
    this.#pipeline.accepted(conn);
  }

  /** The default limit and every identity's override, as JSON. */
  limits(): LimitsJson {
    return this.#ops.limits();
  }

  /** Sets the limit of one identity, or of every identity without its own ("default"). */
  setLimits(identity: string, settings: LimitSettings): void {
    this.#ops.setLimits(identity, settings);
  }

  /** Drops an identity's own limit; it follows the default again. */
  clearLimits(identity: string): boolean {
    return this.#ops.clearLimits(identity);
  }

  /** Attempts in flight and waiting, oldest first. */
  attempts(): AttemptInfo[] {
    return this.#ops.attempts();
  }

  /** Ends one attempt as the operator; its client gets a general failure. */
  cancelAttempt(id: number): boolean {
    return this.#ops.cancelAttempt(id);
  }

  /**
   * Back to the limits the proxy started with, and every attempt in flight
   * or waiting ended (its client gets a general failure). Established
   * tunnels are not touched.
   */
  reset(): { cancelled: number } {
    return this.#ops.reset();
  }

  stats(): ProxyStats {
    return this.#ops.stats(this.#conns.size, this.#tunnels);
  }

  /** Identities with a gate now, in use or idle (bounded; idle ones are evicted). */
  get identityCount(): number {
    return this.#limiter.size;
  }

  /** Prometheus text exposition. */
  metrics(): Promise<string> {
    return this.#metrics.text();
  }

  get metricsContentType(): string {
    return this.#metrics.contentType;
  }

  /** Stops listening, ends every client and attempt, closes the admin API. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const closing = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const d of [...this.#limiter.dials()]) d.cancel("reset");
      for (const c of [...this.#conns]) c.destroy();
      await Promise.all([closing, this.#admin?.close()]);
    })();
    return this.#closed;
  }
}

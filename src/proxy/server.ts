import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import net from "node:net";
import os from "node:os";
import { type Clock, isClock, systemClock } from "../clock.js";
import { FifoDeadlines } from "../deadlines.js";
import { defaults } from "../defaults.js";
import { formatEndpoint, invalidOption } from "../errors.js";
import { channelNames } from "../gate/channels.js";
import type { LimitReachedEvent } from "../gate/types.js";
import { Acl, canonicalAddress, canonicalHost, isLoopback, isUnspecified } from "./acl.js";
import { AdminServer } from "./admin.js";
import { proxyChannels, publish } from "./channels.js";
import {
  type ClientRequest,
  Connection,
  type ConnectionHost,
  type DialCancel,
} from "./connection.js";
import { Credentials, type UserEntry } from "./credentials.js";
import {
  exeIdentity,
  type IdentityKind,
  identityKinds,
  ProcessResolver,
  processIdentity,
  sourceIdentity,
  userIdentity,
} from "./identity.js";
import { Limiter } from "./limiter.js";
import { type LimitSettings, settingsToJson, validateSettings } from "./limits.js";
import { ProxyMetrics } from "./metrics.js";
import {
  type DialOutcome,
  GatedDial,
  type Lookup,
  type ResolveContext,
  type Resolved,
  resolveDestination,
  systemLookup,
} from "./upstream.js";

export interface GateProxyOptions {
  /** Address to listen on (default 127.0.0.1). A non-loopback address needs `users` and `allowNonLoopback`. */
  host?: string;
  /** Port to listen on (default 1080; 0 picks a free one). */
  port?: number;
  /** The explicit opt-in for a non-loopback listener (which also needs `users`). */
  allowNonLoopback?: boolean;
  /** Who a limit applies to (default `process`). */
  identity?: IdentityKind;
  /** The default limit of every identity (default: the `incident` profile). */
  limits?: LimitSettings;
  /** Limits for particular identities (`process:<pid>:<exe>`, `exe:<path>`, `user:<name>`, `source:<addr>`). */
  identities?: Readonly<Record<string, LimitSettings>>;
  /** Multiplies every duration of the limiter (0.1 runs 21 s in 2.1 s). */
  timeScale?: number;
  /** Users for SOCKS5 username/password and HTTP Basic proxy auth; without them, no auth. */
  users?: readonly UserEntry[];
  /** Destination rules: `*`, addresses, CIDR blocks, names, `*.suffix`. Deny wins. */
  allow?: readonly string[];
  deny?: readonly string[];
  /** The loopback admin API (default: off). */
  admin?: false | { host?: string; port?: number };
  /** Time a client has to complete its handshake (default 10 s, unscaled). */
  handshakeTimeoutMs?: number;
  /** Largest HTTP request head (default 16 KiB). */
  maxHeaderBytes?: number;
  /** Concurrent clients; further connections are closed at once (default 16384). */
  maxClients?: number;
  /** Name resolution (default getaddrinfo); tests inject one. */
  lookup?: Lookup;
  clock?: Clock;
}

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

interface Normalized {
  host: string;
  port: number;
  identity: IdentityKind;
  limits: LimitSettings;
  identities: Map<string, LimitSettings>;
  timeScale: number;
  credentials: Credentials | null;
  acl: Acl;
  admin: { host: string; port: number } | null;
  handshakeTimeoutMs: number;
  maxHeaderBytes: number;
  maxClients: number;
  lookup: Lookup;
  clock: Clock;
}

const DEFAULT_PORT = 1080;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
const DEFAULT_MAX_CLIENTS = 16_384;

function isLoopbackIp(host: string): boolean {
  const c = canonicalHost(host);
  return c !== null && c.kind !== "name" && isLoopback(c);
}

function normalize(options: GateProxyOptions): Normalized {
  if (typeof options !== "object" || options === null)
    throw invalidOption("options", "an object", options);
  const host = options.host ?? "127.0.0.1";
  if (typeof host !== "string" || net.isIP(host) === 0)
    throw invalidOption("host", "an IP address", host);
  const port = options.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidOption("port", "an integer from 0 to 65535", port);
  }
  const credentials = options.users === undefined ? null : new Credentials(options.users);
  if (!isLoopbackIp(host)) {
    if (options.allowNonLoopback !== true) {
      throw invalidOption(
        "host",
        "a loopback address unless allowNonLoopback is set (a proxy on the network is open to anyone who can reach it)",
        host,
      );
    }
    if (!credentials) {
      throw invalidOption(
        "users",
        "configured when listening on a non-loopback address",
        undefined,
      );
    }
  }
  const identity = options.identity ?? "process";
  if (!identityKinds.includes(identity)) {
    throw invalidOption("identity", `one of ${identityKinds.join(", ")}`, identity);
  }
  const limits = validateSettings(options.limits ?? { profile: "incident" }, "limits");
  const identities = new Map<string, LimitSettings>();
  if (options.identities !== undefined) {
    if (typeof options.identities !== "object" || options.identities === null) {
      throw invalidOption("identities", "an object", options.identities);
    }
    for (const [k, v] of Object.entries(options.identities)) {
      if (k === "" || k === "default") throw invalidOption("identities key", "an identity", k);
      identities.set(k, validateSettings(v, `identities[${JSON.stringify(k)}]`));
    }
  }
  const timeScale = options.timeScale ?? defaults.timeScale;
  if (typeof timeScale !== "number" || !Number.isFinite(timeScale) || timeScale <= 0) {
    throw invalidOption("timeScale", "a positive finite number", timeScale);
  }
  const acl = new Acl(options.allow ?? [], options.deny ?? []);
  let admin: Normalized["admin"] = null;
  if (options.admin !== undefined && options.admin !== false) {
    if (typeof options.admin !== "object" || options.admin === null) {
      throw invalidOption("admin", "false or { host, port }", options.admin);
    }
    const ah = options.admin.host ?? "127.0.0.1";
    if (typeof ah !== "string" || net.isIP(ah) === 0 || !isLoopbackIp(ah)) {
      throw invalidOption("admin.host", "a loopback address (the admin API is never exposed)", ah);
    }
    const ap = options.admin.port ?? 0;
    if (!Number.isInteger(ap) || ap < 0 || ap > 65535) {
      throw invalidOption("admin.port", "an integer from 0 to 65535", ap);
    }
    admin = { host: ah, port: ap };
  }
  const positive = (name: string, v: unknown, fallback: number): number => {
    const n = v ?? fallback;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 1)
      throw invalidOption(name, "a positive integer", v);
    return n;
  };
  const lookup = options.lookup ?? systemLookup;
  if (typeof lookup !== "function") throw invalidOption("lookup", "a function", lookup);
  const clock = options.clock ?? systemClock;
  if (!isClock(clock)) throw invalidOption("clock", "an object with now() and setTimer()", clock);
  return {
    host,
    port,
    identity,
    limits,
    identities,
    timeScale,
    credentials,
    acl,
    admin,
    handshakeTimeoutMs: positive(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs,
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
    ),
    maxHeaderBytes: positive("maxHeaderBytes", options.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES),
    maxClients: positive("maxClients", options.maxClients, DEFAULT_MAX_CLIENTS),
    lookup,
    clock,
  };
}

/**
 * `synlimit gate`: a SOCKS5 and HTTP proxy whose upstream connects are the
 * attempts a limiter counts. Any program pointed at it (curl, a JVM, a
 * Python service, proxychains) runs under the incident's rules: each
 * identity's connects hold a slot from the SYN until connected, failed or
 * timed out, and wait in line, are refused or throttled over the limit.
 */
export class GateProxy {
  readonly #o: Normalized;
  readonly #server: net.Server;
  readonly #limiter: Limiter;
  readonly #metrics: ProxyMetrics;
  readonly #resolver = new ProcessResolver();
  readonly #conns = new Set<Connection>();
  readonly #dialClients = new Map<GatedDial, Connection>();
  #tunnels = 0;
  #admin: AdminServer | null = null;
  #resolveCtx: ResolveContext | null = null;
  #closed: Promise<void> | null = null;
  readonly #onLimit = (message: unknown) => this.#limitReached(message as LimitReachedEvent);
  readonly #host: ConnectionHost & { listening: ConnectionHost["listening"] };
  host = "";
  port = 0;

  private constructor(o: Normalized) {
    this.#o = o;
    this.#limiter = new Limiter(o.limits, o.identities, { timeScale: o.timeScale, clock: o.clock });
    this.#metrics = new ProxyMetrics({
      identities: () => this.#limiter.stats(),
      clients: () => this.#conns.size,
      tunnels: () => this.#tunnels,
    });
    // noDelay here sets TCP_NODELAY on the accepted handle before the socket object exists.
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false, noDelay: true });
    this.#server.maxConnections = o.maxClients;
    this.#server.on("connection", (socket) => this.#accept(socket));
    this.#server.on("drop", () => this.#metrics.countClientError("max-clients"));
    this.#host = {
      clock: o.clock,
      handshakes: new FifoDeadlines(o.clock, o.handshakeTimeoutMs, (c: Connection) =>
        c.handshakeExpired(),
      ),
      maxHeaderBytes: o.maxHeaderBytes,
      credentials: o.credentials,
      listening: null,
      dial: (conn, request, cancel, done) => this.#dial(conn, request, cancel, done),
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
    const proxy = new GateProxy(normalize(options));
    await proxy.#listen();
    return proxy;
  }

  async #listen(): Promise<void> {
    const o = this.#o;
    this.#server.listen({ host: o.host, port: o.port, backlog: 4096 });
    await Promise.race([
      once(this.#server, "listening"),
      once(this.#server, "error").then(([error]) => {
        throw invalidOption("port", `free to listen on (${(error as Error).message})`, o.port);
      }),
    ]);
    const addr = this.#server.address() as net.AddressInfo;
    this.host = addr.address;
    this.port = addr.port;
    const bound = canonicalHost(addr.address);
    if (bound && bound.kind !== "name" && !isUnspecified(bound)) {
      this.#host.listening = { address: addr.address, port: addr.port };
    }
    try {
      if (o.admin) this.#admin = await AdminServer.listen(this, o.admin.host, o.admin.port);
    } catch (error) {
      this.#server.close();
      throw error;
    }
    const selfPorts = new Set([this.port]);
    if (this.#admin) selfPorts.add(this.#admin.port);
    const localAddresses = new Set<string>();
    for (const list of Object.values(os.networkInterfaces())) {
      for (const i of list ?? []) {
        const c = canonicalAddress(i.address);
        if (c) localAddresses.add(c);
      }
    }
    this.#resolveCtx = { acl: o.acl, lookup: o.lookup, selfPorts, localAddresses };
    diagnostics.subscribe(channelNames.limitReached, this.#onLimit);
  }

  get address(): string {
    return formatEndpoint(this);
  }

  /** The admin API's address, or null when it is off. */
  get adminAddress(): { host: string; port: number } | null {
    return this.#admin ? { host: this.#admin.host, port: this.#admin.port } : null;
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
    const conn = new Connection(socket, this.#host);
    this.#conns.add(conn);
    // Checked here, not only in publish(): no closure is made per client when nobody listens.
    if (proxyChannels.client.hasSubscribers)
      publish(proxyChannels.client, () => ({
        client: conn.id,
        remote: conn.remote,
        event: "open",
      }));
    if (this.#o.identity === "process" || this.#o.identity === "exe") {
      // Looked up while the client is still shaking hands.
      this.#processOf.set(conn, this.#resolver.lookup(conn));
    }
  }

  readonly #processOf = new WeakMap<Connection, ReturnType<ProcessResolver["lookup"]>>();

  // Synchronous where the answer is at hand: a promise (and a turn of the
  // microtask queue) only for the /proc lookup.
  #identify(conn: Connection, request: ClientRequest): Who | Promise<Who> {
    switch (this.#o.identity) {
      case "global":
        return globalWho;
      case "user":
        return { identity: userIdentity(request.username), aliases: [] };
      case "source":
        return { identity: sourceIdentity(conn.remoteAddress), aliases: [] };
      default:
        return (this.#processOf.get(conn) ?? Promise.resolve(null)).then((info): Who => {
          // A remote client, or one gone before it was seen: its address stands in.
          if (!info) return { identity: sourceIdentity(conn.remoteAddress), aliases: [] };
          if (this.#o.identity === "exe") return { identity: exeIdentity(info), aliases: [] };
          return { identity: processIdentity(info), aliases: [exeIdentity(info)] };
        });
    }
  }

  // Callbacks, not promises: every setup takes this path, and where the
  // identity and the address are at hand it runs to the SYN in one go.
  #dial(
    conn: Connection,
    request: ClientRequest,
    cancel: DialCancel,
    done: (outcome: DialOutcome) => void,
  ): void {
    const ctx = this.#resolveCtx;
    if (!ctx) {
      done({ ok: false, kind: "failed" });
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
    if (!resolved.ok) {
      this.#metrics.countAttempt(resolved.kind);
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
    const dial: GatedDial = new GatedDial({
      identity,
      requested: request.host,
      port: request.port,
      addresses: resolved.addresses,
      gateOf: () => this.#limiter.gateOf(identity, aliases),
      clock: this.#o.clock,
      onStarted: (_d, waitMs) => this.#metrics.waitSeconds.observe(waitMs / 1000),
      onDone: (outcome) => {
        cancel.onCancel(null);
        this.#limiter.untrack(dial);
        this.#dialClients.delete(dial);
        const kind = outcome.ok ? "connected" : outcome.kind;
        this.#metrics.countAttempt(kind);
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
                  : this.#o.clock.now() - dial.requestedAt,
              ...(outcome.ok
                ? {}
                : { code: (outcome.error as { code?: string } | undefined)?.code }),
            };
          });
        done(outcome);
      },
    });
    this.#limiter.track(dial, aliases);
    this.#dialClients.set(dial, conn);
    cancel.onCancel(() => dial.cancel());
    dial.begin();
  }

  #limitReached(event: LimitReachedEvent): void {
    const identity = this.#limiter.gateNames.get(event.gate);
    if (identity === undefined) return;
    this.#metrics.limitReached.inc({ identity });
    publish(proxyChannels.limit, () => ({
      identity,
      key: event.key,
      maxInFlight: event.maxInFlight === Number.POSITIVE_INFINITY ? "unlimited" : event.maxInFlight,
      policy: event.policy,
      eventId: 4226,
      message: event.message,
    }));
  }

  /** The default limit and every identity's override, as JSON. */
  limits(): {
    default: Record<string, unknown>;
    identities: Record<string, Record<string, unknown>>;
  } {
    const identities: Record<string, Record<string, unknown>> = {};
    for (const [k, v] of this.#limiter.overrides) identities[k] = settingsToJson(v);
    return { default: settingsToJson(this.#limiter.defaultSettings), identities };
  }

  /** Sets the limit of one identity, or of every identity without its own ("default"). */
  setLimits(identity: string, settings: LimitSettings): void {
    if (typeof identity !== "string" || identity === "")
      throw invalidOption("identity", "a non-empty string", identity);
    const s = validateSettings(settings, "settings");
    if (identity === "default") this.#limiter.setDefault(s);
    else this.#limiter.setOverride(identity, s);
    publish(proxyChannels.limits, () => ({ identity, settings: settingsToJson(s) }));
  }

  /** Drops an identity's own limit; it follows the default again. */
  clearLimits(identity: string): boolean {
    const had = this.#limiter.clearOverride(identity);
    if (had) publish(proxyChannels.limits, () => ({ identity, settings: null }));
    return had;
  }

  /** Attempts in flight and waiting, oldest first. */
  attempts(): AttemptInfo[] {
    const now = this.#o.clock.now();
    const out: AttemptInfo[] = [];
    for (const d of this.#limiter.dials()) {
      if (d.done) continue;
      const a = d.attempt;
      const state = d.state === "pending" ? "pending" : "queued";
      const conn = this.#dialClients.get(d);
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

  /** Ends one attempt as the operator; its client gets a general failure. */
  cancelAttempt(id: number): boolean {
    for (const d of this.#limiter.dials()) {
      if (d.id === id && !d.done) {
        d.cancel("reset");
        return true;
      }
    }
    return false;
  }

  /**
   * Back to the limits the proxy started with, and every attempt in flight
   * or waiting ended (its client gets a general failure). Established
   * tunnels are not touched.
   */
  reset(): { cancelled: number } {
    const dials = [...this.#limiter.dials()].filter((d) => !d.done);
    // Waiting ones first, so ending those in flight starts nothing.
    dials.sort((a, b) => (a.state === "queued" ? 0 : 1) - (b.state === "queued" ? 0 : 1));
    for (const d of dials) d.cancel("reset");
    this.#limiter.restore();
    publish(proxyChannels.limits, () => ({ identity: "*", settings: "restored" }));
    return { cancelled: dials.length };
  }

  stats(): ProxyStats {
    const identities = this.#limiter.stats();
    let inFlight = 0;
    let queued = 0;
    for (const s of identities) {
      inFlight += s.inFlight;
      queued += s.queued;
    }
    return {
      clients: this.#conns.size,
      tunnels: this.#tunnels,
      dialing: this.#dialClients.size,
      inFlight,
      queued,
      identities,
    };
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
      diagnostics.unsubscribe(channelNames.limitReached, this.#onLimit);
      const closing = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const d of [...this.#limiter.dials()]) d.cancel("reset");
      for (const c of [...this.#conns]) c.destroy();
      await Promise.all([closing, this.#admin?.close()]);
    })();
    return this.#closed;
  }
}

interface Who {
  readonly identity: string;
  readonly aliases: readonly string[];
}

const globalWho: Who = { identity: "global", aliases: [] };

import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type tls from "node:tls";
import { Guard, type GuardOptions, guardOptionKeys, sniOf } from "../guard.js";
import { rejectMisplacedKeys } from "../options.js";

type CreateCallback = (error: Error | null, stream: Duplex) => void;

/** http(s).Agent options someone may give in the guard's slot. */
const agentKeys = [
  "keepAlive",
  "keepAliveMsecs",
  "maxSockets",
  "maxTotalSockets",
  "maxFreeSockets",
  "scheduling",
  "timeout",
  "ca",
  "cert",
  "key",
  "rejectUnauthorized",
  "servername",
  "maxCachedSessions",
] as const;

function guardOf(guard: Guard | GuardOptions | undefined, agent: string): Guard {
  if (guard instanceof Guard) return guard;
  rejectMisplacedKeys(guard, guardOptionKeys, agentKeys, `the second argument (${agent} options)`);
  return new Guard(guard);
}

function portOf(options: http.ClientRequestArgs, fallback: number): number {
  const port = Number(options.port ?? options.defaultPort ?? fallback);
  return Number.isFinite(port) && port > 0 ? port : fallback;
}

/**
 * An http.Agent whose new connections go through the guard. Node's Agent
 * accepts a socket handed to the createConnection callback later, so the
 * request simply waits while the guard decides (or fails fast).
 */
export class GuardedAgent extends http.Agent {
  readonly guard: Guard;

  constructor(guard?: Guard | GuardOptions, options?: http.AgentOptions) {
    super(options);
    this.guard = guardOf(guard, "http.Agent");
  }

  override createConnection(options: http.ClientRequestArgs, callback?: CreateCallback): null {
    connectThrough(this.guard, options, 80, undefined, callback);
    return null;
  }
}

/** The https flavour: TLS options of the request (ca, servername, …) apply to the upgrade. */
export class GuardedHttpsAgent extends https.Agent {
  readonly guard: Guard;

  constructor(guard?: Guard | GuardOptions, options?: https.AgentOptions) {
    super(options);
    this.guard = guardOf(guard, "https.Agent");
  }

  override createConnection(options: http.ClientRequestArgs, callback?: CreateCallback): null {
    const o = options as https.RequestOptions & tls.ConnectionOptions;
    const tlsOptions: tls.ConnectionOptions = {
      ...pick(o, [
        "ca",
        "cert",
        "key",
        "pfx",
        "passphrase",
        "rejectUnauthorized",
        "ciphers",
        "minVersion",
        "maxVersion",
        "checkServerIdentity",
        "ALPNProtocols",
        "session",
      ]),
      // As Node's https.Agent: no SNI for an IP address (DEP0123).
      servername: sniOf(o.servername || (typeof o.host === "string" ? o.host : undefined)) ?? "",
    };
    connectThrough(this.guard, options, 443, tlsOptions, callback);
    return null;
  }
}

function connectThrough(
  guard: Guard,
  options: http.ClientRequestArgs,
  defaultPort: number,
  tlsOptions: tls.ConnectionOptions | undefined,
  callback: CreateCallback | undefined,
): void {
  const host = options.hostname ?? options.host ?? "localhost";
  guard
    .connect({
      host,
      port: portOf(options, defaultPort),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(tlsOptions ? { tls: tlsOptions } : {}),
    })
    .then(
      (socket) => callback?.(null, socket),
      (error: Error) => callback?.(error, null as unknown as Duplex),
    );
}

function pick<T extends object>(o: T, keys: string[]): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const k of keys)
    if ((o as Record<string, unknown>)[k] !== undefined) out[k] = (o as Record<string, unknown>)[k];
  return out as Partial<T>;
}

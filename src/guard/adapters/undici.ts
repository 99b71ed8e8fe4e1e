import type net from "node:net";
import tls from "node:tls";
import type { SynlimitError } from "../../errors.js";
import { Guard, type GuardOptions, guardOptionKeys, sniOf } from "../guard.js";
import { rejectMisplacedKeys } from "../options.js";

/** The part of undici's connector options the guard needs (structural: undici is not a dependency). */
export interface UndiciConnectOptions {
  hostname: string;
  host?: string;
  protocol: string;
  port: string | number;
  servername?: string | null;
  localAddress?: string | null;
  /** A socket already connected through a proxy tunnel: TLS goes over it, no TCP attempt is made. */
  httpSocket?: net.Socket;
}

export type UndiciConnectCallback = (
  ...args: [null, net.Socket | tls.TLSSocket] | [Error, null]
) => void;

/** What undici's `buildConnector` takes besides TLS options, with the same meaning. */
export interface GuardedConnectOptions extends Omit<tls.ConnectionOptions, "timeout"> {
  /** Offer h2 by ALPN, as undici's `allowH2` (set it on the Agent too). */
  allowH2?: boolean;
  /** undici's connect timeout in ms (default 10 s), for TCP connect plus TLS handshake. */
  timeout?: number | null;
  /** TCP keep-alive, as undici's connector (default on, 60 s). */
  keepAlive?: boolean | null;
  keepAliveInitialDelay?: number;
}

/** undici connector options (buildConnector's) someone may give in the guard's slot. */
const connectorKeys = [
  "timeout",
  "allowH2",
  "keepAlive",
  "keepAliveInitialDelay",
  "maxCachedSessions",
  "socketPath",
  "ca",
  "cert",
  "key",
  "rejectUnauthorized",
  "servername",
] as const;

const undiciError = Symbol.for("undici.error.UND_ERR");
const undiciConnectTimeout = Symbol.for("undici.error.UND_ERR_CONNECT_TIMEOUT");

/**
 * A `connect` function for undici's Agent, Pool or Client
 * (`new Agent({ connect: guardedConnect(guard) })`), behaving as undici's
 * own connector (lib/core/connect.js) except that the TCP attempt goes
 * through the guard. An open breaker fails the request at once through
 * `cb(err)` instead of holding a connect slot; a guard deadline reaches
 * undici as its own `UND_ERR_CONNECT_TIMEOUT` (`instanceof ConnectTimeoutError`).
 */
export function guardedConnect(
  guard?: Guard | GuardOptions,
  connectOptions: GuardedConnectOptions = {},
): (options: UndiciConnectOptions, callback: UndiciConnectCallback) => void {
  if (!(guard instanceof Guard)) {
    rejectMisplacedKeys(
      guard,
      guardOptionKeys,
      connectorKeys,
      "guardedConnect's second argument (undici connector options)",
    );
  }
  const g = guard instanceof Guard ? guard : new Guard(guard);
  const { allowH2, timeout, keepAlive, keepAliveInitialDelay, ...tlsOptions } = connectOptions;
  const timeoutMs = timeout ?? 10_000;
  const alpn = allowH2 ? ["http/1.1", "h2"] : ["http/1.1"];
  const sessions = new Map<string, Buffer>();
  return (options, callback) => {
    let called = false;
    const done: UndiciConnectCallback = (...args) => {
      if (called) return;
      called = true;
      callback(...args);
    };
    const secure = options.protocol === "https:";
    const port = Number(options.port) || (secure ? 443 : 80);
    // undici: servername || options.servername || getServerName(host), IPs never.
    const servername =
      options.servername || tlsOptions.servername || sniOf(hostOf(options.host)) || undefined;
    const sessionKey = servername ?? options.hostname;
    const tlsFor = (): tls.ConnectionOptions => ({
      ...tlsOptions,
      ...(servername ? { servername } : { servername: "" }),
      ...(sessions.has(sessionKey) ? { session: sessions.get(sessionKey) } : {}),
      ALPNProtocols: alpn,
    });
    const ready = (socket: net.Socket) => {
      if (keepAlive ?? true) socket.setKeepAlive(true, keepAliveInitialDelay ?? 60_000);
      socket.setNoDelay(true);
      if (secure) {
        socket.on("session", (session: Buffer) => sessions.set(sessionKey, session));
      }
      done(null, socket);
    };
    if (options.httpSocket) {
      // A proxy tunnel is already connected: the guard has nothing to connect.
      if (!secure) return ready(options.httpSocket);
      return tlsOver(options.httpSocket, tlsFor(), timeoutMs, options).then(ready, (e: Error) =>
        done(e, null),
      );
    }
    const socket = g.connect({
      host: options.hostname,
      port,
      timeoutMs,
      ...(options.localAddress ? { socket: { localAddress: options.localAddress } } : {}),
      ...(secure ? { tls: tlsFor() } : {}),
    });
    socket.then(ready, (error: Error) => done(asUndiciError(error, options.hostname, port), null));
  };
}

/** The host part of undici's `host` ("name:port" or "[v6]:port"). */
function hostOf(host: string | undefined): string | undefined {
  if (!host) return undefined;
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.indexOf(":");
  return colon === -1 || host.indexOf(":", colon + 1) !== -1 ? host : host.slice(0, colon);
}

function tlsOver(
  socket: net.Socket,
  options: tls.ConnectionOptions,
  timeoutMs: number,
  endpoint: UndiciConnectOptions,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // host: the name the certificate is checked against (Node checks
    // "localhost" over a given socket otherwise), as undici's own connector.
    const secure = tls.connect({ ...options, host: endpoint.hostname, socket });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(
        asUndiciError(
          Object.assign(new Error(`TLS over the proxy tunnel timed out after ${timeoutMs} ms`), {
            code: "SYNLIMIT_CONNECT_TIMEOUT",
          }),
          endpoint.hostname,
          Number(endpoint.port) || 443,
        ),
      );
    }, timeoutMs);
    timer.unref();
    secure.once("secureConnect", () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once("error", (error) => {
      clearTimeout(timer);
      secure.destroy();
      reject(error);
    });
  });
}

/**
 * A guard deadline becomes what undici's own connector throws on timeout,
 * so undici's retry logic and users' `instanceof errors.ConnectTimeoutError`
 * recognise it; the guard's error stays as `cause`, its code as `synlimitCode`.
 */
function asUndiciError(error: Error, hostname: string, port: number): Error {
  const code = (error as SynlimitError).code;
  if (code !== "SYNLIMIT_CONNECT_TIMEOUT") return error;
  const converted = new Error(
    `Connect Timeout Error (attempted address: ${hostname}:${port}; ${error.message})`,
    { cause: error },
  ) as Error & Record<string | symbol, unknown>;
  converted.name = "ConnectTimeoutError";
  converted.code = "UND_ERR_CONNECT_TIMEOUT";
  converted.synlimitCode = code;
  converted[undiciError] = true;
  converted[undiciConnectTimeout] = true;
  return converted;
}

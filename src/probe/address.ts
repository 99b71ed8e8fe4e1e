import net from "node:net";
import { type Endpoint, formatEndpoint, usageError } from "../errors.js";

export type ProxyProtocol = "socks5" | "http";

/** An egress proxy the probe dials through; credentials never appear in reports. */
export interface ProxySpec {
  readonly protocol: ProxyProtocol;
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
}

/** `HOST:PORT`, `[V6]:PORT`; the host may be a name. */
export function parseHostPort(text: string, what: string): Endpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  const host = m?.[1];
  const port = Number(m?.[2]);
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw usageError(
      `${what} must be HOST:PORT or [IPv6]:PORT with a port from 1 to 65535, got ${JSON.stringify(text)}`,
    );
  }
  if (host.includes(":") && net.isIPv6(host) === false) {
    throw usageError(`${what}: ${JSON.stringify(host)} is not an IPv6 address`);
  }
  return { host, port };
}

/** `socks5://host:port` or `http://host:port`, optionally with user:password@. */
export function parseProxyUrl(text: string): ProxySpec {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError(
      `--via must be socks5://HOST:PORT or http://HOST:PORT, got ${JSON.stringify(text)}`,
    );
  }
  const protocol = url.protocol.replace(/:$/, "");
  if (protocol !== "socks5" && protocol !== "http") {
    throw usageError(`--via supports socks5:// and http:// proxies, not ${protocol}://`);
  }
  if (url.port === "") throw usageError(`--via ${protocol}://${url.hostname} needs a port`);
  if ((url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "") {
    throw usageError(`--via takes only ${protocol}://HOST:PORT, without a path or query`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    protocol,
    host,
    port: Number(url.port),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
}

/** The proxy as a report may show it: no credentials. */
export function describeProxy(proxy: ProxySpec): string {
  return `${proxy.protocol}://${formatEndpoint(proxy)}`;
}

/** Addresses that never leave the host, or localhost: the one rule in src/loopback.ts. */
export { isLoopbackHost as isLoopback } from "../loopback.js";

import net from "node:net";
import { type Clock, isClock, systemClock } from "../clock.js";
import { defaults } from "../defaults.js";
import { invalidOption } from "../errors.js";
import { checkTimeScale, type Fail } from "../gate/validate.js";
import { isLoopbackAddress } from "../loopback.js";
import { Acl } from "./acl.js";
import { Credentials, type UserEntry } from "./credentials.js";
import { type IdentityKind, identityKinds } from "./identity.js";
import { type LimitSettings, validateSettings } from "./limits.js";
import { type Lookup, systemLookup } from "./upstream.js";

export interface AdminOptions {
  /** Loopback address of the admin API (default 127.0.0.1); ignored with `socketPath`. */
  host?: string;
  /** Its port (default 0: any free one). */
  port?: number;
  /**
   * A bearer token every request must carry (`Authorization: Bearer …`),
   * compared in constant time. Without one, any local user who can reach
   * the port can read client details and change limits.
   */
  token?: string;
  /** Listen on this Unix socket instead of TCP: file permissions decide who may use it. */
  socketPath?: string;
  /** The socket file's mode (default 0o600: its owner only). */
  socketMode?: number;
}

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
  /** Limits for particular identities (`process:<pid>:<exe>`, `exe:<path>`, `user:<name>`, `source:<addr>`, `global`). */
  identities?: Readonly<Record<string, LimitSettings>> | ReadonlyMap<string, LimitSettings>;
  /** Multiplies every duration of the limiter (0.1 runs 21 s in 2.1 s). */
  timeScale?: number;
  /** Users for SOCKS5 username/password and HTTP Basic proxy auth; without them, no auth. */
  users?: readonly UserEntry[];
  /** Destination rules: `*`, addresses, CIDR blocks, names, `*.suffix`. Deny wins. */
  allow?: readonly string[];
  deny?: readonly string[];
  /**
   * Deny link-local destinations (169.254.0.0/16, fe80::/10: cloud metadata
   * services; default true, `--allow-link-local` on the CLI). The rules show
   * in the deny list like any other.
   */
  denyLinkLocal?: boolean;
  /** The loopback admin API (default: off). */
  admin?: false | AdminOptions;
  /** Time a client has to complete its handshake (default 10 s, unscaled). */
  handshakeTimeoutMs?: number;
  /** Largest HTTP request head (default 16 KiB, at least 256). */
  maxHeaderBytes?: number;
  /** Concurrent clients; further connections are closed at once (default 16384). */
  maxClients?: number;
  /**
   * File descriptors the proxy may use in all (default: the process's soft
   * RLIMIT_NOFILE). A few are kept for the admin API; near the limit new
   * requests are answered "try later" instead of failing without a word.
   */
  maxOpenFds?: number;
  /** Name resolution (default getaddrinfo); tests inject one. */
  lookup?: Lookup;
  clock?: Clock;
}

export interface NormalizedAdmin {
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  readonly socketPath: string | null;
  readonly socketMode: number;
}

export interface NormalizedOptions {
  readonly host: string;
  readonly port: number;
  readonly identity: IdentityKind;
  readonly limits: LimitSettings;
  readonly identities: Map<string, LimitSettings>;
  readonly timeScale: number;
  readonly credentials: Credentials | null;
  readonly acl: Acl;
  readonly admin: NormalizedAdmin | null;
  readonly handshakeTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly maxClients: number;
  readonly maxOpenFds: number | null;
  readonly lookup: Lookup;
  readonly clock: Clock;
}

/** Limits of the proxy's own settings: one place, read by the options, the config file and the CLI. */
export const proxyLimits = {
  defaultPort: 1080,
  /** A client that has not sent its request by then is cut (slowloris). */
  defaultHandshakeTimeoutMs: 10_000,
  defaultMaxHeaderBytes: 16 * 1024,
  /** A request line and a Host header do not fit in less. */
  minMaxHeaderBytes: 256,
  defaultMaxClients: 16_384,
  /** A guessable token is no token. */
  minAdminTokenLength: 16,
  /** Metadata services of every major cloud live here (169.254.169.254, fe80::…). */
  linkLocalRules: ["169.254.0.0/16", "fe80::/10"] as readonly string[],
} as const;

const identityPattern = /^(?:global|process:\d+:.+|exe:.+|user:.+|source:.+)$/s;
const MAX_IDENTITY_LENGTH = 4096;

/**
 * Identity names an operator may set a limit for; anything else (`__proto__`,
 * a typo without its kind) is refused rather than stored and never matched.
 */
export function isIdentityName(name: unknown): name is string {
  return (
    typeof name === "string" &&
    name.length <= MAX_IDENTITY_LENGTH &&
    identityPattern.test(name) &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    !/[\x00-\x1f\x7f]/.test(name)
  );
}

export const identityNameExpected =
  "global, process:<pid>:<exe>, exe:<path>, user:<name> or source:<address>";

const optionFail: Fail = (name, expected, got) => {
  throw invalidOption(name, expected, got);
};

function positiveInteger(name: string, v: unknown, fallback: number, min = 1): number {
  const n = v ?? fallback;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min) {
    throw invalidOption(
      name,
      min === 1 ? "a positive integer" : `an integer of at least ${min}`,
      v,
    );
  }
  return n;
}

function normalizeAdmin(admin: GateProxyOptions["admin"]): NormalizedAdmin | null {
  if (admin === undefined || admin === false) return null;
  if (typeof admin !== "object" || admin === null) {
    throw invalidOption("admin", "false or { host, port, token, socketPath }", admin);
  }
  const host = admin.host ?? "127.0.0.1";
  if (typeof host !== "string" || net.isIP(host) === 0 || !isLoopbackAddress(host)) {
    throw invalidOption("admin.host", "a loopback address (the admin API is never exposed)", host);
  }
  const port = admin.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidOption("admin.port", "an integer from 0 to 65535", port);
  }
  const token = admin.token ?? null;
  if (
    token !== null &&
    (typeof token !== "string" ||
      token.length < proxyLimits.minAdminTokenLength ||
      // biome-ignore lint/suspicious/noControlCharactersInRegex: a header value cannot carry them
      /[\x00-\x20\x7f]/.test(token))
  ) {
    throw invalidOption(
      "admin.token",
      `a string of at least ${proxyLimits.minAdminTokenLength} visible characters`,
      "(hidden)",
    );
  }
  const socketPath = admin.socketPath ?? null;
  if (socketPath !== null && (typeof socketPath !== "string" || socketPath === "")) {
    throw invalidOption("admin.socketPath", "a file path", socketPath);
  }
  const socketMode = admin.socketMode ?? 0o600;
  if (!Number.isInteger(socketMode) || socketMode < 0 || socketMode > 0o777) {
    throw invalidOption("admin.socketMode", "a file mode from 0 to 0o777", socketMode);
  }
  return { host, port, token, socketPath, socketMode };
}

/** Checks every option by hand (library API) and fills in the defaults. */
export function normalizeOptions(options: GateProxyOptions): NormalizedOptions {
  if (typeof options !== "object" || options === null)
    throw invalidOption("options", "an object", options);
  const host = options.host ?? "127.0.0.1";
  if (typeof host !== "string" || net.isIP(host) === 0)
    throw invalidOption("host", "an IP address", host);
  const port = options.port ?? proxyLimits.defaultPort;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidOption("port", "an integer from 0 to 65535", port);
  }
  const credentials = options.users === undefined ? null : new Credentials(options.users);
  if (!isLoopbackAddress(host)) {
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
    const entries =
      options.identities instanceof Map
        ? [...options.identities.entries()]
        : Object.entries(options.identities);
    for (const [k, v] of entries) {
      if (!isIdentityName(k)) throw invalidOption("identities key", identityNameExpected, k);
      identities.set(k, validateSettings(v, `identities[${JSON.stringify(k)}]`));
    }
  }
  const timeScale = checkTimeScale(
    options.timeScale ?? defaults.timeScale,
    "timeScale",
    optionFail,
  );
  const denyLinkLocal = options.denyLinkLocal ?? true;
  if (typeof denyLinkLocal !== "boolean")
    throw invalidOption("denyLinkLocal", "true or false", denyLinkLocal);
  const deny = options.deny ?? [];
  if (!Array.isArray(deny)) throw invalidOption("deny", "an array of rules", deny);
  const acl = new Acl(options.allow ?? [], [
    ...deny,
    ...(denyLinkLocal ? proxyLimits.linkLocalRules : []),
  ]);
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
    admin: normalizeAdmin(options.admin),
    handshakeTimeoutMs: positiveInteger(
      "handshakeTimeoutMs",
      options.handshakeTimeoutMs,
      proxyLimits.defaultHandshakeTimeoutMs,
    ),
    maxHeaderBytes: positiveInteger(
      "maxHeaderBytes",
      options.maxHeaderBytes,
      proxyLimits.defaultMaxHeaderBytes,
      proxyLimits.minMaxHeaderBytes,
    ),
    maxClients: positiveInteger("maxClients", options.maxClients, proxyLimits.defaultMaxClients),
    maxOpenFds:
      options.maxOpenFds === undefined
        ? null
        : positiveInteger("maxOpenFds", options.maxOpenFds, 0, 16),
    lookup,
    clock,
  };
}

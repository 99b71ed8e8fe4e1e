import diagnostics from "node:diagnostics_channel";
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import type { pino } from "pino";
import { isProfileName, type ProfileName, profileNames } from "../../emulate/profiles.js";
import { formatEndpoint, SynlimitError, usageError } from "../../errors.js";
import { parseNumberText } from "../../gate/number-text.js";
import { parseTiming, timingNames } from "../../gate/timing.js";
import { isLoopbackAddress } from "../../loopback.js";
import { proxyChannelNames } from "../../proxy/channels.js";
import { parseUsersFile } from "../../proxy/credentials.js";
import { type IdentityKind, identityKinds } from "../../proxy/identity.js";
import type { LimitSettings } from "../../proxy/limits.js";
import type { GateProxy, GateProxyOptions } from "../../proxy/server.js";
import { createLogger, type Logger } from "../log.js";
import { ipAddress, port, positiveNumber } from "../parse.js";
import { logLevel } from "../parse-echo.js";
import { untilSignal } from "../signals.js";

interface Flags {
  config?: string;
  host?: string;
  port?: number;
  allowNonLoopback?: boolean;
  identity?: IdentityKind;
  profile?: ProfileName;
  maxInFlight?: number;
  policy?: "queue" | "reject" | "rate";
  timing?: LimitSettings["timing"];
  timeScale?: number;
  usersFile?: string;
  allow?: string[];
  deny?: string[];
  admin: boolean;
  adminHost?: string;
  adminPort?: number;
  adminTokenFile?: string;
  adminSocket?: string;
  allowLinkLocal?: boolean;
  handshakeTimeout?: number;
  maxClients?: number;
  maxHeaderBytes?: number;
  json?: boolean;
  logLevel?: string;
}

const DEFAULT_ADMIN_PORT = 9180;

function identity(value: string): IdentityKind {
  if (!(identityKinds as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${identityKinds.join(", ")}.`);
  }
  return value as IdentityKind;
}

function profile(value: string): ProfileName {
  if (!isProfileName(value))
    throw new InvalidArgumentError(`expected one of ${profileNames.join(", ")}.`);
  return value;
}

function maxInFlight(value: string): number {
  if (value === "unlimited") return Number.POSITIVE_INFINITY;
  const n = parseNumberText(value);
  if (n === null || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError('expected a positive integer or "unlimited".');
  return n;
}

function policy(value: string): Flags["policy"] {
  if (value !== "queue" && value !== "reject" && value !== "rate") {
    throw new InvalidArgumentError("expected one of queue, reject, rate.");
  }
  return value;
}

function timing(value: string): LimitSettings["timing"] {
  try {
    return parseTiming(value);
  } catch (error) {
    if (error instanceof SynlimitError) throw new InvalidArgumentError(`${error.message}.`);
    throw error;
  }
}

function integer(value: string): number {
  const n = parseNumberText(value);
  if (n === null || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError("expected a positive integer.");
  return n;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

const help = `
The proxy speaks SOCKS5 (RFC 1928; no auth or username/password, RFC 1929)
and HTTP (CONNECT, and absolute http:// URIs) on one port. Each upstream
connect is an attempt: it holds a slot of its identity's limit from the SYN
until connected, failed or timed out. Once connected the proxy only pipes.

Identities (--identity): process (the client program, via /proc; per
running process, as in the incident), exe (all processes of one executable),
user (SOCKS username / Proxy-Authorization), source (client address), global
(the whole machine, as Windows XP SP2).

Listens on loopback. A non-loopback --host needs --users-file and
--allow-non-loopback. Link-local destinations (169.254.0.0/16, fe80::/10,
where cloud metadata services answer) are denied unless --allow-link-local.

The admin API is always loopback-only. By default it listens on
127.0.0.1:${DEFAULT_ADMIN_PORT} WITHOUT authentication: any local user (any
process on this machine) can read the clients' addresses and destinations,
change or reset limits and cancel attempts. Require a token with
--admin-token-file, or listen on a Unix socket with --admin-socket (mode
0600: only this user), or turn it off with --no-admin.

Examples:
  synlimit gate --profile incident --identity process --port 1080 &
  curl --socks5-hostname 127.0.0.1:1080 https://example.com/
  curl -x http://127.0.0.1:1080 https://example.com/

  # any program, unmodified: a proxychains4 config with
  #   strict_chain
  #   [ProxyList]
  #   socks5 127.0.0.1 1080
  proxychains4 -q -f ./proxychains.conf python3 app.py

  # the admin API (Toxiproxy-like)
  curl -s 127.0.0.1:${DEFAULT_ADMIN_PORT}/attempts
  synlimit gate --admin-token-file ./admin.token &
  curl -s -H "Authorization: Bearer $(cat ./admin.token)" 127.0.0.1:${DEFAULT_ADMIN_PORT}/stats
  synlimit gate --admin-socket /run/user/$(id -u)/synlimit.sock &
  curl -s --unix-socket /run/user/$(id -u)/synlimit.sock http://localhost/stats
  curl -s -X PUT -H 'Content-Type: application/json' \\
    -d '{"profile":"winxp-sp2"}' 127.0.0.1:${DEFAULT_ADMIN_PORT}/limits/default
  curl -s 127.0.0.1:${DEFAULT_ADMIN_PORT}/metrics

See docs/gate.md for the config file, the admin API and the metrics.
`;

export function registerGate(program: Command): void {
  program
    .command("gate")
    .description(
      "an egress proxy (SOCKS5 and HTTP) that limits concurrent connect attempts per program, user, source or machine, until Ctrl-C",
    )
    .option("--config <file>", "JSON config file (flags override it)")
    .option("--host <ip>", "address to listen on (default 127.0.0.1)", ipAddress)
    .option("--port <port>", "port to listen on (default 1080; 0: any free port)", port)
    .option("--allow-non-loopback", "allow a non-loopback --host (needs --users-file)")
    .option(
      "--identity <kind>",
      `who a limit applies to: ${identityKinds.join(", ")} (default process)`,
      identity,
    )
    .option(
      "--profile <name>",
      `limiter profile: ${profileNames.join(", ")} (default incident)`,
      profile,
    )
    .option(
      "--max-in-flight <n>",
      'concurrent attempts per identity: a positive integer or "unlimited"',
      maxInFlight,
    )
    .option("--policy <policy>", "over the limit: queue (FIFO), reject, rate", policy)
    .option(
      "--timing <timing>",
      `SYN schedule and give-up time: ${timingNames.join(", ")}, milliseconds, or syn:0,1000,3000;giveup:21000 (see synlimit profiles)`,
      timing,
    )
    .option(
      "--time-scale <factor>",
      "multiplies every duration (0.1 runs 21 s in 2.1 s; default 1)",
      positiveNumber,
    )
    .option("--users-file <file>", "username:password lines; enables authentication")
    .option(
      "--allow <rule>",
      "allowed destination (repeatable): *, address, CIDR, name, *.suffix",
      collect,
    )
    .option("--deny <rule>", "denied destination (repeatable; deny wins)", collect)
    .option("--admin-host <ip>", "admin API address (loopback only; default 127.0.0.1)", ipAddress)
    .option(
      "--admin-port <port>",
      `admin API port (default ${DEFAULT_ADMIN_PORT}; 0: any free port)`,
      port,
    )
    .option(
      "--admin-token-file <file>",
      "require this token (the file's first line) as Authorization: Bearer on every admin request",
    )
    .option(
      "--admin-socket <path>",
      "serve the admin API on this Unix socket (mode 0600) instead of TCP",
    )
    .option("--no-admin", "no admin API")
    .option(
      "--allow-link-local",
      "allow link-local destinations (169.254.0.0/16, fe80::/10; denied by default)",
    )
    .option(
      "--handshake-timeout <ms>",
      "time a client has to send its request (default 10000)",
      integer,
    )
    .option("--max-clients <n>", "concurrent clients (default 16384)", integer)
    .option("--max-header-bytes <n>", "largest HTTP request head (default 16384)", integer)
    .option("--json", "print the listening addresses as one JSON line")
    .option("--log-level <level>", "log level for the JSON logs on stderr (default info)", logLevel)
    .addHelpText("after", help)
    .action(async (flags: Flags, command: Command) => {
      // Loaded here, not at startup: other commands need neither zod nor
      // prom-client; zod (hundreds of files) only with --config, so a gate
      // started under a small fd limit does not spend it on module loading.
      const [{ readAdminToken }, { GateProxy }] = await Promise.all([
        import("../../proxy/admin-token.js"),
        import("../../proxy/server.js"),
      ]);
      const { options, logLevel: configLevel } = flags.config
        ? (await import("../../proxy/config.js")).loadConfig(flags.config)
        : { options: {}, logLevel: undefined };
      const merged = mergeFlags(options, flags, command, readAdminToken);
      checkListen(merged, flags);
      const log = createLogger(flags.logLevel ?? configLevel ?? "info");
      const stop = subscribeLogs(log);
      let proxy: GateProxy;
      try {
        proxy = await GateProxy.listen(merged);
      } catch (error) {
        stop();
        throw inFlagTerms(error, merged);
      }
      const admin = proxy.adminAddress;
      const info = { host: proxy.host, port: proxy.port, admin };
      const adminText = !admin
        ? ""
        : admin.path
          ? `, admin API on unix:${admin.path}`
          : `, admin API on http://${admin.host.includes(":") ? `[${admin.host}]` : admin.host}:${admin.port}/`;
      process.stdout.write(
        flags.json
          ? `${JSON.stringify(info)}\n`
          : `synlimit gate: SOCKS5 and HTTP proxy on ${proxy.address}${adminText}\n`,
      );
      log.info(
        {
          ...info,
          identity: proxy.identityKind,
          limits: proxy.limits().default,
          timeScale: proxy.timeScale,
          authentication: proxy.authenticated,
        },
        "gate listening",
      );
      const signal = await untilSignal();
      const stats = proxy.stats();
      await proxy.close();
      stop();
      log.info({ signal, ...stats }, "gate closed");
    });
}

function mergeFlags(
  base: GateProxyOptions,
  flags: Flags,
  command: Command,
  readToken: (file: string, flag: string) => string,
): GateProxyOptions {
  const fromCli = (name: string) => command.getOptionValueSource(name) === "cli";
  const o: GateProxyOptions = { ...base };
  if (flags.host !== undefined) o.host = flags.host;
  if (flags.port !== undefined) o.port = flags.port;
  else if (o.port === undefined) o.port = 1080;
  if (flags.allowNonLoopback) o.allowNonLoopback = true;
  if (flags.identity !== undefined) o.identity = flags.identity;
  const limitFlags: { -readonly [K in keyof LimitSettings]: LimitSettings[K] } = {};
  if (flags.profile !== undefined) limitFlags.profile = flags.profile;
  if (flags.maxInFlight !== undefined) limitFlags.maxInFlight = flags.maxInFlight;
  if (flags.policy !== undefined) limitFlags.policy = flags.policy;
  if (flags.timing !== undefined) limitFlags.timing = flags.timing;
  if (Object.keys(limitFlags).length > 0) {
    // A profile on the command line starts the limits afresh; other flags refine the file's.
    o.limits = limitFlags.profile
      ? limitFlags
      : { ...(o.limits ?? { profile: "incident" }), ...limitFlags };
  }
  if (flags.timeScale !== undefined) o.timeScale = flags.timeScale;
  if (flags.usersFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(flags.usersFile, "utf8");
    } catch (error) {
      throw usageError(
        `users file ${flags.usersFile}: cannot read it (${(error as NodeJS.ErrnoException).code ?? "error"})`,
      );
    }
    o.users = [...(o.users ?? []), ...parseUsersFile(text)];
  }
  if (flags.allow !== undefined) o.allow = [...(o.allow ?? []), ...flags.allow];
  if (flags.deny !== undefined) o.deny = [...(o.deny ?? []), ...flags.deny];
  if (flags.allowLinkLocal) o.denyLinkLocal = false;
  if (fromCli("admin") && flags.admin === false) o.admin = false;
  else if (o.admin !== false) {
    const a = o.admin ?? {};
    const socketPath = flags.adminSocket ?? a.socketPath;
    const token =
      flags.adminTokenFile !== undefined
        ? readToken(flags.adminTokenFile, "--admin-token-file")
        : a.token;
    o.admin = {
      host: flags.adminHost ?? a.host ?? "127.0.0.1",
      port: flags.adminPort ?? a.port ?? DEFAULT_ADMIN_PORT,
      ...(socketPath !== undefined ? { socketPath } : {}),
      ...(token !== undefined ? { token } : {}),
    };
  }
  if (flags.handshakeTimeout !== undefined) o.handshakeTimeoutMs = flags.handshakeTimeout;
  if (flags.maxClients !== undefined) o.maxClients = flags.maxClients;
  if (flags.maxHeaderBytes !== undefined) o.maxHeaderBytes = flags.maxHeaderBytes;
  return o;
}

/** The listener rules, checked here so the message names the flags the user typed. */
function checkListen(o: GateProxyOptions, flags: Flags): void {
  const host = o.host ?? "127.0.0.1";
  const hostFlag = flags.host !== undefined ? "--host" : "the config file's host";
  if (!isLoopbackAddress(host)) {
    if (o.allowNonLoopback !== true) {
      throw usageError(
        `${hostFlag} ${host} is not a loopback address: a proxy on the network is open to anyone who can reach it; add --allow-non-loopback and --users-file to listen there`,
      );
    }
    if (o.users === undefined) {
      throw usageError(
        `${hostFlag} ${host} with --allow-non-loopback needs --users-file (username:password lines): clients on the network must authenticate`,
      );
    }
  }
  if (
    o.admin &&
    o.admin.socketPath === undefined &&
    !isLoopbackAddress(o.admin.host ?? "127.0.0.1")
  ) {
    const flag = flags.adminHost !== undefined ? "--admin-host" : "the config file's admin.host";
    throw usageError(
      `${flag} ${o.admin.host} is not a loopback address: the admin API is never exposed`,
    );
  }
}

/** A library error in the terms of this command's flags (same code, same one line). */
function inFlagTerms(error: unknown, o: GateProxyOptions): unknown {
  if (!(error instanceof SynlimitError) || error.code !== "SYNLIMIT_ADDRESS_IN_USE") return error;
  const admin = o.admin || null;
  const isAdmin = /^admin API/.test(error.message);
  const cause = (error.cause as { code?: string } | undefined)?.code ?? "error";
  const why = cause === "EADDRINUSE" ? "is already in use" : `cannot be bound (${cause})`;
  let text: string;
  if (isAdmin && admin?.socketPath) {
    text = `--admin-socket ${admin.socketPath} ${why}: another gate may be running; remove a stale socket file or choose another path`;
  } else if (isAdmin) {
    text = `admin API ${formatEndpoint({ host: admin?.host ?? "127.0.0.1", port: admin?.port ?? DEFAULT_ADMIN_PORT })} ${why}: choose another --admin-port (0: any free port) or --no-admin`;
  } else {
    text = `${formatEndpoint({ host: o.host ?? "127.0.0.1", port: o.port ?? 1080 })} ${why}: choose another --port (0: any free port)`;
  }
  return new SynlimitError("SYNLIMIT_ADDRESS_IN_USE", text, {
    cause: error,
  });
}

type Message = Record<string, unknown>;

/** The proxy never logs; the CLI turns its events into log lines (never a password: none is published). */
function subscribeLogs(log: Logger): () => void {
  // Only channels whose lines would be written: a channel nobody listens to
  // costs the proxy nothing per connection.
  const subs: Array<[string, pino.Level, (m: unknown) => void]> = [
    [
      proxyChannelNames.limit,
      "warn",
      (m) => {
        const { message, ...rest } = m as Message;
        log.warn(rest, String(message));
      },
    ],
    [proxyChannelNames.denied, "warn", (m) => log.warn(m as Message, "destination denied")],
    [
      proxyChannelNames.attempt,
      "info",
      (m) => {
        const e = m as Message;
        if (e.outcome === "connected") log.debug(e, "attempt connected");
        else log.info(e, `attempt ${String(e.outcome)}`);
      },
    ],
    [proxyChannelNames.clientError, "info", (m) => log.info(m as Message, "client closed")],
    [proxyChannelNames.request, "debug", (m) => log.debug(m as Message, "request")],
    [proxyChannelNames.client, "trace", (m) => log.trace(m as Message, "client")],
    [proxyChannelNames.limits, "info", (m) => log.info(m as Message, "limits changed")],
    [
      proxyChannelNames.fdLimit,
      "warn",
      (m) => {
        // One line per episode at its start; its end only in debug logs.
        const e = m as Message;
        if (e.event === "start")
          log.warn(e, "out of file descriptors: new requests are told to try later");
        else log.debug(e, "file descriptors available again");
      },
    ],
    [
      proxyChannelNames.admin,
      "info",
      (m) => {
        const e = m as Message;
        if (e.method === "GET" || e.method === "HEAD") log.debug(e, "admin request");
        else log.info(e, "admin request");
      },
    ],
  ];
  const active = subs.filter(([, level]) => log.isLevelEnabled(level));
  for (const [name, , fn] of active) diagnostics.subscribe(name, fn);
  return () => {
    for (const [name, , fn] of active) diagnostics.unsubscribe(name, fn);
  };
}

import net from "node:net";
import type { Clock } from "../clock.js";
import { type Endpoint, formatEndpoint } from "../errors.js";
import type { ProxySpec } from "./address.js";
import { type Dial, type DialFn, type DialOptions, directDial, SocketDial } from "./dial.js";

/** Dials directly, or through the proxy: then the attempt that counts is the proxy's own. */
export function dialerFor(via: ProxySpec | null, clock: Clock): DialFn {
  if (!via) return (target, options) => directDial(target, clock, options);
  if (via.protocol === "socks5") return (target, options) => socksDial(via, target, clock, options);
  return (target, options) => httpConnectDial(via, target, clock, options);
}

// SOCKS5 reply codes (RFC 1928 §6) as the errno a direct connect would give.
const socksReplyCodes: Record<string, string> = {
  ConnectionRefused: "ECONNREFUSED",
  HostUnreachable: "EHOSTUNREACH",
  NetworkUnreachable: "ENETUNREACH",
  TTLExpired: "ETIMEDOUT",
  NotAllowed: "EACCES",
};

// The socks client's own handshake deadline; the probe decides when to give
// up, so it is set beyond any run (setTimeout's maximum).
const NO_DEADLINE_MS = 2_147_483_647;

// Loaded on first use: it is most of the probe's start-up time, and only
// --via socks5:// needs it (the helper process included).
let socks: Promise<typeof import("socks")> | null = null;
const loadSocks = () => {
  socks ??= import("socks");
  return socks;
};

/**
 * SOCKS5 CONNECT with the `socks` client over a socket the probe owns, so
 * destroying that socket cancels the attempt at any stage.
 */
function socksDial(
  proxy: ProxySpec,
  target: Endpoint,
  clock: Clock,
  options: DialOptions = {},
): Dial {
  const socket = net.connect({ host: proxy.host, port: proxy.port });
  const dial = new SocketDial(target, socket, clock, true, options.keep === true);
  watchWrites(socket, (chunk) => {
    // The greeting is 3 bytes; the CONNECT request (05 01 00 ATYP …) is longer.
    if (chunk.length >= 7 && chunk[0] === 5 && chunk[1] === 1) dial.markSent();
  });
  socket.once("connect", () => {
    loadSocks()
      .then(({ SocksClient }) => {
        if (dial.outcome) return;
        return SocksClient.createConnection({
          command: "connect",
          destination: { host: target.host, port: target.port },
          proxy: {
            host: proxy.host,
            port: proxy.port,
            type: 5,
            ...(proxy.username !== undefined ? { userId: proxy.username } : {}),
            ...(proxy.password !== undefined ? { password: proxy.password } : {}),
          },
          existing_socket: socket,
          timeout: NO_DEADLINE_MS,
        }).then(() => dial.succeed());
      })
      .catch((error: Error) => {
        const reply = /rejected connection - (\w+)/.exec(error.message)?.[1];
        if (reply) dial.fail(socksReplyCodes[reply] ?? `SOCKS5_${reply}`, error.message, "target");
        else dial.fail("EPROTO", `SOCKS5 proxy: ${error.message}`, "proxy");
      });
  });
  return dial;
}

const MAX_RESPONSE_HEAD = 16 * 1024;

/** HTTP CONNECT (RFC 9110 §9.3.6): 2xx means the proxy's connect to the target succeeded. */
function httpConnectDial(
  proxy: ProxySpec,
  target: Endpoint,
  clock: Clock,
  options: DialOptions = {},
): Dial {
  const socket = net.connect({ host: proxy.host, port: proxy.port });
  const dial = new SocketDial(target, socket, clock, true, options.keep === true);
  const authority = formatEndpoint(target);
  socket.once("connect", () => {
    const auth =
      proxy.username !== undefined
        ? `Proxy-Authorization: Basic ${Buffer.from(`${proxy.username}:${proxy.password ?? ""}`).toString("base64")}\r\n`
        : "";
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth}\r\n`, () =>
      dial.markSent(),
    );
  });
  let head = "";
  socket.on("data", (chunk: Buffer) => {
    if (dial.outcome) return;
    head += chunk.toString("latin1");
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (head.length > MAX_RESPONSE_HEAD)
        dial.fail("EPROTO", "HTTP proxy: response head too long", "proxy");
      return;
    }
    const statusLine = head.slice(0, head.indexOf("\r\n"));
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
    if (!status) dial.fail("EPROTO", `HTTP proxy: not an HTTP response: ${statusLine}`, "proxy");
    else if (status.startsWith("2")) dial.succeed();
    else if (status === "407") dial.fail("EACCES", `HTTP proxy: ${statusLine}`, "proxy");
    else dial.fail(`HTTP_${status}`, `HTTP proxy: ${statusLine}`, "target");
  });
  return dial;
}

function watchWrites(socket: net.Socket, onChunk: (chunk: Buffer) => void): void {
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    const [chunk] = args;
    if (Buffer.isBuffer(chunk)) onChunk(chunk);
    return write(...args);
  }) as typeof socket.write;
}

import { needMore, ok, type ParseFailure, type ParseResult } from "./parse-result.js";

export interface HttpFailure extends ParseFailure {
  /** The status to answer with before closing. */
  readonly status: number;
}

export interface HttpProxyRequest {
  readonly kind: "connect" | "forward";
  readonly method: string;
  readonly version: "1.0" | "1.1";
  /** Header lines in order, names as sent. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** As sent: a name, an IPv4 literal or an IPv6 literal without brackets. */
  readonly host: string;
  readonly port: number;
  /** Forwarding only: the origin-form target (path and query) for the upstream. */
  readonly path: string;
  readonly proxyAuthorization: string | undefined;
}

export const defaultMaxHeaderBytes = 16 * 1024;
const MAX_HEADERS = 100;
const MAX_HOST_LENGTH = 255;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: visible ASCII, obs-text, space and tab; no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const REQUEST_TARGET = /^[\x21-\x7e]+$/;

const fail = (status: number, reason: string): { kind: "error"; error: HttpFailure } => ({
  kind: "error",
  error: { status, reason },
});

/**
 * Parses a proxy request head (RFC 9112): CONNECT in authority-form, or any
 * method with an absolute `http://` URI. Strict on purpose: CRLF line ends
 * only, no folded lines, no duplicate framing headers, so what the proxy
 * reads is what the upstream would read.
 */
export function parseHttpHead(
  buf: Uint8Array,
  maxHeaderBytes: number = defaultMaxHeaderBytes,
): ParseResult<HttpProxyRequest, HttpFailure> {
  const end = indexOfHeadEnd(buf, Math.min(buf.length, maxHeaderBytes));
  if (end < 0) {
    if (buf.length >= maxHeaderBytes) return fail(431, "request head too large");
    // Reject garbage early instead of waiting for a terminator that never comes.
    if (!plausiblePrefix(buf)) return fail(400, "not an HTTP request");
    // A head ended by bare LFs would never end for this parser: say so now,
    // not at the handshake deadline.
    if (hasBareLineFeed(buf)) return fail(400, "bare LF in request head (CRLF required)");
    return needMore;
  }
  const text = Buffer.from(buf.subarray(0, end)).toString("latin1");
  const lines = text.split("\r\n");
  const requestLine = lines[0] ?? "";
  const parts = requestLine.split(" ");
  if (parts.length !== 3) return fail(400, "malformed request line");
  const [method = "", target = "", versionText = ""] = parts;
  if (!TOKEN.test(method)) return fail(400, "malformed method");
  if (!REQUEST_TARGET.test(target)) return fail(400, "malformed request target");
  const vm = /^HTTP\/1\.([01])$/.exec(versionText);
  if (!vm) return fail(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  const version = vm[1] === "0" ? "1.0" : "1.1";

  const headers: Array<readonly [string, string]> = [];
  const seen = new Map<string, number>();
  for (const line of lines.slice(1)) {
    if (line.length === 0) continue;
    if (headers.length >= MAX_HEADERS) return fail(431, "too many header fields");
    if (line.includes("\r") || line.includes("\n")) return fail(400, "bare CR or LF in head");
    if (line.startsWith(" ") || line.startsWith("\t")) return fail(400, "folded header line");
    const colon = line.indexOf(":");
    if (colon <= 0) return fail(400, "malformed header line");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return fail(400, "malformed header name");
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (!FIELD_VALUE.test(value)) return fail(400, "malformed header value");
    const lower = name.toLowerCase();
    seen.set(lower, (seen.get(lower) ?? 0) + 1);
    headers.push([name, value]);
  }
  for (const unique of ["host", "content-length", "proxy-authorization", "transfer-encoding"]) {
    if ((seen.get(unique) ?? 0) > 1) return fail(400, `duplicate ${unique} header`);
  }
  if (seen.has("content-length") && seen.has("transfer-encoding")) {
    return fail(400, "both content-length and transfer-encoding");
  }
  const framing = checkFraming(headers, version);
  if (framing) return fail(400, framing);
  const proxyAuthorization = headers.find(([n]) => n.toLowerCase() === "proxy-authorization")?.[1];
  const common = { method, version, headers, proxyAuthorization } as const;

  if (method === "CONNECT") {
    const authority = parseAuthority(target, null);
    if ("error" in authority) return fail(400, authority.error);
    return ok({ kind: "connect", ...common, ...authority, path: "" }, end + 4);
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(target);
  if (!m) return fail(400, "a proxy request needs an absolute http:// URI or CONNECT");
  if ((m[1] ?? "").toLowerCase() !== "http") {
    return fail(400, "only http:// is forwarded; use CONNECT for other schemes");
  }
  if (target.includes("#")) return fail(400, "fragment in request target");
  const authority = parseAuthority(m[2] ?? "", 80);
  if ("error" in authority) return fail(400, authority.error);
  let path = m[3] ?? "";
  if (path === "") path = "/";
  else if (path.startsWith("?")) path = `/${path}`;
  return ok({ kind: "forward", ...common, ...authority, path }, end + 4);
}

function parseAuthority(
  text: string,
  defaultPort: number | null,
): { host: string; port: number } | { error: string } {
  if (text.includes("@")) return { error: "user information in authority" };
  let host: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return { error: "unterminated IPv6 literal" };
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) return { error: "junk after IPv6 literal" };
    portText = rest === "" ? undefined : rest.slice(1);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon >= 0 && text.indexOf(":") !== colon)
      return { error: "IPv6 literal without brackets" };
    host = colon >= 0 ? text.slice(0, colon) : text;
    portText = colon >= 0 ? text.slice(colon + 1) : undefined;
  }
  if (host.length === 0) return { error: "empty host" };
  if (host.length > MAX_HOST_LENGTH) return { error: "host name longer than 255 bytes" };
  let port: number;
  if (portText === undefined) {
    if (defaultPort === null) return { error: "CONNECT needs host:port" };
    port = defaultPort;
  } else {
    if (!/^\d{1,5}$/.test(portText)) return { error: "malformed port" };
    port = Number(portText);
  }
  if (port < 1 || port > 65535) return { error: "port out of range" };
  return { host, port };
}

// Fields that say where the body ends, or which host it is for: the proxy
// pipes the body raw, so the upstream must read the same framing it did.
const FRAMING = new Set(["content-length", "transfer-encoding", "host"]);

/** Why the body's framing would be ambiguous upstream, or null when it is not. */
function checkFraming(
  headers: ReadonlyArray<readonly [string, string]>,
  version: "1.0" | "1.1",
): string | null {
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === "connection") {
      for (const token of value.split(",")) {
        if (FRAMING.has(token.trim().toLowerCase())) {
          return `Connection names ${token.trim().toLowerCase()}, a framing header`;
        }
      }
    } else if (lower === "content-length") {
      if (!/^\d{1,15}$/.test(value)) return "malformed content-length";
    } else if (lower === "transfer-encoding") {
      if (version === "1.0") return "transfer-encoding in an HTTP/1.0 request";
      const codings = value.split(",").map((c) => c.trim().toLowerCase());
      // RFC 9112 §6.3: a request whose final coding is not chunked has no
      // determinable length.
      if (
        codings[codings.length - 1] !== "chunked" ||
        codings.indexOf("chunked") !== codings.length - 1
      )
        return "transfer-encoding must end with chunked, once";
    }
  }
  return null;
}

/** True when a line feed appears without its carriage return. */
function hasBareLineFeed(buf: Uint8Array): boolean {
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (i === 0 || buf[i - 1] !== 13) return true;
  }
  return false;
}

function indexOfHeadEnd(buf: Uint8Array, limit: number): number {
  for (let i = 0; i + 3 < limit; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

// The first bytes must look like a method token then a space.
function plausiblePrefix(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i] as number;
    if (c === 0x20) return i > 0;
    if (c < 0x21 || c > 0x7e) return false;
    if (i >= 32) return false;
  }
  return true;
}

/** The user and password of a `Basic` Proxy-Authorization value, or null. */
export function parseBasicCredentials(
  value: string | undefined,
): { username: string; password: string } | null {
  if (!value) return null;
  const m = /^basic[ ]+([A-Za-z0-9+/]+=*)$/i.exec(value.trim());
  if (!m?.[1]) return null;
  const decoded = Buffer.from(m[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon <= 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

// Hop-by-hop fields (RFC 9110 §7.6.1) and the proxy's own credentials never
// travel upstream.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "host",
]);

/**
 * The head sent upstream for a forwarded request: origin-form target, Host
 * from the URI, hop-by-hop fields dropped, `Connection: close` so one
 * client connection carries one upstream exchange.
 */
export function encodeForwardHead(req: HttpProxyRequest): Buffer {
  const named = new Set(
    req.headers
      .filter(([n]) => n.toLowerCase() === "connection")
      .flatMap(([, v]) => v.split(",").map((s) => s.trim().toLowerCase())),
  );
  const host = req.host.includes(":") ? `[${req.host}]` : req.host;
  const authority = req.port === 80 ? host : `${host}:${req.port}`;
  let head = `${req.method} ${req.path} HTTP/${req.version}\r\nHost: ${authority}\r\n`;
  for (const [name, value] of req.headers) {
    const lower = name.toLowerCase();
    // Framing headers always travel: the body after the head is piped raw.
    // (The parser refuses a Connection header that names one.)
    if (lower === "content-length" || lower === "transfer-encoding") {
      head += `${name}: ${value}\r\n`;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    head += `${name}: ${value}\r\n`;
  }
  head += "Connection: close\r\n\r\n";
  return Buffer.from(head, "latin1");
}

const reasons: Record<number, string> = {
  200: "Connection Established",
  400: "Bad Request",
  403: "Forbidden",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** A complete response that ends the exchange (the connection is closed after it). */
export function encodeResponse(
  status: number,
  body: string,
  extraHeaders: ReadonlyArray<readonly [string, string]> = [],
): Buffer {
  const text = `${body}\n`;
  let head = `HTTP/1.1 ${status} ${reasons[status] ?? "Error"}\r\n`;
  for (const [n, v] of extraHeaders) head += `${n}: ${v}\r\n`;
  head += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n`;
  return Buffer.from(head + text, "utf8");
}

export const connectEstablished = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n");

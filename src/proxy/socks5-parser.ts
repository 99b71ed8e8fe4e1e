import net from "node:net";
import { canonicalAddress } from "./acl.js";
import { needMore, ok, type ParseFailure, type ParseResult } from "./parse-result.js";

/** RFC 1928 §6 reply codes. */
export const Rep = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export const Method = { noAuth: 0x00, userPass: 0x02, noAcceptable: 0xff } as const;

export interface SocksFailure extends ParseFailure {
  /** The REP code to answer with before closing; absent: close without a reply. */
  readonly reply?: number;
}

export interface Greeting {
  readonly methods: readonly number[];
}

export interface UserPass {
  readonly username: string;
  readonly password: string;
}

export interface SocksRequest {
  readonly command: number;
  readonly addressType: "ipv4" | "ipv6" | "domain";
  /** Dotted quad, IPv6 text, or the domain bytes as latin1 (validated later). */
  readonly host: string;
  readonly port: number;
}

/** The longest message each phase may need, so a parser can never wait for more forever. */
export const maxGreetingBytes = 2 + 255;
export const maxUserPassBytes = 3 + 255 + 255;
export const maxRequestBytes = 4 + 1 + 255 + 2;

const fail = (reason: string, reply?: number): { kind: "error"; error: SocksFailure } => ({
  kind: "error",
  error: reply === undefined ? { reason } : { reason, reply },
});

/** VER NMETHODS METHODS… (RFC 1928 §3). */
export function parseGreeting(buf: Uint8Array): ParseResult<Greeting, SocksFailure> {
  if (buf.length < 1) return needMore;
  if (buf[0] !== 5) return fail("not SOCKS version 5");
  if (buf.length < 2) return needMore;
  const n = buf[1] as number;
  if (n === 0) return fail("greeting offers no method");
  if (buf.length < 2 + n) return needMore;
  return ok({ methods: Array.from(buf.subarray(2, 2 + n)) }, 2 + n);
}

/** VER ULEN UNAME PLEN PASSWD (RFC 1929 §2). */
export function parseUserPass(buf: Uint8Array): ParseResult<UserPass, SocksFailure> {
  if (buf.length < 1) return needMore;
  if (buf[0] !== 1) return fail("not username/password subnegotiation version 1");
  if (buf.length < 2) return needMore;
  const ulen = buf[1] as number;
  if (ulen === 0) return fail("empty username");
  if (buf.length < 3 + ulen) return needMore;
  const plen = buf[2 + ulen] as number;
  const end = 3 + ulen + plen;
  if (buf.length < end) return needMore;
  const username = Buffer.from(buf.subarray(2, 2 + ulen)).toString("utf8");
  const password = Buffer.from(buf.subarray(3 + ulen, end)).toString("utf8");
  return ok({ username, password }, end);
}

/** VER CMD RSV ATYP DST.ADDR DST.PORT (RFC 1928 §4). */
export function parseRequest(buf: Uint8Array): ParseResult<SocksRequest, SocksFailure> {
  if (buf.length < 1) return needMore;
  if (buf[0] !== 5) return fail("request is not SOCKS version 5", Rep.generalFailure);
  if (buf.length < 4) return needMore;
  const command = buf[1] as number;
  if (buf[2] !== 0) return fail("reserved byte is not zero", Rep.generalFailure);
  const atyp = buf[3] as number;
  let host: string;
  let addressType: SocksRequest["addressType"];
  let at: number;
  if (atyp === 1) {
    if (buf.length < 10) return needMore;
    host = Array.from(buf.subarray(4, 8)).join(".");
    addressType = "ipv4";
    at = 8;
  } else if (atyp === 4) {
    if (buf.length < 22) return needMore;
    host = ipv6Text(buf.subarray(4, 20));
    addressType = "ipv6";
    at = 20;
  } else if (atyp === 3) {
    if (buf.length < 5) return needMore;
    const len = buf[4] as number;
    if (len === 0) return fail("empty domain name", Rep.hostUnreachable);
    if (buf.length < 5 + len + 2) return needMore;
    host = Buffer.from(buf.subarray(5, 5 + len)).toString("latin1");
    addressType = "domain";
    at = 5 + len;
  } else {
    return fail("unknown address type", Rep.addressTypeNotSupported);
  }
  const port = ((buf[at] as number) << 8) | (buf[at + 1] as number);
  // Answered only once the whole request is in, so the reply is not mixed up
  // with a half-read message.
  if (command !== 1) return fail("only CONNECT is supported", Rep.commandNotSupported);
  if (port === 0) return fail("destination port 0", Rep.hostUnreachable);
  return ok({ command, addressType, host, port }, at + 2);
}

function ipv6Text(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) {
    groups.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  }
  return canonicalAddress(groups.join(":")) ?? groups.join(":");
}

// One buffer per method, shared by every client: sockets only read what
// they write, and a setup need not allocate its two-byte answer.
const methodMessages = new Map<number, Buffer>();

/** The method selection message: VER METHOD (a shared buffer: never write into it). */
export function encodeMethod(method: number): Buffer {
  let m = methodMessages.get(method);
  if (!m) {
    m = Buffer.from([5, method]);
    methodMessages.set(method, m);
  }
  return m;
}

/** The RFC 1929 status: 0 success, anything else failure (the server then closes). */
export function encodeAuthStatus(success: boolean): Buffer {
  return Buffer.from([1, success ? 0 : 1]);
}

/**
 * A reply with well-formed BND fields: the upstream socket's local address
 * on success, 0.0.0.0:0 otherwise (RFC 1928 requires the fields, and some
 * clients read exactly 10 bytes for an IPv4 reply).
 */
export function encodeReply(rep: number, bound?: { host: string; port: number }): Buffer {
  // Every successful setup comes here with Node's dotted IPv4 text: written
  // straight into the reply, without canonicalising it as text first.
  const v4 = bound ? dottedQuad(bound.host) : -1;
  if (bound && v4 >= 0) {
    const out = Buffer.allocUnsafe(10);
    out[0] = 5;
    out[1] = rep;
    out[2] = 0;
    out[3] = 1;
    out.writeUInt32BE(v4, 4);
    out.writeUInt16BE(bound.port, 8);
    return out;
  }
  const host = bound ? canonicalAddress(bound.host) : null;
  const port = bound && host ? bound.port : 0;
  if (host && net.isIPv6(host)) {
    const out = Buffer.alloc(22);
    out.set([5, rep, 0, 4]);
    const c = expandIpv6(host);
    out.set(c, 4);
    out.writeUInt16BE(port, 20);
    return out;
  }
  const out = Buffer.alloc(10);
  out.set([5, rep, 0, 1]);
  if (host) out.set(host.split(".").map(Number), 4);
  out.writeUInt16BE(port, 8);
  return out;
}

function expandIpv6(text: string): number[] {
  const [head = "", tail = ""] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = text.includes("::")
    ? [...h, ...new Array<string>(8 - h.length - t.length).fill("0"), ...t]
    : h;
  return groups.flatMap((g) => {
    const v = Number.parseInt(g, 16);
    return [v >> 8, v & 255];
  });
}

/** A dotted-quad IPv4 address (four decimal parts, 0–255, no leading zeros) as a number, or -1. */
function dottedQuad(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 255) return -1;
      value = value * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      digits++;
      if (digits > 3) return -1;
    } else {
      return -1;
    }
  }
  return parts === 4 ? value : -1;
}

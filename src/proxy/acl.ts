import { invalidOption } from "../errors.js";
import { isLoopbackAddress, isLoopbackHost } from "../loopback.js";

/**
 * Destination access control on canonical forms. A client chooses how to
 * spell a destination; the kernel accepts many spellings of one address
 * (inet_aton's `127.1`, `0x7f000001`, `2130706433`, `0177.0.0.1`; IPv4-mapped
 * IPv6; trailing dots; any letter case). Every spelling is reduced to one
 * form before it is compared, and addresses a name resolves to are checked
 * again after resolution, so no spelling and no DNS answer bypasses a rule.
 */

export type CanonicalHost =
  | { readonly kind: "ipv4"; readonly address: string; readonly value: number }
  | { readonly kind: "ipv6"; readonly address: string; readonly bytes: Uint8Array }
  | { readonly kind: "name"; readonly name: string };

const MAX_NAME_LENGTH = 253;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The canonical form of a host as a client sent it, or null when it is
 * neither an address nor a valid DNS name (which is then refused, never
 * looked up).
 */
export function canonicalHost(input: string): CanonicalHost | null {
  if (typeof input !== "string" || input.length === 0 || input.length > 1024) return null;
  // Every SOCKS5 IPv4 request and every resolved address takes this path.
  const quad = canonicalQuad(input);
  if (quad !== null) return { kind: "ipv4", address: input, value: quad };
  let host = input.toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host.includes(":")) return ipv6(host);
  while (host.endsWith(".")) host = host.slice(0, -1);
  if (host.length === 0) return null;
  const v4 = parseInetAton(host);
  if (v4 !== null) return ipv4FromValue(v4);
  if (host.length > MAX_NAME_LENGTH) return null;
  const labels = host.split(".");
  if (!labels.every((l) => LABEL.test(l))) return null;
  // A name whose last label is all digits is an address getaddrinfo would
  // reject or reinterpret; refusing it keeps the two views in agreement.
  if (/^\d+$/.test(labels[labels.length - 1] ?? "")) return null;
  return { kind: "name", name: host };
}

/** The value of `a.b.c.d` already in canonical form (decimal, no leading zeros), else null. */
function canonicalQuad(text: string): number | null {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return null;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return null; // a leading zero: octal to inet_aton
      part = part * 10 + (c - 0x30);
      if (part > 255) return null;
      digits++;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return value * 256 + part;
}

/** Canonical text of a resolved or literal address (IPv4-mapped IPv6 becomes IPv4). */
export function canonicalAddress(address: string): string | null {
  const c = canonicalHost(address);
  return c && c.kind !== "name" ? c.address : null;
}

function ipv4FromValue(value: number): CanonicalHost {
  const address = [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
  return { kind: "ipv4", address, value: value >>> 0 };
}

// inet_aton(3): one to four parts, each decimal, octal (leading 0) or hex
// (0x); the last part fills the remaining bytes.
function parseInetAton(text: string): number | null {
  const parts = text.split(".");
  if (parts.length > 4) return null;
  const values: number[] = [];
  for (const p of parts) {
    let v: number;
    if (/^0x[0-9a-f]*$/.test(p)) v = p.length === 2 ? 0 : Number.parseInt(p.slice(2), 16);
    else if (/^0[0-7]*$/.test(p)) v = p.length === 1 ? 0 : Number.parseInt(p.slice(1), 8);
    else if (/^[1-9][0-9]*$/.test(p)) v = Number(p);
    else return null;
    if (!Number.isSafeInteger(v)) return null;
    values.push(v);
  }
  const last = values.pop() as number;
  if (values.some((v) => v > 255)) return null;
  const restBytes = 4 - values.length;
  if (last >= 2 ** (8 * restBytes)) return null;
  let value = 0;
  for (const v of values) value = value * 256 + v;
  return value * 2 ** (8 * restBytes) + last;
}

function ipv6(text: string): CanonicalHost | null {
  if (text.includes("%")) return null; // zone ids name a local interface, not a destination
  const bytes = parseIpv6(text);
  if (!bytes) return null;
  // IPv4-mapped (::ffff:a.b.c.d) reaches the IPv4 host: compare it as one.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255) {
    const v =
      (((bytes[12] as number) << 24) |
        ((bytes[13] as number) << 16) |
        ((bytes[14] as number) << 8) |
        (bytes[15] as number)) >>>
      0;
    return ipv4FromValue(v);
  }
  return { kind: "ipv6", address: formatIpv6(bytes), bytes };
}

function parseIpv6(text: string): Uint8Array | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === "") return [];
    const groups = part.split(":");
    const out: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] as string;
      if (i === groups.length - 1 && g.includes(".")) {
        if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(g)) return null;
        const b = g.split(".").map(Number);
        if (b.some((x) => x > 255)) return null;
        out.push(
          ((b[0] as number) << 8) | (b[1] as number),
          ((b[2] as number) << 8) | (b[3] as number),
        );
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
        out.push(Number.parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0] as string);
  const tail = halves.length === 2 ? parse(halves[1] as string) : [];
  if (!head || !tail) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return null;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 255;
  });
  return bytes;
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest zero run as `::`. */
function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

type Rule =
  | { kind: "any"; text: string }
  | { kind: "cidr4"; text: string; network: number; prefix: number }
  | { kind: "cidr6"; text: string; network: Uint8Array; prefix: number }
  | { kind: "name"; text: string; name: string }
  | { kind: "suffix"; text: string; suffix: string };

/**
 * Parses one rule: `*` (everything), an address or CIDR block (any spelling
 * canonicalHost accepts), a DNS name, or `*.example.com` (subdomains only).
 */
export function parseRule(text: string): Rule {
  if (typeof text !== "string") throw invalidOption("acl rule", "a string", text);
  const t = text.trim();
  if (t === "*") return { kind: "any", text: t };
  if (t.startsWith("*.")) {
    const c = canonicalHost(t.slice(2));
    if (c?.kind !== "name") throw invalidOption("acl rule", "*.<dns name>", text);
    return { kind: "suffix", text: t, suffix: `.${c.name}` };
  }
  const slash = t.lastIndexOf("/");
  const addr = slash >= 0 ? t.slice(0, slash) : t;
  const c = canonicalHost(addr);
  if (!c) throw invalidOption("acl rule", "*, an address, CIDR block or DNS name", text);
  if (c.kind === "name") {
    if (slash >= 0) throw invalidOption("acl rule", "a prefix length only after an address", text);
    return { kind: "name", text: t, name: c.name };
  }
  const max = c.kind === "ipv4" ? 32 : 128;
  const prefixText = slash >= 0 ? t.slice(slash + 1) : String(max);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    throw invalidOption("acl rule", `a prefix length from 0 to ${max}`, text);
  }
  const prefix = Number(prefixText);
  if (c.kind === "ipv4") {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    return { kind: "cidr4", text: t, network: (c.value & mask) >>> 0, prefix };
  }
  return { kind: "cidr6", text: t, network: maskBytes(c.bytes, prefix), prefix };
}

function maskBytes(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const bits = Math.max(0, Math.min(8, prefix - 8 * i));
    out[i] = (bytes[i] as number) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

function matches(rule: Rule, host: CanonicalHost): boolean {
  switch (rule.kind) {
    case "any":
      return true;
    case "name":
      return host.kind === "name" && host.name === rule.name;
    case "suffix":
      return host.kind === "name" && host.name.endsWith(rule.suffix);
    case "cidr4":
      if (host.kind !== "ipv4") return false;
      return (
        rule.prefix === 0 ||
        host.value >>> (32 - rule.prefix) === rule.network >>> (32 - rule.prefix)
      );
    case "cidr6": {
      if (host.kind !== "ipv6") return false;
      const masked = maskBytes(host.bytes, rule.prefix);
      return masked.every((b, i) => b === rule.network[i]);
    }
  }
}

export type AclVerdict = { allowed: true } | { allowed: false; rule: string };

/**
 * Allow and deny lists. Deny wins; with a non-empty allow list a destination
 * must match it, by name (as requested) or by address (as resolved).
 */
export class Acl {
  readonly #allow: readonly Rule[];
  readonly #deny: readonly Rule[];

  constructor(allow: readonly string[] = [], deny: readonly string[] = []) {
    if (!Array.isArray(allow)) throw invalidOption("allow", "an array of rules", allow);
    if (!Array.isArray(deny)) throw invalidOption("deny", "an array of rules", deny);
    this.#allow = allow.map(parseRule);
    this.#deny = deny.map(parseRule);
  }

  get rules(): { allow: string[]; deny: string[] } {
    return { allow: this.#allow.map((r) => r.text), deny: this.#deny.map((r) => r.text) };
  }

  /** Checks the requested host (a name or an address) before anything is resolved. */
  checkRequested(host: CanonicalHost): AclVerdict {
    const denied = this.#deny.find((r) => matches(r, host));
    if (denied) return { allowed: false, rule: `deny ${denied.text}` };
    // A name may still be allowed by the address it resolves to.
    if (
      host.kind !== "name" &&
      this.#allow.length > 0 &&
      !this.#allow.some((r) => matches(r, host))
    ) {
      return { allowed: false, rule: "not in allow list" };
    }
    return { allowed: true };
  }

  /** Checks one resolved address of `requested` before it is dialled. */
  checkResolved(requested: CanonicalHost, address: CanonicalHost): AclVerdict {
    const denied = this.#deny.find((r) => matches(r, address));
    if (denied) return { allowed: false, rule: `deny ${denied.text}` };
    if (this.#allow.length === 0) return { allowed: true };
    if (this.#allow.some((r) => matches(r, address) || matches(r, requested))) {
      return { allowed: true };
    }
    return { allowed: false, rule: "not in allow list" };
  }
}

/** 0.0.0.0/8 and `::` reach this host on Linux; they are never a real destination. */
export function isUnspecified(host: CanonicalHost): boolean {
  if (host.kind === "ipv4") return host.value >>> 24 === 0;
  if (host.kind === "ipv6") return host.bytes.every((b) => b === 0);
  return false;
}

export function isLoopback(host: CanonicalHost): boolean {
  return host.kind === "name" ? isLoopbackHost(host.name) : isLoopbackAddress(host.address);
}

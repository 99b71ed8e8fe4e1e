/** Link types this reader understands (tcpdump.org/linktypes.html). */
export const linkTypes = {
  NULL: 0, // BSD loopback: 4-byte address family in the capturing host's byte order
  ETHERNET: 1,
  RAW_OPENBSD: 12,
  RAW: 101,
  LOOP: 108, // OpenBSD loopback: address family in network byte order
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

const supported: ReadonlySet<number> = new Set(Object.values(linkTypes));

export function isSupportedLinkType(linkType: number): boolean {
  return supported.has(linkType);
}

export const SYN = 0x02;
export const RST = 0x04;
export const ACK = 0x10;

/** The TCP header fields a handshake needs. */
export interface Segment {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  flags: number;
  seq: number;
  ack: number;
  /** IPv4 identification; -1 for IPv6 (pktmon duplicates are told apart by it). */
  ipId: number;
}

/**
 * Decodes a handshake segment (SYN or RST set) from a frame; null for
 * anything else — data segments, ARP, UDP, fragments, runts — before any
 * string is built, so a capture full of data costs little.
 */
export function decodeTcp(linkType: number, data: Buffer): Segment | null {
  let o: number;
  let etherType = -1;
  switch (linkType) {
    case linkTypes.ETHERNET: {
      if (data.length < 14) return null;
      etherType = data.readUInt16BE(12);
      o = 14;
      // 802.1Q / 802.1ad tags, possibly stacked.
      while ((etherType === 0x8100 || etherType === 0x88a8) && data.length >= o + 4) {
        etherType = data.readUInt16BE(o + 2);
        o += 4;
      }
      break;
    }
    case linkTypes.LINUX_SLL:
      if (data.length < 16) return null;
      etherType = data.readUInt16BE(14);
      o = 16;
      break;
    case linkTypes.LINUX_SLL2:
      if (data.length < 20) return null;
      etherType = data.readUInt16BE(0);
      o = 20;
      break;
    case linkTypes.NULL:
    case linkTypes.LOOP: {
      if (data.length < 4) return null;
      const family =
        linkType === linkTypes.LOOP
          ? data.readUInt32BE(0)
          : data[0] !== 0
            ? data.readUInt32LE(0)
            : data.readUInt32BE(0);
      // AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
      if (family === 2) etherType = 0x0800;
      else if (family === 24 || family === 28 || family === 30) etherType = 0x86dd;
      else return null;
      o = 4;
      break;
    }
    case linkTypes.RAW:
    case linkTypes.RAW_OPENBSD:
    case linkTypes.IPV4:
    case linkTypes.IPV6:
      o = 0;
      break;
    default:
      return null;
  }
  if (etherType === -1) {
    if (data.length < 1) return null;
    const version = (data[0] as number) >> 4;
    etherType = version === 4 ? 0x0800 : version === 6 ? 0x86dd : -1;
  }
  if (etherType === 0x0800) return ipv4(data, o);
  if (etherType === 0x86dd) return ipv6(data, o);
  return null;
}

function ipv4(d: Buffer, o: number): Segment | null {
  if (d.length < o + 20 || (d[o] as number) >> 4 !== 4) return null;
  const ihl = ((d[o] as number) & 0x0f) * 4;
  if (ihl < 20 || d[o + 9] !== 6) return null;
  // A non-first fragment has no TCP header.
  if ((d.readUInt16BE(o + 6) & 0x1fff) !== 0) return null;
  if (!handshake(d, o + ihl)) return null;
  const src = `${d[o + 12]}.${d[o + 13]}.${d[o + 14]}.${d[o + 15]}`;
  const dst = `${d[o + 16]}.${d[o + 17]}.${d[o + 18]}.${d[o + 19]}`;
  return tcp(d, o + ihl, src, dst, d.readUInt16BE(o + 4));
}

function ipv6(d: Buffer, o: number): Segment | null {
  if (d.length < o + 40 || (d[o] as number) >> 4 !== 6) return null;
  let next = d[o + 6] as number;
  let p = o + 40;
  // Hop-by-hop, routing, destination options: skip; a fragment header: give up.
  while (next === 0 || next === 43 || next === 60) {
    if (d.length < p + 2) return null;
    next = d[p] as number;
    p += ((d[p + 1] as number) + 1) * 8;
  }
  if (next !== 6 || !handshake(d, p)) return null;
  return tcp(d, p, v6(d, o + 8), v6(d, o + 24), -1);
}

function v6(d: Buffer, o: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(d.readUInt16BE(o + i * 2).toString(16));
  // RFC 5952: the longest run of two or more zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

function handshake(d: Buffer, o: number): boolean {
  return d.length >= o + 14 && ((d[o + 13] as number) & (SYN | RST)) !== 0;
}

function tcp(d: Buffer, o: number, src: string, dst: string, ipId: number): Segment | null {
  if (d.length < o + 14) return null;
  return {
    src,
    dst,
    srcPort: d.readUInt16BE(o),
    dstPort: d.readUInt16BE(o + 2),
    seq: d.readUInt32BE(o + 4),
    ack: d.readUInt32BE(o + 8),
    flags: d[o + 13] as number,
    ipId,
  };
}

/**
 * Hand-built captures for the reader's tests: TCP handshake segments over
 * IPv4/IPv6, wrapped in each link type, written as pcap (either byte order,
 * µs or ns) or pcapng (either byte order, any tsresol). Addresses are
 * loopback only.
 */
import net from "node:net";

export interface Packet {
  timeMs: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  flags: number;
  seq: number;
  ack?: number;
  ipId?: number;
  payload?: number;
}

function v6bytes(a: string): Buffer {
  const [head, tail] = a.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => {
    b.writeUInt16BE(Number.parseInt(g || "0", 16), i * 2);
  });
  return b;
}

export function ipPacket(p: Packet): Buffer {
  const tcp = Buffer.alloc(20 + (p.payload ?? 0));
  tcp.writeUInt16BE(p.srcPort, 0);
  tcp.writeUInt16BE(p.dstPort, 2);
  tcp.writeUInt32BE(p.seq >>> 0, 4);
  tcp.writeUInt32BE((p.ack ?? 0) >>> 0, 8);
  tcp[12] = 5 << 4;
  tcp[13] = p.flags;
  if (net.isIPv6(p.src)) {
    const ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(tcp.length, 4);
    ip[6] = 6;
    ip[7] = 64;
    v6bytes(p.src).copy(ip, 8);
    v6bytes(p.dst).copy(ip, 24);
    return Buffer.concat([ip, tcp]);
  }
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + tcp.length, 2);
  ip.writeUInt16BE(p.ipId ?? 0, 4);
  ip[8] = 64;
  ip[9] = 6;
  Buffer.from(p.src.split(".").map(Number)).copy(ip, 12);
  Buffer.from(p.dst.split(".").map(Number)).copy(ip, 16);
  return Buffer.concat([ip, tcp]);
}

/** Wraps an IP packet in a link-layer header. */
export function frame(
  linkType: number,
  ip: Buffer,
  options: { vlan?: boolean; nullBigEndian?: boolean } = {},
): Buffer {
  const v6 = (ip[0] as number) >> 4 === 6;
  const etherType = v6 ? 0x86dd : 0x0800;
  switch (linkType) {
    case 1: {
      const h = Buffer.alloc(options.vlan ? 18 : 14);
      if (options.vlan) {
        h.writeUInt16BE(0x8100, 12);
        h.writeUInt16BE(7, 14);
        h.writeUInt16BE(etherType, 16);
      } else h.writeUInt16BE(etherType, 12);
      return Buffer.concat([h, ip]);
    }
    case 113: {
      const h = Buffer.alloc(16);
      h.writeUInt16BE(etherType, 14);
      return Buffer.concat([h, ip]);
    }
    case 276: {
      const h = Buffer.alloc(20);
      h.writeUInt16BE(etherType, 0);
      return Buffer.concat([h, ip]);
    }
    case 0: {
      const h = Buffer.alloc(4);
      const af = v6 ? 30 : 2;
      if (options.nullBigEndian) h.writeUInt32BE(af);
      else h.writeUInt32LE(af);
      return Buffer.concat([h, ip]);
    }
    case 108: {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(v6 ? 24 : 2);
      return Buffer.concat([h, ip]);
    }
    default:
      return ip;
  }
}

export function pcap(
  linkType: number,
  frames: Array<{ timeMs: number; data: Buffer }>,
  options: { bigEndian?: boolean; nanos?: boolean } = {},
): Buffer {
  const be = options.bigEndian ?? false;
  const u32 = (b: Buffer, v: number, o: number) =>
    be ? b.writeUInt32BE(v >>> 0, o) : b.writeUInt32LE(v >>> 0, o);
  const u16 = (b: Buffer, v: number, o: number) =>
    be ? b.writeUInt16BE(v, o) : b.writeUInt16LE(v, o);
  const header = Buffer.alloc(24);
  u32(header, options.nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  u16(header, 2, 4);
  u16(header, 4, 6);
  u32(header, 65535, 16);
  u32(header, linkType, 20);
  const parts: Buffer[] = [header];
  for (const f of frames) {
    const r = Buffer.alloc(16);
    const sec = Math.floor(f.timeMs / 1000);
    const frac = Math.round((f.timeMs - sec * 1000) * (options.nanos ? 1e6 : 1e3));
    u32(r, sec, 0);
    u32(r, frac, 4);
    u32(r, f.data.length, 8);
    u32(r, f.data.length, 12);
    parts.push(r, f.data);
  }
  return Buffer.concat(parts);
}

/** pcapng with one section; `interfaces` link types, each frame on `iface` (default 0). */
export function pcapng(
  interfaces: number[],
  frames: Array<{ timeMs: number; data: Buffer; iface?: number }>,
  options: { bigEndian?: boolean; tsresol?: number } = {},
): Buffer {
  const be = options.bigEndian ?? false;
  const block = (type: number, body: Buffer) => {
    const len = 12 + Math.ceil(body.length / 4) * 4;
    const b = Buffer.alloc(len);
    const u32 = (v: number, o: number) =>
      be ? b.writeUInt32BE(v >>> 0, o) : b.writeUInt32LE(v >>> 0, o);
    u32(type, 0);
    u32(len, 4);
    body.copy(b, 8);
    u32(len, len - 4);
    return b;
  };
  const w32 = (v: number) => {
    const b = Buffer.alloc(4);
    if (be) b.writeUInt32BE(v >>> 0);
    else b.writeUInt32LE(v >>> 0);
    return b;
  };
  const w16 = (v: number) => {
    const b = Buffer.alloc(2);
    if (be) b.writeUInt16BE(v);
    else b.writeUInt16LE(v);
    return b;
  };
  const shbBody = Buffer.concat([w32(0x1a2b3c4d), w16(1), w16(0), Buffer.alloc(8, 0xff)]);
  const parts: Buffer[] = [block(0x0a0d0d0a, shbBody)];
  const resol = options.tsresol ?? 6;
  for (const lt of interfaces) {
    const opt = Buffer.concat([w16(9), w16(1), Buffer.from([resol, 0, 0, 0]), w16(0), w16(0)]);
    parts.push(block(1, Buffer.concat([w16(lt), w16(0), w32(65535), opt])));
  }
  const perMs = (resol & 0x80 ? 2 ** (resol & 0x7f) : 10 ** resol) / 1000;
  for (const f of frames) {
    const units = BigInt(Math.round(f.timeMs * perMs));
    const body = Buffer.concat([
      w32(f.iface ?? 0),
      w32(Number(units >> 32n)),
      w32(Number(units & 0xffffffffn)),
      w32(f.data.length),
      w32(f.data.length),
      f.data,
    ]);
    parts.push(block(6, body));
  }
  return Buffer.concat(parts);
}

import { invalidCapture } from "../errors.js";

/** One captured frame: its link type, time (ms since the epoch) and bytes as captured. */
export interface Frame {
  linkType: number;
  timeMs: number;
  data: Buffer;
}

export interface CaptureInfo {
  format: "pcap" | "pcapng";
  /** Bytes consumed so far. */
  offset: number;
  /** Set when the capture ended inside a packet or block: read up to there. */
  truncated: boolean;
}

/** Larger than any real snapshot or block (pcapng allows big blocks, 16 MiB is plenty). */
const MAX_RECORD_BYTES = 16 * 1024 * 1024;

const PCAPNG_SHB = 0x0a0d0d0a;

interface Interface {
  linkType: number;
  /** Timestamp units per millisecond. */
  unitsPerMs: number;
}

/**
 * Reads pcap and pcapng from a stream of chunks and yields frames as it goes:
 * memory holds one chunk and at most one partial record, whatever the
 * capture's size. A corrupt header throws a one-line SYNLIMIT_INVALID_CAPTURE
 * with the byte offset; a capture cut off mid-record ends early with
 * `info.truncated` set (the frames before it are still good).
 */
export async function* readCapture(
  chunks: AsyncIterable<Buffer>,
  where: string,
  info: CaptureInfo = { format: "pcap", offset: 0, truncated: false },
): AsyncGenerator<Frame> {
  let buf: Buffer = Buffer.alloc(0);
  let pos = 0;
  let base = 0; // file offset of buf[0]
  const iterator = chunks[Symbol.asyncIterator]();
  let done = false;
  /** Ensures `n` bytes from `pos`; false at the end of the input. */
  const need = async (n: number): Promise<boolean> => {
    while (buf.length - pos < n) {
      if (done) return false;
      const r = await iterator.next();
      if (r.done) {
        done = true;
        return false;
      }
      const rest = buf.subarray(pos);
      base += pos;
      buf = rest.length === 0 ? r.value : Buffer.concat([rest, r.value]);
      pos = 0;
    }
    return true;
  };
  const fail = (problem: string, at = base + pos): never => {
    throw invalidCapture(where, at, problem);
  };

  if (!(await need(4)))
    fail(buf.length - pos === 0 ? "empty file, not a capture" : "too short to be a capture");
  const magic = buf.readUInt32BE(pos);
  if (magic === PCAPNG_SHB) {
    info.format = "pcapng";
    let le = true;
    let interfaces: Interface[] = [];
    for (;;) {
      info.offset = base + pos;
      if (!(await need(8))) {
        if (buf.length - pos > 0) info.truncated = true;
        return;
      }
      let type = le ? buf.readUInt32LE(pos) : buf.readUInt32BE(pos);
      if (buf.readUInt32BE(pos) === PCAPNG_SHB) {
        // A section header sets the byte order of everything up to the next one.
        if (!(await need(12))) {
          info.truncated = true;
          return;
        }
        const bom = buf.readUInt32LE(pos + 8);
        if (bom === 0x1a2b3c4d) le = true;
        else if (bom === 0x4d3c2b1a) le = false;
        else fail("pcapng section header with an unknown byte-order magic");
        type = PCAPNG_SHB;
        interfaces = [];
      }
      const length = le ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
      if (length < 12 || length % 4 !== 0 || length > MAX_RECORD_BYTES) {
        fail(
          `pcapng block of ${length} bytes (must be a multiple of 4, 12 to ${MAX_RECORD_BYTES})`,
        );
      }
      if (!(await need(length))) {
        info.truncated = true;
        return;
      }
      const block = buf.subarray(pos, pos + length);
      const trailer = le ? block.readUInt32LE(length - 4) : block.readUInt32BE(length - 4);
      if (trailer !== length)
        fail(`pcapng block length ${length} does not match its trailer ${trailer}`);
      const u16 = (o: number) => (le ? block.readUInt16LE(o) : block.readUInt16BE(o));
      const u32 = (o: number) => (le ? block.readUInt32LE(o) : block.readUInt32BE(o));
      if (type === 1) {
        interfaces.push({ linkType: u16(8), unitsPerMs: tsresol(block, 16, length - 4, le) });
      } else if (type === 6 || type === 2) {
        // Enhanced (6) and obsolete (2) packet blocks share the layout we need.
        const id = type === 6 ? u32(8) : u16(8);
        const iface = interfaces[id];
        if (!iface) fail(`packet on interface ${id}, which the section never described`);
        const captured = u32(20);
        if (28 + captured > length - 4)
          fail(`packet of ${captured} bytes overruns its ${length}-byte block`);
        const units = u32(12) * 4294967296 + u32(16);
        yield {
          linkType: (iface as Interface).linkType,
          timeMs: units / (iface as Interface).unitsPerMs,
          data: block.subarray(28, 28 + captured),
        };
      }
      // Simple packet blocks carry no time and other blocks no packets: skipped.
      pos += length;
    }
  }

  let le: boolean;
  let unitsPerMs: number;
  if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = true;
  else if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = false;
  else return fail(`not a pcap or pcapng file (magic 0x${magic.toString(16).padStart(8, "0")})`);
  unitsPerMs = magic === 0x4d3cb2a1 || magic === 0xa1b23c4d ? 1e6 : 1e3;
  if (!(await need(24))) fail("pcap file header cut short");
  const linkType = (le ? buf.readUInt32LE(pos + 20) : buf.readUInt32BE(pos + 20)) & 0xffff;
  pos += 24;
  for (;;) {
    info.offset = base + pos;
    if (!(await need(16))) {
      if (buf.length - pos > 0) info.truncated = true;
      return;
    }
    const sec = le ? buf.readUInt32LE(pos) : buf.readUInt32BE(pos);
    const frac = le ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
    const captured = le ? buf.readUInt32LE(pos + 8) : buf.readUInt32BE(pos + 8);
    if (captured > MAX_RECORD_BYTES)
      fail(`packet record of ${captured} bytes: the file is corrupt`);
    if (frac >= unitsPerMs * 1000)
      fail(`packet timestamp fraction ${frac} out of range: the file is corrupt`);
    if (!(await need(16 + captured))) {
      info.truncated = true;
      return;
    }
    yield {
      linkType,
      timeMs: sec * 1000 + frac / unitsPerMs,
      data: buf.subarray(pos + 16, pos + 16 + captured),
    };
    pos += 16 + captured;
  }
}

/** if_tsresol (option 9): 10^-n or 2^-n seconds; default microseconds. */
function tsresol(block: Buffer, from: number, to: number, le: boolean): number {
  let o = from;
  while (o + 4 <= to) {
    const code = le ? block.readUInt16LE(o) : block.readUInt16BE(o);
    const len = le ? block.readUInt16LE(o + 2) : block.readUInt16BE(o + 2);
    if (code === 0) break;
    if (code === 9 && len >= 1 && o + 4 < to) {
      const v = block[o + 4] as number;
      const perSecond = v & 0x80 ? 2 ** (v & 0x7f) : 10 ** v;
      return perSecond / 1000;
    }
    o += 4 + Math.ceil(len / 4) * 4;
  }
  return 1000;
}

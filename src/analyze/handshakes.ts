import { ACK, RST, type Segment, SYN } from "./decode.js";

/** One outbound handshake attempt as the wire showed it. */
export interface Handshake {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  /** Initial sequence number: a new one on the same ports is a new attempt. */
  isn: number;
  /** Capture times (ms) of the first SYN and each retransmission. */
  synAtMs: number[];
  /** What ended it on the wire, if anything: the peer's SYN-ACK or RST, or the client's own RST. */
  answer: "syn-ack" | "rst" | "client-rst" | null;
  answeredAtMs: number | null;
}

/** Same packet seen again within this many ms: pktmon's per-component copies, not a retransmission. */
export const duplicateWindowMs = 50;

/**
 * Rebuilds handshakes from SYN, SYN-ACK and RST segments in capture order,
 * dropping the copies pktmon records once per network component.
 */
export class HandshakeBuilder {
  readonly done: Handshake[] = [];
  duplicates = 0;
  segments = 0;
  readonly #open = new Map<string, Handshake>();
  /** Recent packet identities, oldest first, for duplicate removal. */
  readonly #recent = new Map<string, number>();

  /**
   * Returns the handshake a client SYN went to (a live reader follows its
   * retransmissions as they come); null for anything else.
   */
  add(timeMs: number, s: Segment): Handshake | null {
    this.segments++;
    if (this.#isDuplicate(timeMs, s)) {
      this.duplicates++;
      return null;
    }
    const forward = `${s.src}|${s.srcPort}|${s.dst}|${s.dstPort}`;
    if ((s.flags & SYN) !== 0 && (s.flags & ACK) === 0) {
      const open = this.#open.get(forward);
      if (open && open.isn === s.seq) {
        open.synAtMs.push(timeMs);
        return open;
      }
      if (open) this.#close(forward, open);
      const h: Handshake = {
        src: s.src,
        srcPort: s.srcPort,
        dst: s.dst,
        dstPort: s.dstPort,
        isn: s.seq,
        synAtMs: [timeMs],
        answer: null,
        answeredAtMs: null,
      };
      this.#open.set(forward, h);
      return h;
    }
    if ((s.flags & RST) !== 0) {
      const own = this.#open.get(forward);
      if (own) {
        own.answer = "client-rst";
        own.answeredAtMs = timeMs;
        this.#close(forward, own);
        return null;
      }
    }
    const reverse = `${s.dst}|${s.dstPort}|${s.src}|${s.srcPort}`;
    const open = this.#open.get(reverse);
    if (!open) return null;
    const acksSyn = (s.flags & ACK) !== 0 && s.ack === (open.isn + 1) >>> 0;
    if ((s.flags & RST) !== 0 && (acksSyn || (s.flags & ACK) === 0)) {
      open.answer = "rst";
      open.answeredAtMs = timeMs;
      this.#close(reverse, open);
    } else if ((s.flags & SYN) !== 0 && acksSyn) {
      open.answer = "syn-ack";
      open.answeredAtMs = timeMs;
      this.#close(reverse, open);
    }
    return null;
  }

  /**
   * Stops following a handshake a live reader is done with (its sender went
   * silent), so a long watch holds only the senders still retransmitting.
   */
  forget(h: Handshake): void {
    const key = `${h.src}|${h.srcPort}|${h.dst}|${h.dstPort}`;
    if (this.#open.get(key) === h) this.#open.delete(key);
  }

  /** Every handshake, unanswered ones included, by first SYN. */
  finish(): Handshake[] {
    for (const [key, open] of this.#open) this.#close(key, open);
    return this.done.sort((a, b) => (a.synAtMs[0] as number) - (b.synAtMs[0] as number));
  }

  #close(key: string, h: Handshake): void {
    this.#open.delete(key);
    this.done.push(h);
  }

  #isDuplicate(timeMs: number, s: Segment): boolean {
    // Expire identities older than the window (the map keeps insertion order).
    for (const [key, at] of this.#recent) {
      if (timeMs - at <= duplicateWindowMs) break;
      this.#recent.delete(key);
    }
    const id = `${s.src}|${s.srcPort}|${s.dst}|${s.dstPort}|${s.flags}|${s.seq}|${s.ack}|${s.ipId}`;
    const seen = this.#recent.get(id);
    if (seen !== undefined && Math.abs(timeMs - seen) <= duplicateWindowMs) return true;
    this.#recent.delete(id);
    this.#recent.set(id, timeMs);
    return false;
  }
}

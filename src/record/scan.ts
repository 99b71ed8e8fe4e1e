/**
 * The trace reader's fast path: one line read straight from its bytes, with
 * no JSON.parse and no string per line. It accepts only what it can read
 * exactly as JSON.parse would (known keys once each, strings without escapes,
 * JSON numbers, scalar values for unknown keys) and checks what `parseRecord`
 * checks; anything else, valid or not, is left to JSON.parse and
 * `parseRecord`, so a bad line gets the same error either way.
 */
import type { TraceCursor } from "./read.js";
import { outcomes } from "./trace.js";

/** Strings by value and by UTF-8 bytes, each checked once when first seen. */
export class StringTable {
  readonly names: string[] = [];
  readonly valid: boolean[] = [];
  readonly #byName = new Map<string, number>();
  readonly #check: (name: string) => boolean;
  /** Open addressing: entry + 1, 0 when free. Several byte strings may decode to one name. */
  #slots = new Int32Array(64);
  readonly #hashes: number[] = [];
  readonly #bytes: Uint8Array[] = [];
  readonly #index: number[] = [];

  constructor(check: (name: string) => boolean) {
    this.#check = check;
  }

  of(name: string): number {
    let i = this.#byName.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(name);
      this.valid.push(this.#check(name));
      this.#byName.set(name, i);
    }
    return i;
  }

  /** The index of the text whose UTF-8 bytes are buf[start, end); `hash` from `scanString`. */
  ofBytes(buf: Buffer, start: number, end: number, hash: number): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let p = hash & mask; ; p = (p + 1) & mask) {
      const slot = slots[p] as number;
      if (slot === 0) break;
      const entry = slot - 1;
      if (
        this.#hashes[entry] === hash &&
        sameBytes(this.#bytes[entry] as Uint8Array, buf, start, end)
      ) {
        return this.#index[entry] as number;
      }
    }
    const index = this.of(buf.toString("utf8", start, end));
    this.#hashes.push(hash);
    this.#bytes.push(Uint8Array.prototype.slice.call(buf, start, end));
    this.#index.push(index);
    if (2 * this.#hashes.length > slots.length) this.#rehash(2 * slots.length);
    else this.#place(this.#hashes.length - 1);
    return index;
  }

  #place(entry: number): void {
    const slots = this.#slots;
    const mask = slots.length - 1;
    let p = (this.#hashes[entry] as number) & mask;
    while ((slots[p] as number) !== 0) p = (p + 1) & mask;
    slots[p] = entry + 1;
  }

  #rehash(size: number): void {
    this.#slots = new Int32Array(size);
    for (let e = 0; e < this.#hashes.length; e++) this.#place(e);
  }
}

function sameBytes(a: Uint8Array, buf: Buffer, start: number, end: number): boolean {
  if (a.length !== end - start) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== buf[start + k]) return false;
  return true;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const K_OTHER = 0;
const K_ID = 1;
const K_T = 2;
const K_DEST = 3;
const K_DURATION = 4;
const K_OUTCOME = 5;
const K_ROLE = 6;
const K_AFTER = 7;
const K_GAP = 8;
const K_WAIT = 9;

/** Exact powers of ten: an integer below 2^53 times or over one is correctly rounded. */
const POW10 = new Float64Array(23).map((_, i) => 10 ** i);

/** Where the last `scanNumber`/`scanString` stopped, and the string's hash. */
let scanEnd = 0;
let stringHash = 0;
/**
 * The last `scanNumber`'s value. Returned as a double from a call V8 does not
 * inline (scanLine is too big to take it), it would be boxed: a heap number
 * per field, six per line.
 */
const scannedNumber = new Float64Array(1);

function skipSpace(buf: Buffer, i: number, end: number): number {
  while (i < end) {
    const c = buf[i] as number;
    if (c !== 0x20 && c !== 0x09) break;
    i++;
  }
  return i;
}

function is(buf: Buffer, start: number, len: number, word: string): boolean {
  if (len !== word.length) return false;
  for (let k = 0; k < len; k++) if (buf[start + k] !== word.charCodeAt(k)) return false;
  return true;
}

function keyOf(buf: Buffer, s: number, len: number): number {
  switch (len) {
    case 1:
      return buf[s] === 0x74 ? K_T : K_OTHER;
    case 2:
      return is(buf, s, 2, "id") ? K_ID : K_OTHER;
    case 4:
      return is(buf, s, 4, "dest") ? K_DEST : is(buf, s, 4, "role") ? K_ROLE : K_OTHER;
    case 5:
      return is(buf, s, 5, "after") ? K_AFTER : is(buf, s, 5, "gapMs") ? K_GAP : K_OTHER;
    case 6:
      return is(buf, s, 6, "waitMs") ? K_WAIT : K_OTHER;
    case 7:
      return is(buf, s, 7, "outcome") ? K_OUTCOME : K_OTHER;
    case 10:
      return is(buf, s, 10, "durationMs") ? K_DURATION : K_OTHER;
    default:
      return K_OTHER;
  }
}

function outcomeOf(buf: Buffer, s: number, len: number): number {
  for (let o = 0; o < outcomes.length; o++) if (is(buf, s, len, outcomes[o] as string)) return o;
  return -1;
}

/** A string body from `i` (after its quote) without escapes or control characters. */
function scanString(buf: Buffer, i: number, end: number): boolean {
  let h = 0x811c9dc5 | 0;
  for (; i < end; i++) {
    const c = buf[i] as number;
    if (c === QUOTE) {
      scanEnd = i;
      stringHash = h;
      return true;
    }
    if (c === BACKSLASH || c < 0x20) return false;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return false;
}

/** A JSON number from `i` into `scannedNumber`; false when there is none. */
function scanNumber(buf: Buffer, i: number, end: number): boolean {
  const start = i;
  const negative = buf[i] === MINUS;
  if (negative) i++;
  let c = i < end ? (buf[i] as number) : 0;
  let mantissa = 0;
  let digits = 0;
  let exp10 = 0;
  if (c === ZERO) c = ++i < end ? (buf[i] as number) : 0;
  else if (c > ZERO && c <= NINE) {
    do {
      mantissa = mantissa * 10 + (c - ZERO);
      digits++;
      c = ++i < end ? (buf[i] as number) : 0;
    } while (c >= ZERO && c <= NINE);
  } else return false;
  if (c === DOT) {
    c = ++i < end ? (buf[i] as number) : 0;
    if (c < ZERO || c > NINE) return false;
    do {
      mantissa = mantissa * 10 + (c - ZERO);
      digits++;
      exp10--;
      c = ++i < end ? (buf[i] as number) : 0;
    } while (c >= ZERO && c <= NINE);
  }
  if (c === 0x65 || c === 0x45) {
    c = ++i < end ? (buf[i] as number) : 0;
    const expNegative = c === MINUS;
    if (c === MINUS || c === PLUS) c = ++i < end ? (buf[i] as number) : 0;
    if (c < ZERO || c > NINE) return false;
    let e = 0;
    do {
      if (e < 100_000) e = e * 10 + (c - ZERO);
      c = ++i < end ? (buf[i] as number) : 0;
    } while (c >= ZERO && c <= NINE);
    exp10 += expNegative ? -e : e;
  }
  scanEnd = i;
  // Clinger's fast path; the rest (long mantissas, large exponents) as JSON.parse does it.
  if (digits > 15 || exp10 < -22 || exp10 > 22) {
    scannedNumber[0] = Number(buf.toString("latin1", start, i));
    return true;
  }
  const v = exp10 < 0 ? mantissa / (POW10[-exp10] as number) : mantissa * (POW10[exp10] as number);
  scannedNumber[0] = negative ? -v : v;
  return true;
}

const LITERALS = ["true", "false", "null"];

/** A JSON scalar of a key the reader does not use (objects and arrays: no). */
function skipScalar(buf: Buffer, i: number, end: number): boolean {
  const c = buf[i];
  if (c === QUOTE) {
    if (!scanString(buf, i + 1, end)) return false;
    scanEnd++;
    return true;
  }
  for (const word of LITERALS) {
    if (c === word.charCodeAt(0)) {
      if (!is(buf, i, Math.min(word.length, end - i), word)) return false;
      scanEnd = i + word.length;
      return true;
    }
  }
  return scanNumber(buf, i, end);
}

function finiteAtLeastZero(v: number): boolean {
  return v >= 0 && v !== Number.POSITIVE_INFINITY;
}

/**
 * Reads buf[start, end) (one line, its terminator excluded) into `cur`: 1
 * when the line is a valid attempt, 0 when blank (spaces and tabs), -1 when
 * it is for JSON.parse to read. On 1, `cur.afterIndex` is 0 when the line has
 * `after` (the reader resolves it), else -1.
 */
export function scanLine(buf: Buffer, start: number, end: number, cur: TraceCursor): number {
  let i = skipSpace(buf, start, end);
  if (i === end) return 0;
  if (buf[i] !== LBRACE) return -1;
  i = skipSpace(buf, i + 1, end);
  let seen = 0;
  let id = 0;
  let t = 0;
  let durationMs = 0;
  let outcome = -1;
  let destStart = 0;
  let destEnd = 0;
  let destHash = 0;
  let roleStart = 0;
  let roleEnd = 0;
  let roleHash = 0;
  let after = 0;
  let gapMs = 0;
  let waitMs = 0;
  for (;;) {
    if (i >= end || buf[i] !== QUOTE) return -1;
    if (!scanString(buf, i + 1, end)) return -1;
    const key = keyOf(buf, i + 1, scanEnd - i - 1);
    i = skipSpace(buf, scanEnd + 1, end);
    if (i >= end || buf[i] !== COLON) return -1;
    i = skipSpace(buf, i + 1, end);
    if (i >= end) return -1;
    if (key !== K_OTHER) {
      // A repeated key: JSON.parse keeps the last; leave that to it.
      if ((seen & (1 << key)) !== 0) return -1;
      seen |= 1 << key;
    }
    if (key === K_DEST || key === K_ROLE || key === K_OUTCOME) {
      if (buf[i] !== QUOTE || !scanString(buf, i + 1, end)) return -1;
      if (key === K_OUTCOME) {
        outcome = outcomeOf(buf, i + 1, scanEnd - i - 1);
        if (outcome < 0) return -1;
      } else if (key === K_DEST) {
        destStart = i + 1;
        destEnd = scanEnd;
        destHash = stringHash;
      } else {
        roleStart = i + 1;
        roleEnd = scanEnd;
        roleHash = stringHash;
      }
      i = scanEnd + 1;
    } else if (key === K_OTHER) {
      if (!skipScalar(buf, i, end)) return -1;
      i = scanEnd;
    } else {
      if (!scanNumber(buf, i, end)) return -1;
      const v = scannedNumber[0] as number;
      i = scanEnd;
      if (key === K_ID) id = v;
      else if (key === K_T) t = v;
      else if (key === K_DURATION) durationMs = v;
      else if (key === K_AFTER) after = v;
      else if (key === K_GAP) gapMs = v;
      else waitMs = v;
    }
    i = skipSpace(buf, i, end);
    if (i >= end) return -1;
    const c = buf[i];
    if (c === COMMA) i = skipSpace(buf, i + 1, end);
    else if (c === RBRACE) break;
    else return -1;
  }
  if (skipSpace(buf, i + 1, end) !== end) return -1;

  // What parseRecord checks, in its order; a failure is its to word.
  if ((seen & (1 << K_ID)) === 0 || !Number.isSafeInteger(id) || id < 0) return -1;
  if ((seen & (1 << K_T)) === 0 || !finiteAtLeastZero(t)) return -1;
  if ((seen & (1 << K_DEST)) === 0) return -1;
  // Interned only now: a line that falls back must not leave a name behind.
  const dest = cur.dests.ofBytes(buf, destStart, destEnd, destHash);
  if (!cur.dests.valid[dest]) return -1;
  if ((seen & (1 << K_DURATION)) === 0 || !finiteAtLeastZero(durationMs)) return -1;
  if ((seen & (1 << K_OUTCOME)) === 0) return -1;
  let role = -1;
  if ((seen & (1 << K_ROLE)) !== 0) {
    role = cur.roles.ofBytes(buf, roleStart, roleEnd, roleHash);
    if (!cur.roles.valid[role]) return -1;
  }
  const hasAfter = (seen & (1 << K_AFTER)) !== 0;
  if (hasAfter) {
    if (!Number.isSafeInteger(after) || after < 0 || after === id) return -1;
    if ((seen & (1 << K_GAP)) === 0 || !finiteAtLeastZero(gapMs)) return -1;
  } else if ((seen & (1 << K_GAP)) !== 0) return -1;
  const hasWait = (seen & (1 << K_WAIT)) !== 0;
  if (hasWait && !finiteAtLeastZero(waitMs)) return -1;

  cur.id = id;
  cur.t = t;
  cur.dest = dest;
  cur.durationMs = durationMs;
  cur.outcome = outcome;
  cur.role = role;
  cur.afterIndex = hasAfter ? 0 : -1;
  cur.afterId = hasAfter ? after : 0;
  cur.gapMs = hasAfter ? gapMs : 0;
  cur.waitMs = hasWait ? waitMs : Number.NaN;
  return 1;
}

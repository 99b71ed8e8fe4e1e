import { statSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { invalidTrace, SynlimitError } from "../errors.js";
import { StringTable, scanLine } from "./scan.js";
import { isHostPort, outcomes, parseRecord, type TraceRecord } from "./trace.js";

/**
 * One attempt as the reader hands it on. The same object is overwritten by
 * every line, so reading a million attempts makes no object per line; names
 * are indices into `destNames` and `roleNames`, in order of first use.
 */
export class TraceCursor {
  /** 0-based among the trace's attempts (blank lines not counted). */
  index = -1;
  lineNo = 0;
  id = 0;
  t = 0;
  durationMs = 0;
  /** Index in `outcomes`. */
  outcome = 0;
  dest = 0;
  /** -1 when the line has no role. */
  role = -1;
  /** The attempt index of `after`, or -1 when the line has none. */
  afterIndex = -1;
  afterId = 0;
  gapMs = 0;
  /** NaN when the line has no waitMs. */
  waitMs = Number.NaN;
  readonly dests = new StringTable(isHostPort);
  readonly roles = new StringTable((role) => role !== "");

  get destNames(): readonly string[] {
    return this.dests.names;
  }

  get roleNames(): readonly string[] {
    return this.roles.names;
  }

  /** The line as `parseRecord` returns it. */
  toRecord(): TraceRecord {
    const record: TraceRecord = {
      id: this.id,
      t: this.t,
      dest: this.dests.names[this.dest] as string,
      durationMs: this.durationMs,
      outcome: outcomes[this.outcome] as TraceRecord["outcome"],
    };
    if (this.role >= 0) record.role = this.roles.names[this.role] as string;
    if (this.afterIndex >= 0) {
      record.after = this.afterId;
      record.gapMs = this.gapMs;
    }
    if (!Number.isNaN(this.waitMs)) record.waitMs = this.waitMs;
    return record;
  }

  /** Takes a record from `parseRecord` (the slow path). */
  setRecord(r: TraceRecord): void {
    this.id = r.id;
    this.t = r.t;
    this.dest = this.dests.of(r.dest);
    this.durationMs = r.durationMs;
    this.outcome = outcomes.indexOf(r.outcome);
    this.role = r.role === undefined ? -1 : this.roles.of(r.role);
    this.afterIndex = r.after === undefined ? -1 : 0;
    this.afterId = r.after ?? 0;
    this.gapMs = r.gapMs ?? 0;
    this.waitMs = r.waitMs ?? Number.NaN;
  }
}

/** Attempt index by id: an array while ids are small and dense (the recorder's), else a map. */
class IdIndex {
  #dense = new Int32Array(1024);
  #sparse: Map<number, number> | null = null;

  get(id: number): number {
    if (id < this.#dense.length) return (this.#dense[id] as number) - 1;
    return this.#sparse?.get(id) ?? -1;
  }

  set(id: number, index: number): void {
    let dense = this.#dense;
    if (id >= dense.length && id < 8 * index + 65536) {
      const grown = new Int32Array(Math.max(2 * dense.length, id + 1));
      grown.set(dense);
      this.#dense = dense = grown;
    }
    if (id < dense.length) dense[id] = index + 1;
    else {
      this.#sparse ??= new Map();
      this.#sparse.set(id, index);
    }
  }
}

/** Read size, and the longest line (a quarter of it, so a partial line always leaves room). */
const CHUNK_BYTES = 4 << 20;
const MAX_LINE_BYTES = 1 << 20;

async function openTrace(path: string): Promise<FileHandle> {
  // A directory opens fine and fails only on the first read.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new SynlimitError("SYNLIMIT_INVALID_TRACE", `cannot read ${path}: EISDIR (a directory)`);
  }
  try {
    return await open(path, "r");
  } catch (e) {
    throw cannotRead(path, e);
  }
}

function cannotRead(path: string, e: unknown): SynlimitError {
  const err = e as NodeJS.ErrnoException;
  return new SynlimitError(
    "SYNLIMIT_INVALID_TRACE",
    `cannot read ${path}: ${err.code ?? err.message}`,
  );
}

/**
 * Reads a trace as a stream of bytes, calling `onAttempt` for every line in
 * file order (blank lines skipped), and yields after each chunk. Lines end at
 * `\n`, `\r\n` or a lone `\r`, as with readline. `waitMs` is on every line
 * or on none (a recording under a limiter, or not). Ids must be unique and
 * `after` must name an attempt on an earlier line: the recorder writes an
 * attempt when it ends, so a cause is always written before its effect.
 *
 * The common line (the recorder's: known keys, plain strings and numbers) is
 * read by a scanner over its bytes (src/record/scan.ts); any other line goes
 * through JSON.parse and `parseRecord`, which also words every error.
 */
async function* scanChunks(
  path: string,
  cur: TraceCursor,
  onAttempt: (cur: TraceCursor) => void,
): AsyncGenerator<void> {
  const file = await openTrace(path);
  const ids = new IdIndex();
  // waitMs is on every line or on none (docs/trace.md): 1 or 0 from the first attempt on.
  let withWait = -1;
  let firstLineNo = 0;
  const admit = (lineNo: number) => {
    cur.lineNo = lineNo;
    if (ids.get(cur.id) >= 0) throw invalidTrace(path, lineNo, `id ${cur.id} appears twice`);
    const hasWait = Number.isNaN(cur.waitMs) ? 0 : 1;
    if (withWait < 0) {
      withWait = hasWait;
      firstLineNo = lineNo;
    } else if (hasWait !== withWait) {
      throw invalidTrace(
        path,
        lineNo,
        `"waitMs" must be on every line (recorded under a limiter) or on none: line ${firstLineNo} ${withWait ? "has it" : "has none"}, this line ${hasWait ? "has it" : "has none"}`,
      );
    }
    if (cur.afterIndex >= 0) {
      cur.afterIndex = ids.get(cur.afterId);
      if (cur.afterIndex < 0) {
        throw invalidTrace(path, lineNo, `"after" ${cur.afterId} is not an earlier attempt's id`);
      }
    }
    ids.set(cur.id, ++cur.index);
    onAttempt(cur);
  };
  let lineNo = 0;
  const line = (buf: Buffer, start: number, end: number) => {
    let e = end;
    if (e > start && buf[e - 1] === 13) e--;
    lineNo++;
    if (e - start > MAX_LINE_BYTES) {
      throw invalidTrace(path, lineNo, `line longer than ${MAX_LINE_BYTES} bytes`);
    }
    const got = scanLine(buf, start, e, cur);
    if (got === 1) return admit(lineNo);
    if (got === 0) return;
    // A lone \r inside ends a line too.
    const pieces = buf.toString("utf8", start, e).split("\r");
    pieces.forEach((text, i) => {
      if (i > 0) lineNo++;
      if (text.trim() === "") return;
      cur.setRecord(parseRecord(text, path, lineNo));
      admit(lineNo);
    });
  };
  try {
    const buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let filled = 0;
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await file.read(buf, filled, buf.length - filled, null));
      } catch (e) {
        throw cannotRead(path, e);
      }
      filled += bytesRead;
      const view = buf.subarray(0, filled);
      let start = 0;
      for (;;) {
        const nl = view.indexOf(10, start);
        if (nl < 0) break;
        line(buf, start, nl);
        start = nl + 1;
      }
      if (bytesRead === 0) {
        if (start < filled) line(buf, start, filled);
        return;
      }
      if (filled - start > MAX_LINE_BYTES) {
        throw invalidTrace(path, lineNo + 1, `line longer than ${MAX_LINE_BYTES} bytes`);
      }
      // Keep the partial line for the next read.
      if (start > 0) buf.copy(buf, 0, start, filled);
      filled -= start;
      yield;
    }
  } finally {
    await file.close();
  }
}

/** Every attempt of a trace, through one reused cursor (see `TraceCursor`). */
export async function scanTrace(
  path: string,
  onAttempt: (cur: TraceCursor) => void,
): Promise<TraceCursor> {
  const cur = new TraceCursor();
  for await (const _ of scanChunks(path, cur, onAttempt));
  return cur;
}

/** Reads a trace file record by record, as a stream (see `scanChunks` for the rules). */
export async function* readTrace(path: string): AsyncGenerator<TraceRecord> {
  const batch: TraceRecord[] = [];
  for await (const _ of scanChunks(path, new TraceCursor(), (c) => batch.push(c.toRecord()))) {
    yield* batch;
    batch.length = 0;
  }
  yield* batch;
}

/** The whole trace in memory, in file order. */
export async function loadTrace(path: string): Promise<TraceRecord[]> {
  const records: TraceRecord[] = [];
  await scanTrace(path, (c) => records.push(c.toRecord()));
  return records;
}

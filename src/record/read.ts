import { createReadStream, statSync } from "node:fs";
import { createInterface } from "node:readline";
import { invalidTrace, SynlimitError } from "../errors.js";
import { parseRecord, type TraceRecord } from "./trace.js";

/**
 * Reads a trace file line by line (blank lines skipped). Ids must be unique
 * and `after` must name an attempt on an earlier line: the recorder writes an
 * attempt when it ends, so a cause is always written before its effect.
 */
export async function* readTrace(path: string): AsyncGenerator<TraceRecord> {
  // A directory opens fine and fails only on the first read, deep in the stream.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new SynlimitError("SYNLIMIT_INVALID_TRACE", `cannot read ${path}: EISDIR (a directory)`);
  }
  const stream = createReadStream(path, { encoding: "utf8" });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new SynlimitError("SYNLIMIT_INVALID_TRACE", `cannot read ${path}: ${e.code ?? e.message}`),
      ),
    );
  });
  await opened;
  const seen = new Set<number>();
  let lineNo = 0;
  for await (const line of createInterface({
    input: stream,
    crlfDelay: Number.POSITIVE_INFINITY,
  })) {
    lineNo++;
    if (line.trim() === "") continue;
    const record = parseRecord(line, path, lineNo);
    if (seen.has(record.id)) throw invalidTrace(path, lineNo, `id ${record.id} appears twice`);
    if (record.after !== undefined && !seen.has(record.after)) {
      throw invalidTrace(path, lineNo, `"after" ${record.after} is not an earlier attempt's id`);
    }
    seen.add(record.id);
    yield record;
  }
}

/** The whole trace in memory, in file order. */
export async function loadTrace(path: string): Promise<TraceRecord[]> {
  const records: TraceRecord[] = [];
  for await (const r of readTrace(path)) records.push(r);
  return records;
}

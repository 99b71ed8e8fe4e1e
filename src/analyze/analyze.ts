import { createReadStream, statSync } from "node:fs";
import { SynlimitError } from "../errors.js";
import type { RoleMap } from "../record/roles.js";
import type { Outcome, TraceRecord } from "../record/trace.js";
import { type CaptureInfo, readCapture } from "./capture.js";
import { decodeTcp, isSupportedLinkType } from "./decode.js";
import {
  type Attempt,
  deadlineHint,
  endAttempts,
  type FingerprintOptions,
  fingerprint,
  inferSchedule,
  type Schedule,
  type SourceVerdict,
} from "./fingerprint.js";
import { HandshakeBuilder } from "./handshakes.js";

export interface AnalyzeOptions extends FingerprintOptions {
  roles?: RoleMap;
}

export interface AnalysisResult {
  verdict: "limit" | "no-limit" | "inconclusive";
  /** The limit found; null unless verdict is "limit". */
  k: number | null;
  /** The source the verdict is about (the one with a limit, else the busiest). */
  source: string | null;
  evidence: string[];
  schedule: Schedule;
  format: string;
  packets: number;
  handshakeSegments: number;
  duplicatesRemoved: number;
  unsupportedLinkTypes: number[];
  truncated: boolean;
  captureStartMs: number;
  captureEndMs: number;
  sources: SourceVerdict[];
  attempts: Attempt[];
}

export const defaultAnalyzeOptions: FingerprintOptions = {
  windowMs: 10,
  holdMs: 100,
  giveUpMs: null,
};

/** Reads a capture file as a stream. */
export async function analyzeFile(path: string, options: AnalyzeOptions): Promise<AnalysisResult> {
  // A directory opens fine and fails only on the first read, deep in the stream.
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    throw new SynlimitError(
      "SYNLIMIT_INVALID_CAPTURE",
      `cannot read ${path}: EISDIR (a directory)`,
    );
  }
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  await new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new SynlimitError(
          "SYNLIMIT_INVALID_CAPTURE",
          `cannot read ${path}: ${e.code ?? e.message}`,
        ),
      ),
    );
  });
  return analyzeStream(stream as AsyncIterable<Buffer>, path, options);
}

export async function analyzeStream(
  chunks: AsyncIterable<Buffer>,
  where: string,
  options: AnalyzeOptions,
): Promise<AnalysisResult> {
  const info: CaptureInfo = { format: "pcap", offset: 0, truncated: false };
  const builder = new HandshakeBuilder();
  const unsupported = new Set<number>();
  let packets = 0;
  let first = Number.NaN;
  let last = Number.NaN;
  for await (const frame of readCapture(chunks, where, info)) {
    packets++;
    if (Number.isNaN(first)) first = frame.timeMs;
    if (!(frame.timeMs <= last)) last = frame.timeMs;
    if (!isSupportedLinkType(frame.linkType)) {
      unsupported.add(frame.linkType);
      continue;
    }
    const segment = decodeTcp(frame.linkType, frame.data);
    if (segment) builder.add(frame.timeMs, segment);
  }
  const handshakes = builder.finish();
  const captureStartMs = Number.isNaN(first) ? 0 : first;
  const captureEndMs = Number.isNaN(last) ? 0 : last;
  const inferred = inferSchedule(handshakes);
  const schedule =
    options.giveUpMs === null
      ? inferred
      : { ...inferred, giveUpMs: options.giveUpMs, giveUpGiven: true };
  const attempts = endAttempts(handshakes, schedule, captureEndMs, options);

  const bySource = new Map<string, Attempt[]>();
  for (const a of attempts) {
    const list = bySource.get(a.h.src);
    if (list) list.push(a);
    else bySource.set(a.h.src, [a]);
  }
  const sources = [...bySource].map(([src, list]) =>
    fingerprint(src, list, captureStartMs, options),
  );
  sources.sort((a, b) => rank(b) - rank(a) || b.attempts - a.attempts);
  const top = sources[0];
  const evidence = top ? [...top.evidence] : ["no outbound TCP handshake (SYN) in the capture"];
  // An inferred give-up can be later than the real end (an application or
  // emulated deadline sends no packet): then "no-limit" would be confident and wrong.
  const deadline =
    top?.verdict === "no-limit" && options.giveUpMs === null
      ? deadlineHint(bySource.get(top.source) ?? [], options.windowMs)
      : null;
  if (top && deadline !== null) {
    top.verdict = "inconclusive";
    evidence.unshift(
      `unanswered attempts were followed, after silence, by a new SYN at a constant ${seconds(deadline)} after their first SYN, before the inferred give-up at ${schedule.giveUpMs === null ? "?" : seconds(schedule.giveUpMs)}: a deadline (application or emulated limiter) may end them earlier; pass --give-up-ms ${Math.round(deadline)} (or the real deadline) to tell`,
    );
  }
  if (unsupported.size > 0)
    evidence.push(`skipped frames of unsupported link type(s) ${[...unsupported].join(", ")}`);
  if (info.truncated)
    evidence.push(`the capture ends mid-record at byte ${info.offset}: analysed what came before`);
  return {
    verdict: top?.verdict ?? "inconclusive",
    k: top?.verdict === "limit" ? top.k : null,
    source: top?.source ?? null,
    evidence,
    schedule,
    format: info.format,
    packets,
    handshakeSegments: builder.segments,
    duplicatesRemoved: builder.duplicates,
    unsupportedLinkTypes: [...unsupported],
    truncated: info.truncated,
    captureStartMs,
    captureEndMs,
    sources,
    attempts,
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(3)} s`;

function rank(s: SourceVerdict): number {
  return s.verdict === "limit" ? 2 : s.verdict === "no-limit" ? 1 : 0;
}

/** The attempts as a `record` trace, for `synlimit simulate`. */
export function toTrace(result: AnalysisResult, roles?: RoleMap): TraceRecord[] {
  return result.attempts.map((a, i) => {
    const outcome: Outcome =
      a.end === "connected"
        ? "connected"
        : a.end === "refused"
          ? "refused"
          : a.end === "gave-up"
            ? "timeout"
            : "cancelled";
    const dest = a.h.dst.includes(":")
      ? `[${a.h.dst}]:${a.h.dstPort}`
      : `${a.h.dst}:${a.h.dstPort}`;
    const role = roles?.roleOf(a.h.dst, a.h.dstPort);
    return {
      id: i + 1,
      t: a.startMs - result.captureStartMs,
      dest,
      durationMs: a.endMs - a.startMs,
      outcome,
      ...(role !== undefined && { role }),
    };
  });
}

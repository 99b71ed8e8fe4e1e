import diagnostics from "node:diagnostics_channel";
import { formatEndpoint } from "../../errors.js";
import type { HoldersReport } from "../../os/linux/holders.js";
import {
  type ProbeProgressEvent,
  type ProbeStepEvent,
  probeChannelNames,
} from "../../probe/channels.js";
import type { LimitFinding, ProbeResult, TimelineEntry } from "../../probe/report.js";
import { formatEmulation, type RenderContext } from "./connect-test.js";

const at = (ms: number) => `+${(ms / 1000).toFixed(3)}s`;
const fmt = (n: number) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2));

/** The verdict first, then the evidence, then what to do. */
export function formatProbe(
  result: ProbeResult,
  context: RenderContext,
  options: { evidenceShown?: boolean } = {},
): string {
  const lines = [result.verdict.text];
  if (result.limit) lines.push(...details(result.limit).map((d) => `  ${d}`));
  const settle = result.settleMs === null ? "" : ` (settle window ${fmt(result.settleMs)} ms)`;
  if (options.evidenceShown && result.timeline.length > 0) {
    lines.push("", `evidence${settle}: the "probe:" lines above`);
  } else if (result.timeline.length > 0) {
    lines.push("", `evidence${settle}:`, ...result.timeline.map((e) => `  ${timelineLine(e)}`));
  }
  if (result.alternatives.length > 0) {
    lines.push(
      "",
      "the evidence fits each of these; the probe cannot tell them apart:",
      ...result.alternatives.map((a) => `  - ${a}`),
    );
  }
  if (result.retransmitted.length > 0) {
    lines.push(
      "",
      `${result.retransmitted.length} connect(s) went through only on a SYN resend (this host resends at ${result.synSchedule.retransmitAtMs.slice(0, 4).join(", ")} ms …; ${result.synSchedule.source})`,
    );
  }
  if (result.notes.length > 0)
    lines.push("", "notes and what was not tested:", ...result.notes.map((n) => `  - ${n}`));
  if (result.holders) lines.push("", ...formatHolders(result.holders));
  if (result.advice.length > 0) {
    lines.push("", "what to do:", ...result.advice.map((a) => `  - ${a}`));
  }
  if (context.emulation) lines.push("", formatEmulation(context.emulation));
  return `${lines.join("\n")}\n`;
}

/** The answers behind the verdict, one per question. */
function details(f: LimitFinding): string[] {
  const out: string[] = [];
  if (f.scope === "process") out.push("per process: a second process on this host was not delayed");
  else if (f.scope === "machine")
    out.push(
      `machine-wide: a second process on this host was ${f.behaviour === "refused" ? "refused" : "delayed"} too`,
    );
  if (f.countsEstablished === true) {
    out.push("established connections count against the limit, not only pending attempts");
  } else if (f.behaviour !== "rate-limited" && f.appliesTo !== "unknown") {
    out.push(
      f.appliesTo === "all-destinations"
        ? "pending attempts to one destination delay connects to every other destination"
        : "pending attempts delay only connects to the same destination (address:port)",
    );
  }
  if (f.handoffMs !== null) {
    out.push(
      f.appliesTo === "all-destinations"
        ? `a waiting connect proceeded ${fmt(f.handoffMs)} ms after a pending attempt ended`
        : `a waiting attempt sent its SYN within ${fmt(f.handoffMs)} ms after a pending one ended`,
    );
  }
  if (f.intervalMs !== null) {
    // A SYN rate limit counts every new connect, to one destination or many.
    const what = f.excessDropped ? "one new connect" : "one new destination";
    out.push(`${what} released every ${fmt(f.intervalMs)} ms`);
  }
  return out;
}

export function timelineLine(e: TimelineEntry): string {
  return `${at(e.atMs)} ${e.text}`;
}

export function formatHolders(h: HoldersReport): string[] {
  if (!h.supported) return [`processes holding connect attempts: not supported (${h.reason})`];
  const lines = ["processes holding connect attempts (SYN_SENT) when the probe started:"];
  if (h.holders.length === 0 && h.unattributed.length === 0) lines.push("  none");
  for (const p of h.holders) {
    const name = p.exe ?? p.comm ?? "?";
    const to = p.attempts.map((a) => formatEndpoint(a.remote)).join(", ");
    lines.push(
      `  pid ${p.pid} ${name}${p.comm && p.exe ? ` (${p.comm})` : ""}: ${p.attempts.length} → ${to}`,
    );
  }
  if (h.unattributed.length > 0) {
    lines.push(
      `  ${h.unattributed.length} more whose process could not be read (run as root): → ${h.unattributed.map((a) => formatEndpoint(a.remote)).join(", ")}`,
    );
  }
  return lines;
}

/**
 * Progress on stderr: one status line redrawn in place on a terminal, plain
 * timeline lines otherwise, nothing when quiet.
 */
export class ProgressDisplay {
  readonly #unsubscribe: Array<() => void> = [];
  #drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly mode: "tty" | "lines" | "off",
  ) {
    if (mode === "off") return;
    const onStep = (message: unknown) => this.#step((message as ProbeStepEvent).entry);
    const onProgress = (message: unknown) => this.#status((message as ProbeProgressEvent).text);
    diagnostics.subscribe(probeChannelNames.step, onStep);
    this.#unsubscribe.push(() => diagnostics.unsubscribe(probeChannelNames.step, onStep));
    if (mode === "tty") {
      diagnostics.subscribe(probeChannelNames.progress, onProgress);
      this.#unsubscribe.push(() => diagnostics.unsubscribe(probeChannelNames.progress, onProgress));
    }
  }

  stop(): void {
    for (const u of this.#unsubscribe.splice(0)) u();
    this.#clear();
  }

  #step(entry: TimelineEntry): void {
    if (this.mode === "lines") this.stream.write(`probe: ${timelineLine(entry)}\n`);
    else this.#status(entry.text);
  }

  #status(text: string): void {
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    const line = `probe: ${text}`;
    this.stream.write(`\r\x1b[2K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
    this.#drawn = true;
  }

  #clear(): void {
    if (!this.#drawn) return;
    this.stream.write("\r\x1b[2K");
    this.#drawn = false;
  }
}

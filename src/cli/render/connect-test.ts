import type { ConnectTestLine, ConnectTestResult } from "../../probe/connect-test.js";

export interface RenderContext {
  startedAt: Date;
  emulation: { profile: string | null; timeScale: number } | null;
}

const label = { pending: "A", live: "B" } as const;

/** One line per event, as the incident's program printed them, with a timestamp. */
export function formatLines(lines: readonly ConnectTestLine[], startedAt: Date): string[] {
  return lines.map((l) => {
    const wall = new Date(startedAt.getTime() + l.atMs).toISOString().slice(11, 23);
    const elapsed = `+${(l.atMs / 1000).toFixed(3)}s`.padStart(9);
    return `${wall} ${elapsed} [${label[l.who]}] ${l.text}`;
  });
}

export function formatEmulation(emulation: RenderContext["emulation"]): string {
  if (!emulation) return "no synlimit emulation in this process";
  const scale =
    emulation.timeScale === 1
      ? "real time"
      : `time scale ${emulation.timeScale} (21 s runs as ${(21 * emulation.timeScale).toFixed(2)} s)`;
  return `synlimit emulation: profile ${emulation.profile ?? "custom"}, ${scale}`;
}

export function formatVerdict(
  result: ConnectTestResult,
  emulation: RenderContext["emulation"],
): string {
  const scale = emulation?.timeScale ?? 1;
  const unscaled =
    scale !== 1 && result.verdict.kind === "serialized"
      ? ` (${(result.verdict.waitedMs / scale / 1000).toFixed(1)} s unscaled)`
      : "";
  return `verdict: ${result.verdict.text}${unscaled}`;
}

export function formatConnectTest(result: ConnectTestResult, context: RenderContext): string {
  return `${[
    formatEmulation(context.emulation),
    ...formatLines(result.lines, context.startedAt),
    formatVerdict(result, context.emulation),
  ].join("\n")}\n`;
}

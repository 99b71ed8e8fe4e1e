import { formatEndpoint } from "../errors.js";
import type { GiveUpReport } from "./report.js";
import type { ProbeSession } from "./session.js";

/** How often the progress line while waiting is refreshed. */
const PROGRESS_EVERY_MS = 1_000;
/**
 * How long past the modelled give-up the attempt is kept before it is
 * cancelled: a proxy may never time out its CONNECT, and a host's real
 * schedule may differ from the model (rto_max, a route's own RTO).
 */
const GIVE_UP_SLACK_FACTOR = 2;
const GIVE_UP_SLACK_MS = 30_000;

const seconds = (n: number) => (n / 1000).toFixed(1);

/**
 * Keeps one attempt to the blackhole pending, nothing else held, until it
 * ends by itself: how long a blocked connect waits on this host (the OS's
 * SYN schedule, or an emulated deadline), and — at a tarpit with
 * `--show-syns` — every SYN of the schedule on the wire.
 */
export async function measureGiveUp(s: ProbeSession): Promise<GiveUpReport> {
  await s.setHeld(0);
  const modelMs = s.schedule.giveUpAtMs;
  const limitMs = GIVE_UP_SLACK_FACTOR * modelMs + GIVE_UP_SLACK_MS;
  const target = { host: s.blackhole.host, port: s.blackhole.port };
  const d = s.dial(s.blackhole);
  s.record(
    "giveup",
    "waiting",
    `keeping one attempt to ${formatEndpoint(target)} open until this host gives up on it (model: ${seconds(modelMs)} s; Ctrl-C ends it)`,
  );
  try {
    for (;;) {
      const elapsed = s.clock.now() - d.startedAt;
      if (elapsed >= limitMs) break;
      s.progress(
        `waiting for this host to give up on one attempt to ${formatEndpoint(target)}: ${seconds(elapsed)} s of ${seconds(modelMs)} s (model); Ctrl-C ends it`,
      );
      const o = await s.wait(d.done, Math.min(PROGRESS_EVERY_MS, limitMs - elapsed));
      if (o) break;
    }
  } finally {
    d.cancel();
  }
  const o = d.outcome;
  const measuredMs = o?.ms ?? s.clock.now() - d.startedAt;
  const model = `model: ${Math.round(modelMs / 1000)} s`;
  const code = o?.kind === "error" ? o.code : null;
  const outcome: GiveUpReport["outcome"] =
    o?.kind === "error"
      ? o.code === "ETIMEDOUT"
        ? "gave-up"
        : "error"
      : o?.kind === "connected"
        ? "connected"
        : "still-pending";
  const text =
    outcome === "gave-up"
      ? `host gives up after ${seconds(measuredMs)} s (${model}): one attempt to ${formatEndpoint(target)} ended with ETIMEDOUT`
      : outcome === "error"
        ? `one attempt to ${formatEndpoint(target)} ended after ${seconds(measuredMs)} s with ${code}, not a give-up (${model})`
        : outcome === "connected"
          ? `one attempt to ${formatEndpoint(target)} connected after ${seconds(measuredMs)} s: the blackhole let it in, no give-up measured (${model})`
          : `one attempt to ${formatEndpoint(target)} was still pending after ${seconds(measuredMs)} s, cancelled: no give-up seen (${model})`;
  s.record("giveup", outcome, text, { ms: measuredMs, ...(code ? { code } : {}) });
  return { target, outcome, measuredMs, modelMs, code, text };
}

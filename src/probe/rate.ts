import { type Endpoint, formatEndpoint } from "../errors.js";
import { selfReleaseWaitMs } from "./cross.js";
import type { Dial } from "./dial.js";
import type { LimitScope } from "./report.js";
import { ms, type ProbeSession } from "./session.js";
import { retransmissionOf } from "./syn-schedule.js";

export interface RateFinding {
  /** Time between releases of new destinations; null when only one could be tried. */
  readonly intervalMs: number | null;
  readonly ratePerSecond: number | null;
}

/**
 * A throttle on new destinations (Williamson's virus throttle) ignores how
 * many attempts are pending; it delays the first connect to a destination it
 * has not seen recently and releases one such destination per interval.
 * Connecting to several new destinations at once shows it: the last one
 * waits, and they complete one interval apart.
 */
export async function findRateLimit(
  s: ProbeSession,
  destinations: readonly Endpoint[],
): Promise<RateFinding | null> {
  await s.setHeld(0);
  if (destinations.length === 0) {
    s.notes.push(
      "a rate limit on new destinations was not tested: it needs destinations besides the live target (repeat --live)",
    );
    return null;
  }
  for (let attempt = 1; ; attempt++) {
    const r = await rateAttempt(s, destinations, attempt < RESENT_ATTEMPTS);
    if (r !== "resent") return r;
    if (attempt >= RESENT_ATTEMPTS) {
      s.notes.push(
        `a rate limit on new destinations was not tested: ${RESENT_ATTEMPTS} times over, a connect got through only on a SYN resend (dropped SYNs, not a release by a throttle)`,
      );
      return null;
    }
  }
}

/** How often the new-destination test is run again when a connect in it lost its SYN. */
const RESENT_ATTEMPTS = 3;

async function rateAttempt(
  s: ProbeSession,
  destinations: readonly Endpoint[],
  mayRetry: boolean,
): Promise<RateFinding | null | "resent"> {
  s.progress(`connecting to ${destinations.length} new destinations at once …`);
  // The live target, known by now, goes last. A throttle lets it pass while
  // the new destinations wait; a stall of this process delays them all
  // alike. So what counts is how much later than it the last new one ends.
  const dials = await dialInOrder(s, [...destinations, s.live], (d) => s.dial(d));
  const known = dials.pop() as Dial;
  try {
    if (mayRetry && (s.lossSeen || s.connects.unanswered + s.connects.resent > 0)) {
      // Where SYNs are lost, a connect still unanswered after the confirm
      // window is tried afresh rather than awaited on its resend: a throttle
      // holds back every try, loss only some.
      await settleAll(s, [...dials, known], s.confirmMs);
      if ([...dials, known].some((d) => !d.outcome)) {
        s.record(
          "rate",
          "retry",
          `new destinations: ${dials.map(describe).join(", ")}, the known ${describe(known)}: SYNs are being lost here, so again with fresh connects`,
        );
        return "resent";
      }
    }
    await settleAll(s, [...dials, known], selfReleaseWaitMs(s.settleMs));
    const described = dials.map(describe).join(", ");
    const last = dials[dials.length - 1] as Dial;
    if (last.outcome?.kind === "error" && last.outcome.stage !== "target") {
      s.notes.push(`a rate limit was not tested: ${last.outcome.message}`);
      return null;
    }
    if (known.outcome?.kind !== "connected") {
      s.notes.push(`a rate limit was not tested: the known ${describe(known)}`);
      return null;
    }
    // A connect that completed on a SYN resend lost its SYN: a throttle
    // releases on its own clock, the resend schedule is the kernel's.
    const resent = [...dials, known].find(
      (d) =>
        d.outcome?.kind === "connected" && (retransmissionOf(s.schedule, d.outcome.ms) ?? 0) > 0,
    );
    if (resent) {
      s.record(
        "rate",
        "resent",
        `new destinations: ${described}, the known ${describe(known)}: one got through only on a SYN resend (a dropped SYN, not a throttle's release); again`,
      );
      return "resent";
    }
    if (!waitedBehind(s, last, known)) {
      s.record("rate", "through", `new destinations: ${described}: no rate limit`);
      return null;
    }
    const ends = dials
      .filter((d) => d.outcome?.kind === "connected")
      .map((d) => d.endedAt ?? 0)
      .sort((a, b) => a - b);
    const gaps = ends.slice(1).map((t, i) => t - (ends[i] ?? t));
    const intervalMs = gaps.length > 0 ? median(gaps) : null;
    const ratePerSecond = intervalMs && intervalMs > 0 ? 1000 / intervalMs : null;
    s.record(
      "rate",
      "delayed",
      `new destinations: ${described}, while the known ${describe(known)}${intervalMs === null ? "" : `: one new destination released every ${ms(intervalMs)} ms`}`,
      intervalMs === null ? {} : { ms: intervalMs },
    );
    return { intervalMs, ratePerSecond };
  } finally {
    for (const d of [...dials, known]) d.cancel();
  }
}

/** `d` ended (or is still pending) more than a settle window after `reference`, dialed after it, connected. */
function waitedBehind(s: ProbeSession, d: Dial, reference: Dial): boolean {
  const ref = reference.endedAt ?? s.clock.now();
  return (d.outcome?.kind === "connected" ? (d.endedAt ?? ref) : s.clock.now()) - ref > s.settleMs;
}

/**
 * Per process or machine-wide, for a throttle: a fresh process connecting
 * to a second destination right after its first meets a throttle of its own
 * (it waits); a throttle shared by the host already knows both.
 */
export async function rateScope(
  s: ProbeSession,
  destinations: readonly Endpoint[],
): Promise<LimitScope> {
  const helper = await s.readyHelper();
  const second = destinations[0];
  if (!helper || !second) return "unknown";
  // The warm-up connect to the live target was the helper's first; this one
  // is new to a throttle of its own, but known to one the host shares.
  const dials = await dialInOrder(s, [second, s.live], (d) => helper.dial(d));
  const [fresh, known] = dials as [Dial, Dial];
  try {
    await settleAll(s, dials, selfReleaseWaitMs(s.settleMs));
    const failed = dials.find((d) => d.outcome?.kind === "error" && d.outcome.stage !== "target");
    if (failed?.outcome?.kind === "error") {
      s.notes.push(`process or machine-wide: not determined (${failed.outcome.message})`);
      return "unknown";
    }
    const scope: LimitScope =
      known.outcome?.kind !== "connected"
        ? "unknown"
        : waitedBehind(s, fresh, known)
          ? "process"
          : "machine";
    s.record(
      "helper",
      scope === "machine" ? "through" : scope === "process" ? "delayed" : "inconclusive",
      `helper process (pid ${helper.pid}): ${dials.map(describe).join(", ")}: ${
        scope === "process"
          ? "it meets a throttle of its own"
          : scope === "machine"
            ? "it passes freely to a destination this process just contacted: the throttle is shared"
            : "its connect to the live target failed: cannot tell"
      }`,
    );
    return scope;
  } finally {
    for (const d of dials) d.cancel();
  }
}

/** Each dial leaves before the next starts, so a limiter sees them in this order. */
async function dialInOrder(
  s: ProbeSession,
  targets: readonly Endpoint[],
  dial: (t: Endpoint) => Dial,
): Promise<Dial[]> {
  const dials: Dial[] = [];
  for (const t of targets) {
    s.checkAborted();
    const d = dial(t);
    dials.push(d);
    await d.sent;
  }
  return dials;
}

async function settleAll(s: ProbeSession, dials: readonly Dial[], capMs: number): Promise<void> {
  const until = s.clock.now() + capMs;
  for (const d of dials) {
    const left = until - s.clock.now();
    if (left > 0) await s.wait(d.done, left);
  }
}

function describe(d: Dial): string {
  const o = d.outcome;
  const what =
    o?.kind === "connected"
      ? `connected in ${ms(o.ms)} ms`
      : o?.kind === "error"
        ? `failed (${o.code})`
        : "no answer";
  return `${formatEndpoint(d.target)} ${what}`;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

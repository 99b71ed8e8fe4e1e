import { formatEndpoint } from "../errors.js";
import type { Dial } from "./dial.js";
import { ms, type ProbeSession } from "./session.js";
import { RETRANSMIT_LATE_MS, retransmissionOf } from "./syn-schedule.js";

/** What dropped SYNs with nothing held mean. */
export type DropFinding =
  | {
      readonly kind: "rate";
      /** New connects let through per second; a lower bound when every waiting connect got through. */
      readonly ratePerSecond: number | null;
      readonly lowerBound: boolean;
    }
  | { readonly kind: "loss"; readonly dropped: number; readonly sent: number }
  | { readonly kind: "all-dropped"; readonly sent: number }
  | { readonly kind: "none" };

/** Connects per burst. */
const BURST = 16;
/** The most of the second burst a rate limiter lets through (its refill during the burst). */
const RATE_SECOND_BURST_MAX = 2;
/** How many resend rounds to watch for the rate: two fit in ~3 s on Linux. */
const ROUNDS = 2;

/**
 * SYNs dropped while the probe holds nothing: a SYN rate limit, or loss.
 * Two bursts back to back tell them apart. A rate limiter lets a first
 * burst through up to its bucket and drops nearly all of a second one sent
 * right after (the bucket has had no time to refill); loss drops SYNs of
 * both alike. The rate is then read from the resends: the waiting connects
 * all resend together, and the limiter lets through what it refilled since.
 */
export async function analyzeDrops(s: ProbeSession): Promise<DropFinding> {
  s.progress(
    `two bursts of ${BURST} connects to ${formatEndpoint(s.live)}: a rate limit or loss? …`,
  );
  const all: Dial[] = [];
  try {
    const first = await burst(s, all);
    const second = await burst(s, all);
    const sent = 2 * BURST;
    const dropped = sent - first - second;
    const text = `two bursts of ${BURST} new connects to ${formatEndpoint(s.live)}: ${first} and ${second} answered at once`;
    if (dropped === 0) {
      s.record("drops", "none", `${text}: no SYN dropped`);
      return { kind: "none" };
    }
    // A rate limiter has spent its bucket by the second burst and lets
    // through only what it refills meanwhile (a token or two at a few per
    // second); loss passes the same share of both bursts — at 50 % loss,
    // 2 or fewer of 16 pass once in 500 runs.
    if (first + second === 0 || second > RATE_SECOND_BURST_MAX || dropped < 3) {
      if (first + second === 0) {
        // Every SYN dropped: nothing comes through however long we wait
        // for the first resend, or a rate limiter drained by the baseline.
        const due = s.schedule.retransmitAtMs[0] ?? 1_000;
        await waitUntil(s, all, (all[0]?.startedAt ?? s.clock.now()) + due + RETRANSMIT_LATE_MS);
        const through = all.filter((d) => d.outcome?.kind === "connected").length;
        if (through === 0) {
          s.record("drops", "all-dropped", `${text}: every SYN dropped, resends too`);
          return { kind: "all-dropped", sent };
        }
        return await rate(s, all, text, through);
      }
      s.record(
        "drops",
        "loss",
        `${text}: ${dropped} of ${sent} first SYNs got no answer, in both bursts alike: loss, not a rate limit (one would drop nearly all of the second burst)`,
      );
      if (second < first / 2) {
        // Fewer in the second burst: a fast rate limiter would look like this too.
        s.alternatives.push(
          `SYN loss (${dropped} of ${sent} first SYNs dropped)`,
          `a SYN rate limit of more than about ${Math.round(((second + 1) * 1000) / Math.max(1, s.settleMs))} per second, refilling within a burst`,
        );
      }
      return { kind: "loss", dropped, sent };
    }
    return await rate(s, all, text, 0);
  } finally {
    for (const d of all) d.cancel();
  }
}

/** The waiting connects resend together; what the limiter lets through per round is its rate. */
async function rate(
  s: ProbeSession,
  all: readonly Dial[],
  text: string,
  alreadyThrough: number,
): Promise<DropFinding> {
  const start = all[0]?.startedAt ?? s.clock.now();
  const drainedAt = Math.max(...all.map((d) => d.startedAt));
  let lastDue = drainedAt;
  for (const due of s.schedule.retransmitAtMs.slice(0, ROUNDS)) {
    if (all.every((d) => d.outcome)) break;
    await waitUntil(s, all, start + due + RETRANSMIT_LATE_MS);
    lastDue = start + due;
  }
  const resent = all.filter(
    (d) => d.outcome?.kind === "connected" && (retransmissionOf(s.schedule, d.outcome.ms) ?? 0) > 0,
  ).length;
  const pendingLeft = all.some((d) => !d.outcome);
  const windowMs = lastDue - drainedAt;
  const ratePerSecond = windowMs > 0 && resent > 0 ? (resent * 1000) / windowMs : null;
  s.record(
    "drops",
    "rate",
    `${text}${alreadyThrough ? "" : "; the second burst nearly all dropped"}: a rate limit, not loss; ${resent} went through on resends within ${ms(windowMs)} ms${ratePerSecond === null ? "" : ` → about ${ratePerSecond.toFixed(1)} new connects per second${pendingLeft ? "" : " or more"}`}`,
  );
  return { kind: "rate", ratePerSecond, lowerBound: !pendingLeft };
}

/** One burst, each connect issued in order; how many answered within the settle window. */
async function burst(s: ProbeSession, all: Dial[]): Promise<number> {
  const dials: Dial[] = [];
  for (let i = 0; i < BURST; i++) {
    const d = s.dial(s.live);
    dials.push(d);
    all.push(d);
    await d.sent;
  }
  await waitUntil(s, dials, s.clock.now() + s.settleMs);
  return dials.filter((d) => d.outcome?.kind === "connected").length;
}

/** Waits until every dial ended or the clock reaches `until`. */
async function waitUntil(s: ProbeSession, dials: readonly Dial[], until: number): Promise<void> {
  const left = until - s.clock.now();
  if (left > 0) await s.wait(Promise.all(dials.map((d) => d.done)), left);
}

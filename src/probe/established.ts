import { formatEndpoint } from "../errors.js";
import type { Dial } from "./dial.js";
import type { LimitScope } from "./report.js";
import { ms, type ProbeSession } from "./session.js";
import { nextRetransmitMs, RETRANSMIT_LATE_MS, retransmissionOf } from "./syn-schedule.js";

/** A limit that counts established connections, found by holding them. */
export interface EstablishedFinding {
  readonly kind: "count";
  readonly k: number;
  readonly behaviour: "queued" | "dropped" | "refused";
  readonly handoffMs: number | null;
  readonly errorCode: string | null;
  readonly scope: LimitScope;
}

const ordinal = (n: number) => `${n}${n === 1 ? "st" : n === 2 ? "nd" : n === 3 ? "rd" : "th"}`;
const plural = (n: number) => `${n} established connection${n === 1 ? "" : "s"}`;

/**
 * Holds established connections to the live target, one more at a time: a
 * limiter that counts only pending attempts lets every one through; one
 * that counts connections (netfilter's connlimit, which counts conntrack
 * entries) stops at k. Cheap when nothing counts them (a loopback connect
 * each), and it needs no blackhole: the tarpit's own established
 * connections would use up such a limit, so this runs before it exists.
 *
 * Returns null when established connections do not count (up to `max`),
 * "not-count" when the blocked connect went through on its own resend with
 * nothing released — a rate limit or loss, for analyzeDrops.
 */
export async function findEstablishedLimit(
  s: ProbeSession,
  max: number,
): Promise<EstablishedFinding | "not-count" | null> {
  const held: Dial[] = [];
  const blocked: Dial[] = [];
  const releaseAll = () => {
    for (const d of held.splice(0)) s.release(d);
  };
  try {
    s.progress(`holding established connections to ${formatEndpoint(s.live)} …`);
    let refusedCode: string | null = null;
    while (held.length < max) {
      const r = await openHeld(s, blocked);
      if (r.kind === "through") held.push(r.dial);
      else {
        if (r.kind === "refused") refusedCode = r.code;
        break;
      }
    }
    const j = held.length;
    if (j >= max) {
      s.record(
        "established",
        "through",
        `holding ${plural(j)} to ${formatEndpoint(s.live)} (--max): every new connect still went through (no limit on established connections up to ${j})`,
      );
      return null;
    }
    if (refusedCode !== null) {
      s.record(
        "established",
        "refused",
        `holding ${plural(j)}, a new connect was refused at once (${refusedCode})`,
        { code: refusedCode },
      );
      // The target itself may refuse; the limit shows when one released lets the next through.
      s.release(held.pop() as Dial);
      const again = await openHeld(s, []);
      if (again.kind !== "through" || again.dial.outcome?.kind !== "connected") return null;
      s.record(
        "release",
        "through",
        `reset 1 of them → a new connect went through in ${ms(again.dial.outcome.ms)} ms: the limit counts established connections`,
        { ms: again.dial.outcome.ms },
      );
      held.push(again.dial);
      const scope = await scopeWith(s, held, j);
      return {
        kind: "count",
        k: j,
        behaviour: "refused",
        handoffMs: null,
        errorCode: refusedCode,
        scope,
      };
    }
    s.record(
      "established",
      "blocked",
      `holding ${plural(j)}, ${s.blockTries} new connects got no answer within ${ms(s.settleMs)} ms`,
    );
    s.warmHelper();
    // Holding everything: does one get through on its next resend by itself?
    // Every blocked connect gets its resend, not only the first: under random
    // loss (30 % in a CI run) four lost SYNs and the first one's lost resend
    // read as a limit; all four resends lost as well is 0.3⁸ (about 10⁻⁴).
    const now = s.clock.now();
    const lastDue = blocked
      .map((d) => {
        const due = nextRetransmitMs(s.schedule, now - d.startedAt);
        return due === null ? Number.NEGATIVE_INFINITY : d.startedAt + due;
      })
      .reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
    if (Number.isFinite(lastDue)) {
      await s.wait(anyDone(blocked), lastDue + RETRANSMIT_LATE_MS - s.clock.now());
    }
    const self = blocked.find((d) => d.outcome?.kind === "connected");
    if (self?.outcome?.kind === "connected") {
      s.record(
        "established",
        "self-released",
        `…then one went through in ${ms(self.outcome.ms)} ms with nothing released: not a count of connections (a rate limit, or loss)`,
      );
      return "not-count";
    }
    // Release one held connection: within milliseconds → queued; on the
    // next resend → dropped while over the limit.
    const victim = held.shift() as Dial;
    const releasedAt = s.clock.now();
    s.release(victim);
    const next = blocked
      .filter((d) => !d.outcome)
      .map((d) => d.startedAt + (nextRetransmitMs(s.schedule, releasedAt - d.startedAt) ?? 0))
      .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
    const until = Number.isFinite(next) ? next + RETRANSMIT_LATE_MS : releasedAt + s.confirmMs;
    await s.wait(anyDone(blocked), Math.max(s.settleMs, until - s.clock.now()));
    const through = blocked.find((d) => d.outcome?.kind === "connected");
    let behaviour: EstablishedFinding["behaviour"] = "dropped";
    let handoffMs: number | null = null;
    if (through?.outcome?.kind === "connected") {
      const after = (through.endedAt ?? releasedAt) - releasedAt;
      const resend = retransmissionOf(s.schedule, through.outcome.ms);
      // On the resend schedule it was a dropped SYN, however soon after the release.
      if (after <= s.settleMs && !resend) {
        behaviour = "queued";
        handoffMs = after;
      }
      s.record(
        "release",
        behaviour === "queued" ? "handoff" : "resend",
        behaviour === "queued"
          ? `reset 1 of the ${plural(j)} → a waiting connect completed ${ms(after)} ms later (queued)`
          : `reset 1 of the ${plural(j)} → a waiting connect went through ${ms(after)} ms later, on a SYN resend${resend ? ` (the ${ordinal(resend)}, due ${ms(s.schedule.retransmitAtMs[resend - 1] ?? 0)} ms after it started)` : ""}: over the limit SYNs are dropped`,
        { ms: after },
      );
      held.push(through);
    } else {
      s.record(
        "release",
        "still-blocked",
        `reset 1 of the ${plural(j)} → no waiting connect went through by its next resend`,
      );
    }
    for (const d of blocked.splice(0)) if (d !== through) d.cancel();
    const scope = await scopeWith(s, held, j);
    return { kind: "count", k: j, behaviour, handoffMs, errorCode: null, scope };
  } finally {
    for (const d of blocked) d.cancel();
    releaseAll();
  }
}

/** One more held connection: through, refused at once, or blocked (the blocked dials kept pending). */
async function openHeld(
  s: ProbeSession,
  blocked: Dial[],
): Promise<
  { kind: "through"; dial: Dial } | { kind: "refused"; code: string } | { kind: "blocked" }
> {
  const tries: Dial[] = [];
  let refused: string | null = null;
  for (let i = 0; i < s.blockTries; i++) {
    const d = s.dial(s.live, { keep: true });
    tries.push(d);
    await d.sent;
    await s.wait(d.done, s.settleMs);
    const done = tries.find((x) => x.outcome && x.outcome.kind !== "cancelled");
    if (done?.outcome?.kind === "connected") {
      // Unanswered ones before it were lost SYNs: evidence of loss.
      s.connects.unanswered += tries.filter((x) => !x.outcome).length;
      for (const x of tries) if (x !== done) s.release(x);
      return { kind: "through", dial: done };
    }
    if (done?.outcome?.kind === "error") {
      if (done.outcome.stage !== "target") {
        for (const x of tries) s.release(x);
        return { kind: "blocked" };
      }
      refused = done.outcome.code;
      // A limiter may still count a connection reset a moment ago
      // (netfilter's connlimit collects closed ones at most once a jiffy):
      // refused every time over a settle window is what counts.
      const gone = tries.splice(tries.indexOf(done), 1);
      for (const x of gone) s.release(x);
      if (i < s.blockTries - 1) await pause(s);
    }
  }
  if (refused !== null && tries.every((d) => d.outcome?.kind !== "connected")) {
    for (const x of tries) s.release(x);
    return { kind: "refused", code: refused };
  }
  blocked.push(...tries);
  return { kind: "blocked" };
}

/**
 * Per process or machine-wide: with the limit's connections held here, can
 * a second process connect? The helper warms up with nothing held.
 */
async function scopeWith(s: ProbeSession, held: Dial[], j: number): Promise<LimitScope> {
  const kept = held.splice(0);
  for (const d of kept) s.release(d);
  const helper = await s.readyHelper();
  if (!helper) return "unknown";
  for (let i = 0; i < j; i++) {
    const r = await openHeld(s, []);
    if (r.kind !== "through") {
      s.notes.push(
        "process or machine-wide: not determined (the held connections could not be opened again)",
      );
      return "unknown";
    }
    held.push(r.dial);
  }
  const h = helper.dial(s.live);
  try {
    await h.sent;
    const o = await s.wait(h.done, s.confirmMs);
    const who = `helper process (pid ${helper.pid}), ${plural(j)} here →`;
    if (o?.kind === "connected") {
      s.record(
        "helper",
        "through",
        `${who} its connect completed in ${ms(o.ms)} ms: not limited by ours`,
        {
          ms: o.ms,
        },
      );
      return "process";
    }
    if (o?.kind === "error" && o.stage !== "target") {
      s.notes.push(`process or machine-wide: not determined (${o.message})`);
      return "unknown";
    }
    s.record(
      "helper",
      o ? "refused" : "blocked",
      `${who} its connect ${o?.kind === "error" ? `was refused too (${o.code})` : "got no answer either"}: the limit is shared by every process`,
    );
    return "machine";
  } finally {
    h.cancel();
  }
}

function anyDone(dials: readonly Dial[]): Promise<unknown> {
  return Promise.race(dials.map((d) => d.done));
}

/** Waits one settle window (no dial to wait on). */
function pause(s: ProbeSession): Promise<unknown> {
  return s.wait(new Promise<never>(() => {}), s.settleMs);
}

import { formatEndpoint } from "../errors.js";
import type { Behaviour, LimitScope } from "./report.js";
import { searchLimit } from "./search.js";
import { attempts, CannotTest, ms, type ProbeSession } from "./session.js";

/** A limit shared across destinations, as confirmed at k. */
export interface CrossFinding {
  readonly k: number;
  readonly behaviour: Behaviour;
  readonly fifo: boolean | null;
  readonly handoffMs: number | null;
  readonly errorCode: string | null;
  readonly intervalMs: number | null;
}

/** How long a blocked connect may take to proceed by itself before the probe stops waiting. */
export const selfReleaseWaitMs = (settleMs: number) => Math.max(5_000, 20 * settleMs);

const MAX_ROUNDS = 3;

/**
 * Is there a limit across destinations, and what is k? Searches with live
 * connects, then confirms at k by releasing one held attempt. A result that
 * does not confirm (a slow connect mistaken for a blocked one) is searched
 * again with a settle window twice as long.
 */
export async function findCrossLimit(s: ProbeSession, max: number): Promise<CrossFinding | null> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const search = await searchLimit(max, async (held) => {
      const r = await s.trial(held);
      // The scope test will need a second process: start it now.
      if (r.passage !== "through") s.warmHelper();
      return r;
    });
    if (search.limit === null) return null;
    const confirmed = await confirmAt(s, search.limit);
    if (confirmed) return confirmed;
    s.settleMs *= 2;
    s.record(
      "note",
      "retry",
      `not confirmed at ${search.limit}: searching again with a ${ms(s.settleMs)} ms settle window`,
    );
  }
  throw new CannotTest(
    `connects to ${formatEndpoint(s.live)} were sometimes slow and sometimes not, ${MAX_ROUNDS} times over: this host is too busy to tell (try --settle with a larger window)`,
  );
}

/**
 * With k attempts held, two fresh connects must wait (or be refused);
 * cancelling one held attempt must let the first of them through — the
 * handoff — and then the second: that they complete in the order they were
 * made is what FIFO means here.
 */
async function confirmAt(s: ProbeSession, k: number): Promise<CrossFinding | null> {
  const held = await s.setHeld(k);
  s.progress(`${attempts(held)}: confirming with two waiting connects …`);
  const first = s.dial(s.live);
  await first.sent;
  const second = s.dial(s.live);
  await second.sent;
  try {
    const o1 = await s.wait(first.done, s.confirmMs);
    if (o1?.kind === "connected") {
      s.record("trial", "through", `${attempts(held)} → live connected in ${ms(o1.ms)} ms`, {
        ms: o1.ms,
      });
      return null;
    }
    if (o1?.kind === "error") {
      s.record("trial", "refused", `${attempts(held)} → live refused at once (${o1.code}), again`, {
        ms: o1.ms,
        code: o1.code,
      });
      return {
        k: held,
        behaviour: "refused",
        fifo: null,
        handoffMs: null,
        errorCode: o1.code,
        intervalMs: null,
      };
    }
    s.record(
      "trial",
      "blocked",
      `${attempts(held)} → two live connects blocked (no answer within ${ms(s.confirmMs)} ms)`,
    );
    const releasedAt = s.releaseOldest();
    const after = await s.wait(first.done, s.settleMs);
    if (after?.kind === "connected") {
      const handoffMs = (first.endedAt ?? releasedAt) - releasedAt;
      const o2 = await s.wait(second.done, s.settleMs);
      const fifo = o2?.kind !== "connected" || (first.endedAt ?? 0) <= (second.endedAt ?? 0);
      s.record(
        "release",
        "handoff",
        `cancelled 1 pending attempt → the first waiting connect completed ${ms(handoffMs)} ms later${
          o2?.kind === "connected"
            ? `, the second ${fifo ? "after it (FIFO)" : "before it (not FIFO)"}`
            : ""
        }`,
        { ms: handoffMs },
      );
      return { k: held, behaviour: "queued", fifo, handoffMs, errorCode: null, intervalMs: null };
    }
    // Not released by the end of a held attempt: does it proceed by itself?
    const late = after ?? (await s.wait(first.done, selfReleaseWaitMs(s.settleMs)));
    if (late?.kind === "connected") {
      s.record(
        "release",
        "self-released",
        `cancelling a pending attempt did not release the waiting connect; it completed by itself after ${ms(late.ms)} ms`,
        { ms: late.ms },
      );
      return {
        k: held,
        behaviour: "rate-limited",
        fifo: null,
        handoffMs: null,
        errorCode: null,
        intervalMs: late.ms,
      };
    }
    s.record(
      "release",
      "still-blocked",
      `cancelling a pending attempt did not release the waiting connect (${late ? late.kind : "no answer"} after ${ms(selfReleaseWaitMs(s.settleMs))} ms)`,
    );
    return {
      k: held,
      behaviour: "queued",
      fifo: null,
      handoffMs: null,
      errorCode: null,
      intervalMs: null,
    };
  } finally {
    first.cancel();
    second.cancel();
  }
}

/**
 * Per process or machine-wide: with k attempts held here, does a connect
 * from a second process wait too? If it does, releasing one here must let it
 * through.
 */
export async function crossScope(s: ProbeSession, k: number): Promise<LimitScope> {
  await s.setHeld(0);
  const helper = await s.readyHelper();
  if (!helper) return "unknown";
  const held = await s.setHeld(k);
  s.progress(`${attempts(held)} here: the helper process connects …`);
  const h = helper.dial(s.live);
  try {
    await h.sent;
    const o = await s.wait(h.done, s.confirmMs);
    const who = `helper process (pid ${helper.pid}), ${attempts(held)} here →`;
    if (o?.kind === "connected") {
      s.record("helper", "through", `${who} its connect completed in ${ms(o.ms)} ms: not delayed`, {
        ms: o.ms,
      });
      return "process";
    }
    if (o?.kind === "error") {
      if (o.stage !== "target") {
        s.notes.push(`process or machine-wide: not determined (${o.message})`);
        return "unknown";
      }
      s.record(
        "helper",
        "refused",
        `${who} its connect was refused too (${o.code}): the limit is shared`,
        {
          code: o.code,
        },
      );
      return "machine";
    }
    const releasedAt = s.releaseOldest();
    const after = await s.wait(h.done, s.settleMs);
    s.record(
      "helper",
      "blocked",
      after?.kind === "connected"
        ? `${who} its connect waited, and completed ${ms((h.endedAt ?? releasedAt) - releasedAt)} ms after one here was cancelled: the limit is shared`
        : `${who} its connect waited too: the limit is shared`,
    );
    return "machine";
  } finally {
    h.cancel();
  }
}

import { formatEndpoint } from "../errors.js";
import { countSynSent, type Owner, pollSynSent } from "../os/linux/syn-sent.js";
import type { Behaviour, LimitScope } from "./report.js";
import { attempts, ms, type ProbeSession } from "./session.js";
import { tableSees } from "./targets.js";

export interface DestinationFinding {
  readonly k: number;
  readonly behaviour: Exclude<Behaviour, "rate-limited">;
  readonly handoffMs: number | null;
  readonly errorCode: string | null;
}

/**
 * A limit per destination: the held attempts all go to the blackhole, so
 * they compete only with each other. A live connect elsewhere cannot show
 * it; two signs can: held attempts refused at once while live connects went
 * through, or — in the kernel's TCP table — fewer of them in SYN_SENT than
 * are pending, the rest waiting before their SYN.
 */
export async function findDestinationLimit(s: ProbeSession): Promise<DestinationFinding | null> {
  const refusal = s.ended.find((e) => e.outcome.kind === "error" && e.outcome.ms <= s.settleMs);
  if (refusal && refusal.outcome.kind === "error") {
    const k = Math.max(1, refusal.pendingBefore);
    s.record(
      "destination",
      "refused",
      `with ${attempts(k)} to ${formatEndpoint(s.blackhole)}, one more was refused at once (${refusal.outcome.code}) while live connects went through`,
      { code: refusal.outcome.code },
    );
    return { k, behaviour: "refused", handoffMs: null, errorCode: refusal.outcome.code };
  }
  if (!tableSees(s.via)) {
    s.notes.push(
      "a limit per destination was not tested: it needs the kernel's TCP table (Linux /proc) on the host that makes the attempts",
    );
    return null;
  }
  const pending = s.heldCount;
  const owner: Owner = s.via ? "any" : process.pid;
  s.progress(`counting which of ${attempts(pending)} are in SYN_SENT …`);
  const seen = await pollSynSent(
    s.blackhole,
    owner,
    (n) => n >= pending,
    s.settleMs,
    s.clock,
    s.signal,
  );
  if (seen.met || seen.count === 0) {
    s.record(
      "destination",
      seen.met ? "all-sent" : "none-sent",
      seen.met
        ? `all ${attempts(pending)} to ${formatEndpoint(s.blackhole)} are in SYN_SENT: no limit per destination`
        : `none of the ${attempts(pending)} showed up in SYN_SENT: cannot tell a limit per destination`,
    );
    if (!seen.met)
      s.notes.push("a limit per destination could not be tested: no SYN_SENT socket was visible");
    return null;
  }
  const k = seen.count;
  s.record(
    "destination",
    "held-back",
    `${attempts(pending)} to ${formatEndpoint(s.blackhole)}, only ${k} in SYN_SENT: the other ${pending - k} wait before their SYN`,
  );
  const releasedAt = s.releaseOldest();
  // The cancelled socket leaves the table at once; a queued one takes its place.
  const next = await pollSynSent(s.blackhole, owner, (n) => n >= k, s.settleMs, s.clock, s.signal);
  const handoffMs = next.met ? s.clock.now() - releasedAt : null;
  s.record(
    "release",
    next.met ? "handoff" : "still-blocked",
    next.met
      ? `cancelled 1 in SYN_SENT → a waiting attempt sent its SYN within ${ms(handoffMs ?? 0)} ms`
      : `cancelled 1 in SYN_SENT → no waiting attempt took its place within ${ms(s.settleMs)} ms`,
    handoffMs === null ? {} : { ms: handoffMs },
  );
  return { k, behaviour: "queued", handoffMs, errorCode: null };
}

/**
 * Per process or machine-wide, for a limit per destination: with the
 * blackhole's slots taken here, does a second process's attempt to it still
 * get its SYN out (or is it refused)?
 */
export async function destinationScope(
  s: ProbeSession,
  f: DestinationFinding,
): Promise<LimitScope> {
  const helper = await s.readyHelper();
  if (!helper) return "unknown";
  await s.setHeld(f.k);
  const owner: Owner = s.via ? "any" : helper.pid;
  const before = await countSynSent(s.blackhole, owner);
  const h = helper.dial(s.blackhole);
  try {
    await h.sent;
    const who = `helper process (pid ${helper.pid}), ${attempts(s.heldCount)} to ${formatEndpoint(s.blackhole)} here →`;
    if (f.behaviour === "refused") {
      const o = await s.wait(h.done, s.settleMs);
      const refused = o?.kind === "error" && o.stage === "target";
      s.record(
        "helper",
        refused ? "refused" : "pending",
        refused
          ? `${who} its attempt was refused too: the limit is shared`
          : `${who} its attempt stayed pending: not refused`,
      );
      return refused ? "machine" : "process";
    }
    const seen = await pollSynSent(
      s.blackhole,
      owner,
      (n) => n > before,
      s.settleMs,
      s.clock,
      s.signal,
    );
    s.record(
      "helper",
      seen.met ? "sent" : "held-back",
      seen.met
        ? `${who} its attempt went out (SYN_SENT) at once: not held back`
        : `${who} its attempt did not reach SYN_SENT within ${ms(s.settleMs)} ms: the limit is shared`,
    );
    return seen.met ? "process" : "machine";
  } finally {
    h.cancel();
  }
}

import type { Clock } from "../clock.js";
import { aborted, CannotTest, type Endpoint, formatEndpoint } from "../errors.js";
import type { ProxySpec } from "./address.js";
import { probeChannels } from "./channels.js";
import type { Dial, DialFn, DialOptions, DialOutcome } from "./dial.js";
import { HelperProcess } from "./helper-process.js";
import type { RetransmittedConnect, StepKind, TimelineEntry } from "./report.js";
import type { Passage, TrialResult } from "./search.js";
import { linuxSynSchedule, retransmissionOf, type SynSchedule } from "./syn-schedule.js";

export { CannotTest } from "../errors.js";

export const ms = (n: number): string =>
  n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2);
export const attempts = (n: number): string => `${n} pending attempt${n === 1 ? "" : "s"}`;

let nextProbeId = 1;
/** Errors of this host's own making: no limiter's evidence. */
const localShortage = new Set(["EMFILE", "ENFILE", "ENOBUFS", "EADDRNOTAVAIL", "ENOMEM"]);
/** How long the helper's first connect, with nothing held, may take. */
const LIVE_WARMUP_MS = 5_000;
/**
 * Fresh connects a trial makes before it calls the live target blocked: a
 * SYN lost at random (30 % loss) blocks all of them once in 120 trials, a
 * limiter every time.
 */
export const BLOCK_TRIES = 4;
/** …and where SYNs are known to be lost: 30 % loss then blocks 8 in a row once in 15,000. */
const BLOCK_TRIES_LOSSY = 8;

const ordinal = (n: number) => `${n}${n === 1 ? "st" : n === 2 ? "nd" : n === 3 ? "rd" : "th"}`;

/** A held attempt that ended: refused at once (evidence of a limit) or otherwise. */
export interface EndedHold {
  readonly outcome: Extract<DialOutcome, { kind: "error" }>;
  /** How many older held attempts were still pending when it was made. */
  readonly pendingBefore: number;
}

/**
 * The state of one probe run: the attempts it holds against the blackhole
 * (oldest first), every dial it made (so all are cancelled at the end), the
 * timeline, and the helper process once one is needed.
 */
export class ProbeSession {
  readonly id = nextProbeId++;
  readonly t0: number;
  readonly timeline: TimelineEntry[] = [];
  readonly notes: string[] = [];
  /** Explanations the evidence cannot tell apart, each in words. */
  readonly alternatives: string[] = [];
  /** Refusals and other ends of held attempts, in order. */
  readonly ended: EndedHold[] = [];
  settleMs = 50;
  blackhole: Endpoint = { host: "", port: 0 };
  /** The blackhole is the probe's own tarpit (it may top up its accept queue). */
  blackholeIsTarpit = false;
  live: Endpoint = { host: "", port: 0 };
  readonly #held: Array<{ dial: Dial; pendingBefore: number }> = [];
  readonly #dials = new Set<Dial>();
  /** Established connections held open on purpose; reset at the end. */
  readonly #kept = new Set<Dial>();
  /** This host's SYN resend schedule: connects completing on it had their SYN dropped. */
  schedule: SynSchedule = linuxSynSchedule(6);
  /** Connects whose SYN was dropped and that completed on a resend, in order. */
  readonly retransmitted: RetransmittedConnect[] = [];
  /** Connects that completed, and how many of them only on a resend. */
  readonly connects = { completed: 0, resent: 0, unanswered: 0 };
  #helper: Promise<HelperProcess> | null = null;

  constructor(
    readonly clock: Clock,
    readonly dialFn: DialFn,
    readonly via: ProxySpec | null,
    readonly signal: AbortSignal | undefined,
  ) {
    this.t0 = clock.now();
  }

  /**
   * A connect counts as waiting for good only when it is still waiting after
   * twice the settle window: a limiter holds it indefinitely, noise does not,
   * and the longer wait is paid only where a limit was seen.
   */
  get confirmMs(): number {
    return 2 * this.settleMs;
  }

  /** Fresh connects before a connect counts as blocked. */
  get blockTries(): number {
    return this.lossSeen ? BLOCK_TRIES_LOSSY : BLOCK_TRIES;
  }

  #lateFillers = 0;

  /** A limit per destination that a limiter exempting known-reachable hosts would show too. */
  knownReachableAlternative = false;

  /** Set when the drop analysis found random SYN loss. */
  lossSeen = false;

  get heldCount(): number {
    return this.#held.length;
  }

  dial(target: Endpoint, options?: DialOptions): Dial {
    this.checkAborted();
    const d = this.dialFn(target, options);
    this.#dials.add(d);
    if (options?.keep) this.#kept.add(d);
    void d.done.then((o) => {
      this.#dials.delete(d);
      if (o.kind !== "connected") this.#kept.delete(d);
      else this.#observe(d, o.ms);
    });
    return d;
  }

  /** Resets a kept connection (or cancels it if still pending). */
  release(d: Dial): void {
    d.cancel();
    this.#kept.delete(d);
  }

  /**
   * A connect that completed on a SYN resend is evidence of a dropped SYN:
   * it goes on the record with when it was resent, once.
   */
  #observe(d: Dial, connectMs: number): void {
    this.connects.completed++;
    const resend = retransmissionOf(this.schedule, connectMs);
    if (!resend) return;
    this.connects.resent++;
    const resentAtMs = this.schedule.retransmitAtMs[resend - 1] ?? 0;
    this.retransmitted.push({
      atMs: d.startedAt - this.t0,
      target: { host: d.target.host, port: d.target.port },
      ms: connectMs,
      resend,
      resentAtMs,
    });
    this.record(
      "retransmit",
      "resent",
      `${formatEndpoint(d.target)} connected in ${ms(connectMs)} ms: its SYN got no answer and went through on the ${ordinal(resend)} resend (due at ${ms(resentAtMs)} ms)`,
      { ms: connectMs },
    );
  }

  record(step: StepKind, result: string, text: string, extra: { ms?: number; code?: string } = {}) {
    const entry: TimelineEntry = {
      atMs: this.clock.now() - this.t0,
      step,
      held: this.#held.length,
      result,
      ms: extra.ms ?? null,
      ...(extra.code !== undefined ? { code: extra.code } : {}),
      text,
    };
    this.timeline.push(entry);
    if (probeChannels.step.hasSubscribers) probeChannels.step.publish({ probe: this.id, entry });
  }

  progress(text: string): void {
    if (!probeChannels.progress.hasSubscribers) return;
    probeChannels.progress.publish({ probe: this.id, atMs: this.clock.now() - this.t0, text });
  }

  checkAborted(): void {
    if (this.signal?.aborted) throw aborted("probe", this.signal.reason);
  }

  /**
   * Resolves with the value, or undefined after `withinMs`; rejects when the
   * probe is aborted. When the timer fires, I/O gets one more turn first:
   * after a stall of this process the event loop runs due timers before it
   * polls sockets, and a connect that completed meanwhile must still count.
   */
  wait<T>(promise: Promise<T>, withinMs: number): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      if (this.signal?.aborted) return reject(aborted("probe", this.signal.reason));
      let done = false;
      const finish = (value: T | undefined) => {
        if (done) return;
        done = true;
        timer.cancel();
        this.signal?.removeEventListener("abort", onAbort);
        resolve(value);
      };
      const timer = this.clock.setTimer(() => setImmediate(() => finish(undefined)), withinMs);
      const onAbort = () => {
        done = true;
        timer.cancel();
        reject(aborted("probe", this.signal?.reason));
      };
      this.signal?.addEventListener("abort", onAbort, { once: true });
      void promise.then(finish);
    });
  }

  /**
   * Holds exactly `n` attempts pending against the blackhole where it can:
   * cancels the newest first (under a FIFO limiter those are the ones still
   * waiting, so the slots stay taken), or opens more. Returns how many are
   * pending — fewer than `n` when a limiter refused some.
   */
  async setHeld(n: number): Promise<number> {
    this.pruneHeld();
    while (this.#held.length > n) this.#held.pop()?.dial.cancel();
    const opened: Dial[] = [];
    while (this.#held.length < n) {
      const dial = this.dial(this.blackhole);
      this.#held.push({ dial, pendingBefore: this.#held.length });
      opened.push(dial);
    }
    await Promise.all(opened.map((d) => d.sent));
    this.pruneHeld();
    return this.#held.length;
  }

  /** Drops held attempts that ended; a blackhole that answers cannot be probed with. */
  pruneHeld(): EndedHold[] {
    const ended: EndedHold[] = [];
    for (let i = this.#held.length - 1; i >= 0; i--) {
      const h = this.#held[i];
      const outcome = h?.dial.outcome;
      if (!h || !outcome) continue;
      this.#held.splice(i, 1);
      if (outcome.kind === "connected" && this.blackholeIsTarpit && this.#lateFillers < 4) {
        // Our own tarpit had room: one of its fillers lost its SYN. This
        // connection now fills that room (a reset one stays in the accept
        // queue until accepted, which the tarpit never does).
        this.#lateFillers++;
        this.record(
          "blackhole",
          "late-filler",
          `a held attempt got into the local tarpit on a SYN resend (a filler had lost its SYN): it fills the tarpit's accept queue now`,
        );
        continue;
      }
      if (outcome.kind === "connected") {
        throw new CannotTest(
          `the blackhole ${formatEndpoint(this.blackhole)} accepted a connection, so it cannot hold attempts pending`,
        );
      }
      if (outcome.kind === "error" && outcome.stage !== "target") {
        throw new CannotTest(`an attempt through the proxy failed: ${outcome.message}`);
      }
      this.#notLocal(outcome);
      if (outcome.kind === "error") ended.unshift({ outcome, pendingBefore: h.pendingBefore });
    }
    this.ended.push(...ended);
    return ended;
  }

  #notLocal(outcome: DialOutcome): void {
    if (outcome.kind === "error" && localShortage.has(outcome.code)) {
      throw new CannotTest(
        `this host ran out of sockets (${outcome.code}) with ${attempts(this.#held.filter((h) => !h.dial.outcome).length)} held: lower --max, or raise the file-descriptor limit (ulimit -n)`,
      );
    }
  }

  /** Cancels the oldest held attempt — under a FIFO limiter, one that holds a slot. */
  releaseOldest(): number {
    this.#held.shift()?.dial.cancel();
    return this.clock.now();
  }

  /**
   * One trial: with `n` attempts held, does a fresh connect to the live
   * target go through within the settle window? A queued connect never
   * completes by itself, so not completing in 20× its usual time is the
   * signal; the caller confirms it by releasing a held attempt.
   */
  async trial(n: number): Promise<TrialResult & { ms: number; code?: string }> {
    for (let round = 0; ; round++) {
      const held = await this.setHeld(n);
      const who = `${attempts(held)}${held < n ? ` (${n - held} more refused at once)` : ""}`;
      this.progress(`${attempts(held)}: connecting to ${formatEndpoint(this.live)} …`);
      const { outcome, tries } = await this.connectLive();
      const endedDuring = this.pruneHeld().filter((e) => e.outcome.ms > this.settleMs);
      const pending = Math.min(held, this.#held.length + endedDuring.length);
      if (!outcome) {
        this.record(
          "trial",
          "blocked",
          `${who} → live blocked (${tries} fresh connects, none answered within ${ms(this.settleMs)} ms)`,
        );
        return { passage: "blocked", held: pending, ms: this.settleMs };
      }
      if (outcome.kind === "error" && outcome.stage !== "target") {
        throw new CannotTest(
          `the live connect failed before reaching the target: ${outcome.message}`,
        );
      }
      this.#notLocal(outcome);
      // A held attempt that ended meanwhile (a timeout) may have freed the
      // slot the live connect used: run the trial again.
      if (endedDuring.length > 0 && outcome.kind === "connected") {
        if (round < 2) continue;
        const first = endedDuring[0]?.outcome;
        throw new CannotTest(
          `attempts held against ${formatEndpoint(this.blackhole)} keep ending (${first?.code}) after ${ms(first?.ms ?? 0)} ms: it must keep them pending longer than the ${ms(this.settleMs)} ms settle window`,
        );
      }
      const passage: Passage = outcome.kind === "connected" ? "through" : "refused";
      const code = outcome.kind === "error" ? outcome.code : undefined;
      this.record(
        "trial",
        passage,
        passage === "through"
          ? `${who} → live connected in ${ms(outcome.ms)} ms${tries > 1 ? ` (after ${tries - 1} fresh connect${tries > 2 ? "s" : ""} got no answer: a SYN dropped or lost)` : ""}`
          : `${who} → live refused at once (${code}) after ${ms(outcome.ms)} ms`,
        { ms: outcome.ms, ...(code !== undefined ? { code } : {}) },
      );
      return { passage, held: pending, ms: outcome.ms, ...(code !== undefined ? { code } : {}) };
    }
  }

  /**
   * Connects to the live target; a connect with no answer within the settle
   * window is followed by fresh ones (up to BLOCK_TRIES), since one SYN may
   * simply have been lost. Every dial is ended before this returns; the
   * outcome is the first that came.
   */
  async connectLive(
    target: Endpoint = this.live,
  ): Promise<{ outcome: DialOutcome | undefined; tries: number }> {
    const dials: Dial[] = [];
    let outcome: DialOutcome | undefined;
    try {
      for (let i = 0; i < this.blockTries && !outcome; i++) {
        const d = this.dial(target);
        dials.push(d);
        await d.sent;
        outcome = await this.wait(d.done, this.settleMs);
        // An earlier one may have gone through on its resend meanwhile.
        outcome ??=
          dials.find((x) => x.outcome && x.outcome.kind !== "cancelled")?.outcome ?? undefined;
      }
      // Unanswered, then a fresh one went straight through: lost SYNs.
      if (outcome?.kind === "connected" && dials.length > 1) {
        this.connects.unanswered += dials.length - 1;
      }
      return { outcome, tries: dials.length };
    } finally {
      for (const d of dials) d.cancel();
    }
  }

  /** Starts the helper process now, so its start-up overlaps other work. */
  warmHelper(): void {
    if (this.#helper) return;
    this.#helper = HelperProcess.start(this.via, this.clock, this.signal);
    // Used later; an early failure must not be an unhandled rejection.
    this.#helper.catch(() => {});
  }

  /**
   * The helper, once it has connected to the live target with nothing held
   * here: a cold process's first connect is slow (module loading, JIT) and
   * must not be mistaken for a delayed one. Null, with a note, if it fails.
   */
  async readyHelper(): Promise<HelperProcess | null> {
    this.warmHelper();
    this.progress("starting a helper process …");
    try {
      const helper = await (this.#helper as Promise<HelperProcess>).catch((error: unknown) => {
        this.checkAborted();
        // One more try: spawning can fail for passing reasons (EAGAIN, a
        // busy host); a second failure is reported.
        this.#helper = HelperProcess.start(this.via, this.clock, this.signal);
        this.record(
          "note",
          "retry",
          `the helper process failed (${(error as Error).message}); starting another`,
        );
        return this.#helper;
      });
      const warm = helper.dial(this.live);
      const o = await this.wait(warm.done, LIVE_WARMUP_MS);
      warm.cancel();
      if (o?.kind !== "connected") {
        const why = !o
          ? `no answer within ${LIVE_WARMUP_MS} ms`
          : o.kind === "error"
            ? o.message
            : o.kind;
        throw new Error(
          `the helper process could not connect to ${formatEndpoint(this.live)} (${why})`,
        );
      }
      return helper;
    } catch (error) {
      if (this.signal?.aborted) throw error;
      this.notes.push(`process or machine-wide: not determined (${(error as Error).message})`);
      return null;
    }
  }

  /** Cancels every attempt the probe made and ends the helper: nothing stays pending. */
  async close(): Promise<void> {
    for (const d of this.#dials) d.cancel();
    for (const d of this.#kept) d.cancel();
    this.#kept.clear();
    this.#held.length = 0;
    const helper = await this.#helper?.catch(() => null);
    await helper?.close();
  }
}

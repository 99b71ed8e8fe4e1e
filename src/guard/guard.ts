import net from "node:net";
import tls from "node:tls";
import { backgroundClock, type Clock, isClock } from "../clock.js";
import { defaults } from "../defaults.js";
import {
  aborted,
  breakerOpen,
  connectTimeout,
  formatEndpoint,
  invalidOption,
  preflightFailed,
  SynlimitError,
} from "../errors.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Breaker, type BreakerState } from "./breaker.js";
import { type AttemptBudget, sharedBudget } from "./budget.js";
import { guardChannels, publish } from "./channels.js";
import { type Disposable, GuardEvent } from "./events.js";
import { hostActivity } from "./host-activity.js";
import { rejectUnknownKeys } from "./options.js";
import { customCheck, type PreflightCheck, type PreflightOutcome, udpEcho } from "./preflight.js";
import { ConnectTimeEstimator } from "./rtt.js";
import { rememberTcpUnder } from "./tcp-under.js";
import { emulationTimeScale } from "./time-scale.js";

export interface PreflightOptions {
  /** UDP port of the peer's echo responder (RFC 862; `synlimit echo`). */
  udpEchoPort?: number;
  /** Or a check of your own; resolve true when the peer is alive. */
  check?: PreflightCheck;
  /**
   * `always` (default): every connect is tested first, so a dead peer costs no
   * TCP attempt; `after-failure`: only the half-open trial is tested.
   */
  when?: "after-failure" | "always";
  timeoutMs?: number;
  /**
   * While preflights keep failing for a peer whose echo has never answered
   * (UDP filtered?), one TCP attempt is still allowed this often.
   */
  sparseTcpIntervalMs?: number;
}

export interface GuardOptions {
  /** Name of the process-wide attempt budget shared with other guards (default "background"). */
  budget?: string;
  maxInFlight?: number;
  maxInFlightPerDestination?: number;
  /** A fixed connect deadline; by default derived from measured connect times (floor 250 ms, cap 2 s). */
  connectTimeoutMs?: number;
  preflight?: PreflightOptions;
  backoff?: BackoffOptions;
  /** Consecutive failures that open a destination's breaker (default 1). */
  failureThreshold?: number;
  /** Hold connects while the host application has connects in flight (default false). */
  yieldToHost?: boolean | { maxWaitMs?: number };
  clock?: Clock;
  /**
   * Multiplies every duration above (deadlines, backoff, preflight, waits):
   * 0.1 runs the guard ten times faster. Default: the installed emulation's
   * time scale (`synlimit/register`, SYNLIMIT_TIME_SCALE), else 1.
   */
  timeScale?: number;
  /**
   * Largest share of any `slotWindowMs` that failed attempts to one peer may
   * hold a connect slot (default 0.05 of 60 s): the next attempt waits until
   * it fits.
   */
  maxSlotShare?: number;
  slotWindowMs?: number;
  /** Per-peer state unused this long is forgotten (default 10 min). */
  peerIdleMs?: number;
  /** At most this many peers are remembered (default 4096; least recently used go first). */
  maxPeers?: number;
}

export interface GuardConnectOptions {
  host: string;
  port: number;
  signal?: AbortSignal;
  /** Upgrade to TLS once the TCP connect is done; the attempt ends at TCP connect. */
  tls?: tls.ConnectionOptions;
  /** Extra net.connect options (localAddress, family, …). */
  socket?: Omit<net.TcpNetConnectOpts, "host" | "port" | "signal" | "timeout">;
  /**
   * The caller's own limit in real milliseconds for TCP connect plus TLS
   * handshake (undici's `connect.timeout`); the guard's deadline still applies.
   */
  timeoutMs?: number;
}

export interface GuardPeerEvent {
  host: string;
  port: number;
}
export interface GuardBreakEvent extends GuardPeerEvent {
  /** Real milliseconds until the next try. */
  retryAfterMs: number;
  /**
   * What opened it: a failed TCP attempt, a failed preflight, a TLS handshake
   * that failed on a connection that was made.
   */
  reason: "connect" | "preflight" | "abandoned" | "slot-budget" | "tls";
}
export interface GuardAttemptEvent extends GuardPeerEvent {
  deadlineMs: number;
  outcome: "connected" | "failed" | "timeout" | "aborted";
  /** From the instant the deadline was armed; the same clock as the deadline. */
  durationMs: number;
  /**
   * How much later than its deadline the attempt ended (0 when on time): a
   * busy event loop runs the deadline's timer late, and the socket lives on
   * until it runs. Counted by the slot budget.
   */
  lateMs: number;
  error?: Error;
}

interface PeerState {
  readonly key: string;
  readonly breaker: Breaker;
  readonly estimator: ConnectTimeEstimator;
  lastTcpAttemptAt: number;
  /** Start of the current streak of failed preflights, if any. */
  failingPreflightSince: number | null;
  /** The echo (or check) has said alive at least once: its silence then means dead. */
  preflightEverAlive: boolean;
  lastUsedAt: number;
  /** Connects using this state right now; a peer in use is never evicted. */
  users: number;
  /** Slot time held by recent failed attempts, oldest first; lateMs: past their deadline. */
  readonly holds: Array<{ end: number; heldMs: number; lateMs: number }>;
  /** Why the breaker last opened, for onBreak. */
  breakReason: GuardBreakEvent["reason"];
}

const retry = Symbol("retry");

/** Every key of GuardOptions, for strict validation (a stray key would silently drop a protection). */
export const guardOptionKeys = [
  "budget",
  "maxInFlight",
  "maxInFlightPerDestination",
  "connectTimeoutMs",
  "preflight",
  "backoff",
  "failureThreshold",
  "yieldToHost",
  "clock",
  "timeScale",
  "maxSlotShare",
  "slotWindowMs",
  "peerIdleMs",
  "maxPeers",
] as const;
export const preflightOptionKeys = [
  "udpEchoPort",
  "check",
  "when",
  "timeoutMs",
  "sparseTcpIntervalMs",
] as const;
const connectOptionKeys = ["host", "port", "signal", "tls", "socket", "timeoutMs"] as const;

/** Keys that belong one level down (or elsewhere), named in the error. */
const guardHints: Record<string, string> = {
  udpEchoPort: "preflight.udpEchoPort",
  check: "preflight.check",
  when: "preflight.when",
  sparseTcpIntervalMs: "preflight.sparseTcpIntervalMs",
  timeoutMs: "connectTimeoutMs or preflight.timeoutMs",
  initialMs: "backoff.initialMs",
  multiplier: "backoff.multiplier",
  jitter: "backoff.jitter",
  maxMs: "backoff.maxMs",
  random: "backoff.random",
  maxWaitMs: "yieldToHost.maxWaitMs",
  breaker: "failureThreshold (and backoff)",
  threshold: "failureThreshold",
};

/**
 * A guarded connector: the incident's remedy. With a preflight (UDP echo or
 * a check of your own) every connect tests the peer first, so a dead peer
 * costs no TCP attempt; without one, each attempt holds the host's connect
 * slot for at most one adaptive deadline, and a failing peer's attempts are
 * spaced so they hold it at most `maxSlotShare` of any minute. A breaker per
 * destination fails callers fast while the peer is failing, and lets exactly
 * one trial through when it half-opens.
 */
export class Guard {
  readonly #clock: Clock;
  readonly #budget: AttemptBudget;
  readonly #peers = new Map<string, PeerState>();
  #lastSweepAt = Number.NEGATIVE_INFINITY;
  readonly #timeScale: number | null;
  readonly #options: Required<Pick<GuardOptions, "failureThreshold">> & {
    connectTimeoutMs: number | undefined;
    preflight: Required<Omit<PreflightOptions, "udpEchoPort" | "check">> &
      Pick<PreflightOptions, "udpEchoPort" | "check">;
    backoff: BackoffOptions;
    yieldMaxWaitMs: number | null;
    maxSlotShare: number;
    slotWindowMs: number;
    peerIdleMs: number;
    maxPeers: number;
  };
  readonly #onBreak = new GuardEvent<GuardBreakEvent>();
  readonly #onReset = new GuardEvent<GuardPeerEvent>();
  readonly #onHalfOpen = new GuardEvent<GuardPeerEvent>();
  readonly #onAttempt = new GuardEvent<GuardAttemptEvent>();

  /** A destination's breaker opened (again). */
  readonly onBreak: (listener: (event: GuardBreakEvent) => void) => Disposable =
    this.#onBreak.subscribe;
  /** A destination's breaker closed after a success. */
  readonly onReset: (listener: (event: GuardPeerEvent) => void) => Disposable =
    this.#onReset.subscribe;
  /** A destination's breaker half-opened: one trial is on its way. */
  readonly onHalfOpen: (listener: (event: GuardPeerEvent) => void) => Disposable =
    this.#onHalfOpen.subscribe;
  /** A TCP attempt ended (connected, failed, timeout, aborted). */
  readonly onAttempt: (listener: (event: GuardAttemptEvent) => void) => Disposable =
    this.#onAttempt.subscribe;

  constructor(options: GuardOptions = {}) {
    if (typeof options !== "object" || options === null)
      throw invalidOption("options", "an object", options);
    rejectUnknownKeys("a Guard", "", options, guardOptionKeys, guardHints);
    const clock = options.clock ?? backgroundClock;
    if (!isClock(clock)) throw invalidOption("clock", "an object with now() and setTimer()", clock);
    this.#clock = clock;
    this.#timeScale =
      options.timeScale === undefined ? null : positiveNumber("timeScale", options.timeScale);
    const maxOverall = integerAtLeast1(
      "maxInFlight",
      options.maxInFlight ?? defaults.guardMaxOverall,
    );
    const maxPerDestination = integerAtLeast1(
      "maxInFlightPerDestination",
      options.maxInFlightPerDestination ?? defaults.guardMaxPerDestination,
    );
    const budgetName = options.budget ?? "background";
    if (typeof budgetName !== "string" || budgetName === "") {
      throw invalidOption("budget", "a non-empty string", budgetName);
    }
    this.#budget = sharedBudget(budgetName, maxOverall, maxPerDestination);
    const p = options.preflight ?? {};
    if (typeof p !== "object" || p === null) throw invalidOption("preflight", "an object", p);
    rejectUnknownKeys("a Guard preflight", "preflight.", p, preflightOptionKeys);
    if (
      p.udpEchoPort !== undefined &&
      !(Number.isInteger(p.udpEchoPort) && p.udpEchoPort > 0 && p.udpEchoPort < 65536)
    ) {
      throw invalidOption("preflight.udpEchoPort", "a port from 1 to 65535", p.udpEchoPort);
    }
    if (p.check !== undefined && typeof p.check !== "function") {
      throw invalidOption("preflight.check", "a function", p.check);
    }
    const when = p.when ?? "always";
    if (when !== "after-failure" && when !== "always") {
      throw invalidOption("preflight.when", "after-failure or always", when);
    }
    // A preflight object with neither means no preflight at all: a dead
    // peer would cost TCP attempts while the options read as protected.
    if (options.preflight !== undefined && p.udpEchoPort === undefined && p.check === undefined) {
      throw new SynlimitError(
        "SYNLIMIT_INVALID_OPTION",
        "option preflight needs udpEchoPort or check: without either there is no preflight (leave preflight out for none)",
      );
    }
    const yieldOption = options.yieldToHost ?? false;
    let yieldMaxWaitMs: number | null = null;
    if (yieldOption === true) yieldMaxWaitMs = defaults.yieldMaxWaitMs;
    else if (typeof yieldOption === "object" && yieldOption !== null) {
      rejectUnknownKeys("a Guard yieldToHost", "yieldToHost.", yieldOption, ["maxWaitMs"]);
      yieldMaxWaitMs = positiveMs(
        "yieldToHost.maxWaitMs",
        yieldOption.maxWaitMs ?? defaults.yieldMaxWaitMs,
      );
    } else if (yieldOption !== false) {
      throw invalidOption("yieldToHost", "a boolean or { maxWaitMs }", yieldOption);
    }
    const maxSlotShare = options.maxSlotShare ?? defaults.guardMaxSlotShare;
    if (!(typeof maxSlotShare === "number" && maxSlotShare > 0 && maxSlotShare <= 1)) {
      throw invalidOption("maxSlotShare", "a fraction above 0, at most 1", maxSlotShare);
    }
    this.#options = {
      failureThreshold: integerAtLeast1(
        "failureThreshold",
        options.failureThreshold ?? defaults.breakerFailureThreshold,
      ),
      connectTimeoutMs:
        options.connectTimeoutMs === undefined
          ? undefined
          : positiveMs("connectTimeoutMs", options.connectTimeoutMs),
      preflight: {
        ...(p.udpEchoPort !== undefined ? { udpEchoPort: p.udpEchoPort } : {}),
        ...(p.check !== undefined ? { check: p.check } : {}),
        when,
        timeoutMs: positiveMs("preflight.timeoutMs", p.timeoutMs ?? defaults.preflightTimeoutMs),
        sparseTcpIntervalMs: positiveMs(
          "preflight.sparseTcpIntervalMs",
          p.sparseTcpIntervalMs ?? defaults.sparseTcpIntervalMs,
        ),
      },
      backoff: options.backoff ?? {},
      yieldMaxWaitMs,
      maxSlotShare,
      slotWindowMs: positiveMs("slotWindowMs", options.slotWindowMs ?? defaults.guardSlotWindowMs),
      peerIdleMs: positiveMs("peerIdleMs", options.peerIdleMs ?? defaults.guardPeerIdleMs),
      maxPeers: integerAtLeast1("maxPeers", options.maxPeers ?? defaults.guardMaxPeers),
    };
    new Backoff(this.#options.backoff); // validates now, not at the first failure
    if (yieldMaxWaitMs !== null) hostActivity.start();
  }

  /** The time scale in force now: the option, else the installed emulation's, else 1. */
  get timeScale(): number {
    return this.#timeScale ?? emulationTimeScale();
  }

  /** Peers the guard currently remembers (breakers, connect times). */
  get peerCount(): number {
    return this.#peers.size;
  }

  /**
   * One liveness probe of a destination with this guard's preflight (UDP
   * echo or custom check), as before a connect; null when the guard has no
   * preflight. Used by ReconnectingLink to watch a connected peer's host.
   */
  probe(
    endpoint: { host: string; port: number },
    signal?: AbortSignal,
  ): Promise<PreflightOutcome> | null {
    if (!this.canProbe) return null;
    return this.#preflight(endpoint, signal);
  }

  /** Whether the guard has a preflight (UDP echo or custom check) to probe with. */
  get canProbe(): boolean {
    const { udpEchoPort, check } = this.#options.preflight;
    return udpEchoPort !== undefined || check !== undefined;
  }

  /** The breaker state of a destination ("closed" for one never seen). */
  state(host: string, port: number): BreakerState {
    return this.#peers.get(formatEndpoint({ host, port }))?.breaker.state ?? "closed";
  }

  /** Real milliseconds until the destination's breaker lets a try through (0: now). */
  nextTryInMs(host: string, port: number): number {
    const peer = this.#peers.get(formatEndpoint({ host, port }));
    return peer ? peer.breaker.retryAfterMs(this.#clock.now()) : 0;
  }

  /**
   * The deadline, in real milliseconds, the next TCP attempt to this
   * destination would get.
   */
  deadlineMs(host: string, port: number): number {
    const peer = this.#peers.get(formatEndpoint({ host, port }));
    return this.#deadlineFor(peer?.estimator ?? null);
  }

  /**
   * Opens a TCP (or TLS) connection through the guard. Rejects fast with
   * SYNLIMIT_BREAKER_OPEN or SYNLIMIT_PREFLIGHT_FAILED instead of trying a
   * peer known to be failing; SYNLIMIT_CONNECT_TIMEOUT when the short
   * deadline ends an attempt.
   */
  async connect(options: GuardConnectOptions): Promise<net.Socket> {
    if (typeof options !== "object" || options === null)
      throw invalidOption("options", "an object", options);
    rejectUnknownKeys("a Guard connect()", "", options, connectOptionKeys, {
      connectTimeoutMs: "timeoutMs",
      servername: "tls.servername",
      localAddress: "socket.localAddress",
    });
    const { host, port, signal } = options;
    if (typeof host !== "string" || host === "")
      throw invalidOption("host", "a host name or address", host);
    if (!(Number.isInteger(port) && port > 0 && port < 65536))
      throw invalidOption("port", "a port from 1 to 65535", port);
    if (options.timeoutMs !== undefined) positiveMs("timeoutMs", options.timeoutMs);
    if (signal?.aborted) throw aborted("connect", signal.reason);
    const started = this.#clock.now();
    const peer = this.#peer({ host, port });
    peer.users++;
    try {
      return await this.#connectVia(options, peer, started);
    } finally {
      peer.users--;
      peer.lastUsedAt = this.#clock.now();
    }
  }

  async #connectVia(
    options: GuardConnectOptions,
    peer: PeerState,
    started: number,
  ): Promise<net.Socket> {
    const { host, port, signal } = options;
    for (;;) {
      const decision = peer.breaker.decide(this.#clock.now());
      if (decision.kind === "open") {
        publish(guardChannels.skipped, {
          host,
          port,
          reason: "breaker-open",
          retryAfterMs: decision.retryAfterMs,
        });
        throw breakerOpen({ host, port }, decision.retryAfterMs);
      }
      if (decision.kind === "wait") {
        // cockatiel: the others wait for the one trial, then decide again.
        await untilSettled(decision.settled, signal);
        continue;
      }
      const trial = decision.kind === "trial" ? decision.trial : null;
      try {
        const socket = await this.#tryOnce(options, peer, trial !== null, started);
        if (socket === retry) continue;
        // The verdict waits for the TLS handshake: a peer whose handshake
        // fails (a certificate the client refuses) is a failing peer, or
        // every retry would reconnect at once, as many times a second as
        // the handshake takes.
        const ready = options.tls ? await this.#secure(socket, options, peer, started) : socket;
        if (peer.breaker.state !== "closed") this.#onReset.emit({ host, port });
        peer.breaker.success();
        return ready;
      } finally {
        // A trial that ended without a verdict (abort) hands the test to the next caller.
        if (trial) {
          peer.breakReason = "abandoned";
          peer.breaker.abandonTrial(trial, this.#clock.now());
        }
      }
    }
  }

  async #tryOnce(
    options: GuardConnectOptions,
    peer: PeerState,
    trial: boolean,
    started: number,
  ): Promise<net.Socket | typeof retry> {
    const { host, port, signal } = options;
    const endpoint = { host, port };
    const canTest =
      this.#options.preflight.udpEchoPort !== undefined ||
      this.#options.preflight.check !== undefined;
    if (canTest && (trial || this.#options.preflight.when === "always")) {
      const outcome = await this.#preflight(endpoint, signal);
      const now = this.#clock.now();
      if (outcome === "alive") {
        peer.failingPreflightSince = null;
        peer.preflightEverAlive = true;
      } else {
        peer.failingPreflightSince ??= now;
        // UDP may be filtered while TCP is fine: while the echo has never
        // answered this peer, one sparse TCP attempt goes through now and then.
        const quietSince = Math.max(peer.failingPreflightSince, peer.lastTcpAttemptAt);
        const sparseMs = this.#options.preflight.sparseTcpIntervalMs * this.timeScale;
        if (peer.preflightEverAlive || now - quietSince < sparseMs) {
          peer.breakReason = "preflight";
          const retryAfterMs = peer.breaker.failure(now);
          publish(guardChannels.skipped, {
            host,
            port,
            reason: "preflight",
            outcome,
            retryAfterMs,
          });
          throw preflightFailed(endpoint, outcome, retryAfterMs);
        }
      }
    }

    if (this.#options.yieldMaxWaitMs !== null && hostActivity.inFlight > 0) {
      publish(guardChannels.yield, { host, port, appInFlight: hostActivity.inFlight });
      await hostActivity.waitIdle(
        this.#options.yieldMaxWaitMs * this.timeScale,
        this.#clock,
        signal,
      );
    }

    const release = await this.#budget.acquire(peer.key, signal);
    try {
      // While this caller waited for a slot, another's attempt may have
      // opened the breaker, or a trial may be under way: decide again.
      if (!trial && peer.breaker.state !== "closed") return retry;
      let deadlineMs = this.#deadlineFor(peer.estimator);
      if (options.timeoutMs !== undefined) {
        deadlineMs = Math.max(
          0,
          Math.min(deadlineMs, options.timeoutMs - (this.#clock.now() - started)),
        );
      }
      // The slot budget is checked here, at the attempt itself, whatever path
      // led to it (a closed breaker below its failure threshold, a sparse TCP
      // try, a trial after a change of scale): an attempt is made only if its
      // full deadline fits into every window it can fall in.
      const admittedAt = this.#clock.now();
      const waitMs = this.#slotWait(peer, admittedAt, deadlineMs);
      if (waitMs > 0) {
        peer.breakReason = "slot-budget";
        peer.breaker.postpone(admittedAt, waitMs);
        publish(guardChannels.skipped, {
          host,
          port,
          reason: "slot-budget",
          retryAfterMs: waitMs,
        });
        throw breakerOpen(endpoint, waitMs);
      }
      const attempt = this.#attempt(options, peer, deadlineMs);
      try {
        // The breaker's verdict is the caller's, once TLS (if any) is up.
        return await attempt.socket;
      } catch (error) {
        const now = this.#clock.now();
        // Measured, lateness included; an aborted attempt held the slot too.
        const heldMs = now - attempt.startedAt;
        peer.holds.push({ end: now, heldMs, lateMs: Math.max(0, heldMs - deadlineMs) });
        if (!signal?.aborted) {
          peer.breakReason = "connect";
          peer.breaker.failure(now, this.#slotWait(peer, now, this.#deadlineFor(peer.estimator)));
        }
        throw error;
      }
    } finally {
      release();
    }
  }

  /**
   * TLS over a connected socket. A failed handshake is a failure of the peer
   * for its breaker, but not a hold of the host's connect slot: the TCP
   * connect had ended.
   */
  async #secure(
    socket: net.Socket,
    options: GuardConnectOptions,
    peer: PeerState,
    started: number,
  ): Promise<tls.TLSSocket> {
    const left =
      options.timeoutMs === undefined
        ? undefined
        : options.timeoutMs - (this.#clock.now() - started);
    try {
      return await upgrade(socket, options, this.#clock, left);
    } catch (error) {
      if (!options.signal?.aborted) {
        peer.breakReason = "tls";
        peer.breaker.failure(this.#clock.now());
      }
      throw error;
    }
  }

  /** Real ms failed attempts to one peer may hold a slot in any window. */
  #slotBudgetMs(): number {
    return this.#options.maxSlotShare * this.#options.slotWindowMs * this.timeScale;
  }

  /**
   * How long an attempt with this deadline must wait so that failed attempts
   * to this peer hold a slot at most `maxSlotShare` of any `slotWindowMs`.
   * Why any window, not just the trailing one: if at every start the holds
   * ending in the last window plus the new attempt's whole deadline fit the
   * budget, then any window's attempts — all counted at the start of its
   * last one — fit too. A deadline run late by a busy event loop breaks that
   * by its lateness, so the largest recent lateness is reserved as well.
   */
  #slotWait(peer: PeerState, now: number, deadlineMs: number): number {
    const windowMs = this.#options.slotWindowMs * this.timeScale;
    const budgetMs = this.#slotBudgetMs();
    while (peer.holds.length > 0 && (peer.holds[0] as { end: number }).end <= now - windowMs) {
      peer.holds.shift();
    }
    const lateMs = peer.holds.reduce((max, h) => Math.max(max, h.lateMs), 0);
    // Never more than the whole budget, so an empty window always admits it.
    const need = Math.min(budgetMs, deadlineMs + lateMs);
    let used = peer.holds.reduce((sum, h) => sum + h.heldMs, 0);
    let at = now;
    for (const hold of peer.holds) {
      if (used + need <= budgetMs) break;
      used -= hold.heldMs;
      at = hold.end + windowMs; // this hold has left the window by then
    }
    return at - now;
  }

  #deadlineFor(estimator: ConnectTimeEstimator | null): number {
    // One attempt never takes more than the whole slot budget (a small maxSlotShare).
    return Math.min(this.#slotBudgetMs(), this.#unboundedDeadlineFor(estimator));
  }

  #unboundedDeadlineFor(estimator: ConnectTimeEstimator | null): number {
    const scale = this.timeScale;
    if (this.#options.connectTimeoutMs !== undefined) return this.#options.connectTimeoutMs * scale;
    const floor = defaults.guardConnectTimeoutFloorMs * scale;
    const ceiling = defaults.guardConnectTimeoutCeilingMs * scale;
    const measured = estimator?.rtoMs(defaults.guardRttMargin) ?? null;
    // Measured connect times are real time already; only the bounds scale.
    if (measured === null) return defaults.guardConnectTimeoutUnmeasuredMs * scale;
    return Math.min(ceiling, Math.max(floor, measured));
  }

  #peer(endpoint: { host: string; port: number }): PeerState {
    const key = formatEndpoint(endpoint);
    const now = this.#clock.now();
    this.#sweep(now);
    const peer = this.#peers.get(key);
    if (peer) {
      // Most recently used last, so the cap evicts from the front.
      this.#peers.delete(key);
      this.#peers.set(key, peer);
      return peer;
    }
    const state: PeerState = {
      key,
      breaker: new Breaker(
        this.#options.failureThreshold,
        new Backoff(this.#options.backoff),
        () => this.timeScale,
        {
          onChange: (from, to, retryAfterMs) => {
            publish(guardChannels.breaker, {
              ...endpoint,
              from,
              to,
              retryAfterMs,
              // What opened it, as onBreak says.
              ...(to === "open" ? { reason: state.breakReason } : {}),
            });
            if (to === "open") {
              this.#onBreak.emit({ ...endpoint, retryAfterMs, reason: state.breakReason });
            } else if (to === "half-open") this.#onHalfOpen.emit({ ...endpoint });
          },
        },
      ),
      estimator: new ConnectTimeEstimator(),
      lastTcpAttemptAt: Number.NEGATIVE_INFINITY,
      failingPreflightSince: null,
      preflightEverAlive: false,
      lastUsedAt: now,
      users: 0,
      holds: [],
      breakReason: "connect",
    };
    this.#peers.set(key, state);
    this.#evictOverCap();
    return state;
  }

  /** Forgets peers idle for `peerIdleMs`; amortized: at most every quarter of it. */
  #sweep(now: number): void {
    const idleMs = this.#options.peerIdleMs;
    if (now - this.#lastSweepAt < idleMs / 4) return;
    this.#lastSweepAt = now;
    for (const [key, peer] of this.#peers) {
      if (evictable(peer) && now - peer.lastUsedAt >= idleMs) this.#peers.delete(key);
    }
  }

  #evictOverCap(): void {
    if (this.#peers.size <= this.#options.maxPeers) return;
    for (const [key, peer] of this.#peers) {
      if (this.#peers.size <= this.#options.maxPeers) break;
      if (evictable(peer)) this.#peers.delete(key);
    }
  }

  async #preflight(
    endpoint: { host: string; port: number },
    signal?: AbortSignal,
  ): Promise<PreflightOutcome> {
    const { udpEchoPort, check } = this.#options.preflight;
    const timeoutMs = this.#options.preflight.timeoutMs * this.timeScale;
    const started = this.#clock.now();
    let outcome: PreflightOutcome;
    if (check) outcome = await customCheck(check, endpoint, timeoutMs, this.#clock, signal);
    else {
      outcome = await udpEcho(
        { host: endpoint.host, port: udpEchoPort as number },
        timeoutMs,
        this.#clock,
        signal,
      );
    }
    publish(guardChannels.preflight, {
      ...endpoint,
      outcome,
      durationMs: this.#clock.now() - started,
    });
    return outcome;
  }

  /**
   * One TCP attempt under the deadline; the socket is destroyed on expiry,
   * ending its SYN_SENT. The deadline is armed, and the attempt's duration
   * measured, from one instant taken before the socket exists: whatever runs
   * synchronously in net.connect (an emulation's hook, `net.client.socket`
   * subscribers, the connect:start subscribers) is inside the deadline, not
   * added to the duration after it.
   */
  #attempt(
    options: GuardConnectOptions,
    peer: PeerState,
    deadlineMs: number,
  ): { socket: Promise<net.Socket>; startedAt: number } {
    const { host, port, signal } = options;
    publish(guardChannels.connectStart, { host, port, deadlineMs });
    const started = this.#clock.now();
    const dueAt = started + deadlineMs;
    peer.lastTcpAttemptAt = started;
    const socket = new Promise<net.Socket>((resolve, reject) => {
      let sock: net.Socket | null = null;
      let settled = false;
      const end = (outcome: GuardAttemptEvent["outcome"], error?: Error) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        signal?.removeEventListener("abort", onAbort);
        sock?.off("connect", onConnect);
        sock?.off("error", onError);
        // Lateness against the due time the timer was armed for, not
        // (now - started) > deadlineMs: with fractional times (jittered
        // backoff) that difference can exceed the deadline by one ulp for a
        // timer that fired exactly on time (1621.73… + 1000 - 1621.73… is
        // 1000.0000000000002).
        const now = this.#clock.now();
        const lateMs = Math.max(0, now - dueAt);
        const durationMs = lateMs > 0 ? deadlineMs + lateMs : Math.min(now - started, deadlineMs);
        publish(guardChannels.connectEnd, { host, port, outcome, durationMs, lateMs, error });
        if (error || !sock) {
          sock?.destroy();
          reject(error);
        } else {
          // Seen only after its due time, a connect's duration is the event
          // loop's delay, not the network's: no measurement.
          if (lateMs === 0) peer.estimator.observe(durationMs);
          resolve(sock);
        }
        this.#onAttempt.emit({
          host,
          port,
          deadlineMs,
          outcome,
          durationMs,
          lateMs,
          ...(error ? { error } : {}),
        });
      };
      const expire = () => end("timeout", connectTimeout({ host, port }, deadlineMs));
      // A timer that ran late (a blocked or starved event loop) may run
      // before the poll phase has handled a connect the kernel finished long
      // ago: the verdict waits one turn (setImmediate runs after the poll
      // phase), so a live peer is not failed for the loop's delay. A timer on
      // time (a virtual clock) decides at once.
      const timer = this.#clock.setTimer(
        () => (this.#clock.now() > dueAt ? setImmediate(expire) : expire()),
        deadlineMs,
      );
      const onAbort = () => end("aborted", aborted("connect", signal?.reason));
      const onConnect = () => end("connected");
      const onError = (error: Error) => end("failed", error);
      if (signal?.aborted) {
        onAbort();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        sock = hostActivity.own(() => net.connect({ ...options.socket, host, port }));
      } catch (error) {
        // Bad socket options throw synchronously; the deadline is already armed.
        end("failed", error as Error);
        return;
      }
      sock.once("connect", onConnect);
      sock.once("error", onError);
    });
    return { socket, startedAt: started };
  }
}

function evictable(peer: PeerState): boolean {
  return peer.users === 0 && !peer.breaker.trialInFlight;
}

/** Waits for a half-open trial to end, or for the caller's abort. */
function untilSettled(settled: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return settled;
  if (signal.aborted)
    return Promise.reject(aborted("waiting for the half-open trial", signal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(aborted("waiting for the half-open trial", signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    settled.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

function upgrade(
  socket: net.Socket,
  options: GuardConnectOptions,
  clock: Clock,
  timeoutMs: number | undefined,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      ...options.tls,
      // Node warns (DEP0123) when an IP address is sent as SNI.
      servername: sniOf(options.tls?.servername ?? options.host),
      // The name the certificate is checked against: without it, over a
      // given socket, Node checks "localhost" — an IP-addressed peer's
      // certificate (SAN IP:127.0.0.1) was refused. As undici does.
      host: options.host,
      socket,
    });
    rememberTcpUnder(secure, socket);
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      timer?.cancel();
      options.signal?.removeEventListener("abort", onAbort);
      if (error) {
        secure.destroy();
        socket.destroy();
        reject(error);
      } else resolve(secure);
    };
    const timer =
      timeoutMs === undefined
        ? null
        : clock.setTimer(
            () =>
              finish(
                connectTimeout({ host: options.host, port: options.port }, options.timeoutMs ?? 0),
              ),
            Math.max(0, timeoutMs),
          );
    const onAbort = () => finish(aborted("TLS handshake", options.signal?.reason));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    secure.once("secureConnect", () => finish());
    secure.once("error", (error) => finish(error));
  });
}

/** The SNI for a host: none for an IP address, as undici and Node's https do. */
export function sniOf(host: string | null | undefined): string | undefined {
  if (!host || net.isIP(host) !== 0) return undefined;
  return host;
}

function integerAtLeast1(name: string, value: number): number {
  if (!(Number.isInteger(value) && value >= 1))
    throw invalidOption(name, "a positive integer", value);
  return value;
}

function positiveMs(name: string, value: number): number {
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw invalidOption(name, "a positive number of milliseconds", value);
  }
  return value;
}

function positiveNumber(name: string, value: number): number {
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw invalidOption(name, "a positive number", value);
  }
  return value;
}

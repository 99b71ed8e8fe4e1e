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
} from "../errors.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { Breaker } from "./breaker.js";
import { type AttemptBudget, sharedBudget } from "./budget.js";
import { guardChannels, publish } from "./channels.js";
import { hostActivity } from "./host-activity.js";
import { customCheck, type PreflightCheck, type PreflightOutcome, udpEcho } from "./preflight.js";
import { ConnectTimeEstimator } from "./rtt.js";

export interface PreflightOptions {
  /** UDP port of the peer's echo responder (RFC 862; `synlimit echo`). */
  udpEchoPort?: number;
  /** Or a check of your own; resolve true when the peer is alive. */
  check?: PreflightCheck;
  /** `after-failure` (default): only a failing peer is tested first; `always`: every connect. */
  when?: "after-failure" | "always";
  timeoutMs?: number;
  /** While preflights keep failing, one TCP attempt is still allowed this often. */
  sparseTcpIntervalMs?: number;
}

export interface GuardOptions {
  /** Name of the process-wide attempt budget shared with other guards (default "background"). */
  budget?: string;
  maxInFlight?: number;
  maxInFlightPerDestination?: number;
  /** A fixed connect deadline; by default derived from measured connect times, 1–3 s. */
  connectTimeoutMs?: number;
  preflight?: PreflightOptions;
  backoff?: BackoffOptions;
  /** Consecutive failures that open a destination's breaker (default 1). */
  failureThreshold?: number;
  /** Hold connects while the host application has connects in flight (default false). */
  yieldToHost?: boolean | { maxWaitMs?: number };
  clock?: Clock;
}

export interface GuardConnectOptions {
  host: string;
  port: number;
  signal?: AbortSignal;
  /** Upgrade to TLS once the TCP connect is done; the attempt ends at TCP connect. */
  tls?: tls.ConnectionOptions;
  /** Extra net.connect options (localAddress, family, …). */
  socket?: Omit<net.TcpNetConnectOpts, "host" | "port" | "signal" | "timeout">;
}

interface PeerState {
  readonly breaker: Breaker;
  readonly estimator: ConnectTimeEstimator;
  lastTcpAttemptAt: number;
  /** Start of the current streak of failed preflights, if any. */
  failingPreflightSince: number | null;
}

/**
 * A guarded connector: the incident's remedy. A peer that has been failing is
 * tested by preflight before any TCP attempt; the client's own attempts are
 * budgeted (one at a time by default) and bounded by a short deadline; a
 * failing destination trips a breaker with jittered exponential backoff. A
 * dead peer therefore never holds the host's connect slot for long, and
 * usually not at all.
 */
export class Guard {
  readonly #clock: Clock;
  readonly #budget: AttemptBudget;
  readonly #peers = new Map<string, PeerState>();
  readonly #options: Required<Pick<GuardOptions, "failureThreshold">> & {
    connectTimeoutMs: number | undefined;
    preflight: Required<Omit<PreflightOptions, "udpEchoPort" | "check">> &
      Pick<PreflightOptions, "udpEchoPort" | "check">;
    backoff: BackoffOptions;
    yieldMaxWaitMs: number | null;
  };

  constructor(options: GuardOptions = {}) {
    if (typeof options !== "object" || options === null)
      throw invalidOption("options", "an object", options);
    const clock = options.clock ?? backgroundClock;
    if (!isClock(clock)) throw invalidOption("clock", "an object with now() and setTimer()", clock);
    this.#clock = clock;
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
    if (
      p.udpEchoPort !== undefined &&
      !(Number.isInteger(p.udpEchoPort) && p.udpEchoPort > 0 && p.udpEchoPort < 65536)
    ) {
      throw invalidOption("preflight.udpEchoPort", "a port from 1 to 65535", p.udpEchoPort);
    }
    if (p.check !== undefined && typeof p.check !== "function") {
      throw invalidOption("preflight.check", "a function", p.check);
    }
    const when = p.when ?? "after-failure";
    if (when !== "after-failure" && when !== "always") {
      throw invalidOption("preflight.when", "after-failure or always", when);
    }
    const yieldOption = options.yieldToHost ?? false;
    let yieldMaxWaitMs: number | null = null;
    if (yieldOption === true) yieldMaxWaitMs = defaults.yieldMaxWaitMs;
    else if (typeof yieldOption === "object" && yieldOption !== null) {
      yieldMaxWaitMs = positiveMs(
        "yieldToHost.maxWaitMs",
        yieldOption.maxWaitMs ?? defaults.yieldMaxWaitMs,
      );
    } else if (yieldOption !== false) {
      throw invalidOption("yieldToHost", "a boolean or { maxWaitMs }", yieldOption);
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
    };
    new Backoff(this.#options.backoff); // validates now, not at the first failure
    if (yieldMaxWaitMs !== null) hostActivity.start();
  }

  /** The breaker state of a destination ("closed" for one never seen). */
  state(host: string, port: number): "closed" | "open" | "half-open" {
    return this.#peers.get(formatEndpoint({ host, port }))?.breaker.state ?? "closed";
  }

  /** Milliseconds until the destination's breaker lets a try through (0: now). */
  nextTryInMs(host: string, port: number): number {
    const peer = this.#peers.get(formatEndpoint({ host, port }));
    return peer ? peer.breaker.retryAfterMs(this.#clock.now()) : 0;
  }

  /**
   * Opens a TCP (or TLS) connection through the guard. Rejects fast with
   * SYNLIMIT_BREAKER_OPEN or SYNLIMIT_PREFLIGHT_FAILED instead of trying a
   * peer known to be failing; SYNLIMIT_CONNECT_TIMEOUT when the short
   * deadline ends an attempt.
   */
  async connect(options: GuardConnectOptions): Promise<net.Socket> {
    const { host, port, signal } = options;
    if (typeof host !== "string" || host === "")
      throw invalidOption("host", "a host name or address", host);
    if (!(Number.isInteger(port) && port > 0 && port < 65536))
      throw invalidOption("port", "a port from 1 to 65535", port);
    if (signal?.aborted) throw aborted("connect", signal.reason);
    const endpoint = { host, port };
    const peer = this.#peer(endpoint);

    const decision = peer.breaker.decide(this.#clock.now());
    if (decision.kind === "open") {
      publish(guardChannels.skipped, {
        host,
        port,
        reason: "breaker-open",
        retryAfterMs: decision.retryAfterMs,
      });
      throw breakerOpen(endpoint, decision.retryAfterMs);
    }
    const mustTest = decision.kind === "half-open" || this.#options.preflight.when === "always";
    if (mustTest) {
      const outcome = await this.#preflight(endpoint, signal);
      const now = this.#clock.now();
      if (outcome === "alive") peer.failingPreflightSince = null;
      else {
        peer.failingPreflightSince ??= now;
        // UDP may be filtered while TCP is fine: after a long enough streak
        // of failed preflights, one sparse TCP attempt goes through anyway.
        const quietSince = Math.max(peer.failingPreflightSince, peer.lastTcpAttemptAt);
        if (now - quietSince < this.#options.preflight.sparseTcpIntervalMs) {
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
      await hostActivity.waitIdle(this.#options.yieldMaxWaitMs, this.#clock, signal);
    }

    const release = await this.#budget.acquire(formatEndpoint(endpoint), signal);
    try {
      const socket = await this.#attempt(options, peer);
      peer.breaker.success();
      return options.tls ? await upgrade(socket, options) : socket;
    } catch (error) {
      if (!signal?.aborted) peer.breaker.failure(this.#clock.now());
      throw error;
    } finally {
      release();
    }
  }

  #peer(endpoint: { host: string; port: number }): PeerState {
    const key = formatEndpoint(endpoint);
    let peer = this.#peers.get(key);
    if (!peer) {
      const state: PeerState = {
        breaker: new Breaker(
          this.#options.failureThreshold,
          new Backoff(this.#options.backoff),
          (from, to, retryAfterMs) =>
            publish(guardChannels.breaker, { ...endpoint, from, to, retryAfterMs }),
        ),
        estimator: new ConnectTimeEstimator(
          defaults.guardConnectTimeoutFloorMs,
          defaults.guardConnectTimeoutCeilingMs,
          defaults.guardRttMargin,
        ),
        lastTcpAttemptAt: Number.NEGATIVE_INFINITY,
        failingPreflightSince: null,
      };
      this.#peers.set(key, state);
      peer = state;
    }
    return peer;
  }

  async #preflight(
    endpoint: { host: string; port: number },
    signal?: AbortSignal,
  ): Promise<PreflightOutcome> {
    const { udpEchoPort, check, timeoutMs } = this.#options.preflight;
    const started = this.#clock.now();
    let outcome: PreflightOutcome;
    if (check) outcome = await customCheck(check, endpoint, timeoutMs, this.#clock, signal);
    else if (udpEchoPort !== undefined) {
      outcome = await udpEcho(
        { host: endpoint.host, port: udpEchoPort },
        timeoutMs,
        this.#clock,
        signal,
      );
    } else {
      // No way to test without TCP: the half-open TCP attempt is the test.
      return "alive";
    }
    publish(guardChannels.preflight, {
      ...endpoint,
      outcome,
      durationMs: this.#clock.now() - started,
    });
    return outcome;
  }

  /** One TCP attempt under the deadline; the socket is destroyed on expiry, ending its SYN_SENT. */
  #attempt(options: GuardConnectOptions, peer: PeerState): Promise<net.Socket> {
    const { host, port, signal } = options;
    const deadlineMs = this.#options.connectTimeoutMs ?? peer.estimator.deadlineMs();
    const started = this.#clock.now();
    peer.lastTcpAttemptAt = started;
    publish(guardChannels.connectStart, { host, port, deadlineMs });
    return new Promise((resolve, reject) => {
      const socket = hostActivity.own(() => net.connect({ ...options.socket, host, port }));
      let settled = false;
      const end = (outcome: "connected" | "failed" | "timeout" | "aborted", error?: Error) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        signal?.removeEventListener("abort", onAbort);
        socket.off("connect", onConnect);
        socket.off("error", onError);
        const durationMs = this.#clock.now() - started;
        publish(guardChannels.connectEnd, { host, port, outcome, durationMs, error });
        if (error) {
          socket.destroy();
          reject(error);
        } else {
          peer.estimator.observe(durationMs);
          resolve(socket);
        }
      };
      const timer = this.#clock.setTimer(
        () => end("timeout", connectTimeout({ host, port }, deadlineMs)),
        deadlineMs,
      );
      const onAbort = () => end("aborted", aborted("connect", signal?.reason));
      const onConnect = () => end("connected");
      const onError = (error: Error) => end("failed", error);
      signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("connect", onConnect);
      socket.once("error", onError);
    });
  }
}

function upgrade(socket: net.Socket, options: GuardConnectOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      servername: net.isIP(options.host) ? undefined : options.host,
      ...options.tls,
      socket,
    });
    const onAbort = () => secure.destroy(aborted("TLS handshake", options.signal?.reason));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    secure.once("secureConnect", () => {
      options.signal?.removeEventListener("abort", onAbort);
      resolve(secure);
    });
    secure.once("error", (error) => {
      options.signal?.removeEventListener("abort", onAbort);
      secure.destroy();
      reject(error);
    });
  });
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

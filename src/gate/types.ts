import type { Clock } from "../clock.js";
import type { TimingOption } from "./timing.js";

/** Where an attempt goes: a resolved address, never a host name. */
export interface Destination {
  readonly host: string;
  readonly port: number;
}

/** Who shares a limit: the whole process, each host:port, or a key you compute. */
export type Scope = "process" | "destination" | ((destination: Destination) => string);

/**
 * What happens over the limit: wait in line (the incident, Windows XP SP2),
 * fail at once, or Williamson's virus throttle (new destinations released at
 * a fixed rate, recent ones pass freely).
 */
export type Policy = "queue" | "reject" | "rate";

/**
 * Who waits first for a freed slot: arrival order (`fifo`), or XP SP2's
 * per-owner FIFO buckets served in turn (`round-robin`), so one process
 * queueing many attempts cannot starve another.
 */
export type Fairness = "fifo" | "round-robin";

export interface RateOptions {
  /** New destinations released per (scaled) second. */
  newDestinationsPerSecond?: number;
  /** Recently contacted destinations that pass without delay. */
  workingSetSize?: number;
}

export interface GateOptions {
  /** Concurrent attempts allowed per scope key (a positive integer or Infinity). */
  maxInFlight?: number;
  scope?: Scope;
  policy?: Policy;
  /** Queue order over the limit (default fifo); owners are given to `request()`. */
  fairness?: Fairness;
  /**
   * XP SP2: a host that accepted a connection within this many (unscaled)
   * milliseconds is known reachable, and attempts to it are not counted.
   * Default null: every attempt counts.
   */
  knownReachableMs?: number | null;
  /** A SYN schedule and give-up time; see `TimingOption`. */
  timing?: TimingOption;
  /** Multiplies every duration: 0.1 runs the incident's 21 s in 2.1 s. */
  timeScale?: number;
  rate?: RateOptions;
  clock?: Clock;
  /** A label carried by every event, e.g. the profile name. */
  name?: string;
  /**
   * Called with each limit-reached event, besides the global channel: an
   * owner of many gates (the proxy) learns which of its own gates it was
   * without matching names that another owner may share.
   */
  onLimitReached?: (event: LimitReachedEvent) => void;
}

export type AttemptState =
  | "queued"
  | "pending"
  | "connected"
  | "failed"
  | "timed-out"
  | "cancelled"
  | "rejected";

/** What every `synlimit:attempt:*` channel publishes. */
export interface AttemptEvent {
  readonly gate: string;
  readonly id: number;
  readonly key: string;
  /** Who made the attempt (round-robin buckets are per owner). */
  readonly owner: string;
  readonly host: string;
  readonly port: number;
  readonly state: AttemptState;
  /** Clock time of this event. */
  readonly at: number;
  /** Time spent waiting for a slot (so far, or in all once started). */
  readonly waitMs: number;
  /** Time from SYN to this event; 0 before the start. */
  readonly pendingMs: number;
  readonly inFlight: number;
  readonly queued: number;
  readonly error?: unknown;
  /** Went ahead uncounted: its destination was known reachable. */
  readonly exempt: boolean;
  /** When the emulated OS sends the SYN and its retransmissions, in (scaled) ms after the start. */
  readonly synAtMs: readonly number[];
  /** When the emulated OS gives up, in (scaled) ms after the start; null: no emulated deadline. */
  readonly giveUpMs: number | null;
}

/** Modelled on Windows Event 4226, published the first time a key hits its limit. */
export interface LimitReachedEvent {
  readonly gate: string;
  readonly key: string;
  readonly maxInFlight: number;
  readonly policy: Policy;
  readonly at: number;
  readonly message: string;
  /** The Windows event this one is modelled on. */
  readonly eventId: 4226;
}

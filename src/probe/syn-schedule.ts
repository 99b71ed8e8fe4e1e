import { readFile } from "node:fs/promises";
import {
  LINUX_INITIAL_RTO_MS,
  LINUX_RTO_MAX_MS,
  linuxSynSchedule as linuxRules,
} from "../os/linux-syn-schedule.js";

/**
 * When this host's TCP resends an unanswered SYN. A connect over a limiter
 * that drops SYNs (netfilter's limit, hashlimit, connlimit) or over a lossy
 * path completes only on one of these resends: a connect time that lands on
 * the schedule is a dropped SYN — evidence, never "normal latency".
 */
export interface SynSchedule {
  /** Milliseconds after connect(2) at which the SYN is resent, in order. */
  readonly retransmitAtMs: readonly number[];
  /** When the OS gives up (ETIMEDOUT). */
  readonly giveUpAtMs: number;
  /** Where the numbers come from, for the report. */
  readonly source: string;
}

/** Defaults when /proc cannot be read: net.ipv4.tcp_syn_retries = 6, no linear timeouts. */
const LINUX_DEFAULT_RETRIES = 6;

/** Linux's rules (see src/os/linux-syn-schedule.ts), with where the numbers came from. */
export function linuxSynSchedule(
  retries: number,
  linearTimeouts = 0,
  initialRtoMs = LINUX_INITIAL_RTO_MS,
  rtoMaxMs = LINUX_RTO_MAX_MS,
  source = "Linux defaults",
): SynSchedule {
  return { ...linuxRules(retries, linearTimeouts, initialRtoMs, rtoMaxMs), source };
}

async function readInt(path: string): Promise<number | null> {
  try {
    const n = Number.parseInt((await readFile(path, "utf8")).trim(), 10);
    return Number.isFinite(n) && n >= 0 ? n : null;
  } catch {
    return null;
  }
}

/** This host's SYN schedule (Linux: from /proc/sys/net/ipv4; elsewhere Linux's defaults, said so). */
export async function readSynSchedule(): Promise<SynSchedule> {
  const dir = "/proc/sys/net/ipv4";
  const [retries, linear, rtoMax] = await Promise.all([
    readInt(`${dir}/tcp_syn_retries`),
    readInt(`${dir}/tcp_syn_linear_timeouts`),
    readInt(`${dir}/tcp_rto_max_ms`),
  ]);
  if (retries === null) {
    return linuxSynSchedule(
      LINUX_DEFAULT_RETRIES,
      0,
      LINUX_INITIAL_RTO_MS,
      LINUX_RTO_MAX_MS,
      `assumed (Linux defaults; no /proc on ${process.platform})`,
    );
  }
  const parts = [`tcp_syn_retries ${retries}`];
  if (linear !== null) parts.push(`tcp_syn_linear_timeouts ${linear}`);
  return linuxSynSchedule(
    retries,
    linear ?? 0,
    LINUX_INITIAL_RTO_MS,
    rtoMax ?? LINUX_RTO_MAX_MS,
    `${dir}: ${parts.join(", ")}, initial RTO ${LINUX_INITIAL_RTO_MS} ms`,
  );
}

/**
 * The RTO timer fires a little late (timer slack, a busy host), and the
 * answer to the resent SYN needs a round trip: a connect that completes up
 * to this long after a resend is taken to have completed on it.
 */
export const RETRANSMIT_LATE_MS = 250;
/** …and this long before it (clock granularity). */
const RETRANSMIT_EARLY_MS = 5;

/**
 * Which resend a connect that took `ms` completed on: 1 for the first, …;
 * 0 when it completed before any resend. Null when it lands off the
 * schedule: delayed by something other than a dropped SYN (a queue).
 */
export function retransmissionOf(schedule: SynSchedule, ms: number): number | null {
  const first = schedule.retransmitAtMs[0];
  if (first === undefined || ms < first - RETRANSMIT_EARLY_MS) return 0;
  const i = schedule.retransmitAtMs.findIndex(
    (at) => ms >= at - RETRANSMIT_EARLY_MS && ms <= at + RETRANSMIT_LATE_MS,
  );
  return i < 0 ? null : i + 1;
}

/** When the next resend after `elapsedMs` is due (null: the OS will give up instead). */
export function nextRetransmitMs(schedule: SynSchedule, elapsedMs: number): number | null {
  return schedule.retransmitAtMs.find((at) => at > elapsedMs) ?? null;
}

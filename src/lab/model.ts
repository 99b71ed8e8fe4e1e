import { percentile } from "../stats.js";
import type { AgentModel } from "./types.js";

/**
 * The incident as a queue, for the check that reads the measured login waits.
 *
 * One slot (the incident's limit), FIFO. The naive agent runs `channels`
 * reconnect loops; each attempt to the dead collector holds the slot for the
 * full attempt timeout, then its loop pauses `retryPauseMs` and queues again.
 * A login needs the slot for an instant (a loopback connect): it waits for
 * the remainder of the pending attempt and for every agent attempt queued
 * ahead of it. Logins arrive at any moment of the agent's cycle, so the
 * prediction is the distribution over arrival times in the steady state.
 *
 * With one channel and no pause a login waits between 0 and one timeout,
 * evenly spread; with two channels one attempt is always queued behind the
 * pending one, and every login waits one to two timeouts.
 */
export interface QueueModelInput extends AgentModel {
  /** How long an attempt to the dead collector holds the slot. */
  attemptTimeoutMs: number;
  /** Concurrent attempts allowed (the incident: 1). */
  limit: number;
}

export interface LoginWaitPrediction {
  /** Sorted predicted waits, one per evenly spaced arrival over the agent's cycle. */
  waits: number[];
  quantile(p: number): number;
  maxMs: number;
}

const arrivals = 4_000;

export function predictLoginWaits(input: QueueModelInput): LoginWaitPrediction {
  const { attemptTimeoutMs: t, channels, retryPauseMs: pause, limit } = input;
  if (!(t > 0) || !Number.isInteger(channels) || channels < 0 || !(pause >= 0) || !(limit >= 1))
    throw new RangeError("predictLoginWaits: invalid model input");
  let waits: number[];
  if (channels < limit) {
    // A free slot is always left for the login.
    waits = [0];
  } else if (limit !== 1) {
    throw new RangeError("predictLoginWaits: only the incident's limit of 1 is modelled");
  } else {
    waits = singleSlotWaits(t, channels, pause);
  }
  waits.sort((a, b) => a - b);
  return {
    waits,
    quantile: (p) => percentile(waits, p),
    maxMs: waits[waits.length - 1] as number,
  };
}

function singleSlotWaits(t: number, channels: number, pause: number): number[] {
  // The agent alone: logins hold the slot for an instant, so they do not move its schedule.
  const cycle = channels * t + pause;
  const horizon = 40 * cycle;
  const queue: Array<{ at: number; channel: number }> = Array.from(
    { length: channels },
    (_, channel) => ({ at: 0, channel }),
  );
  const attempts: Array<{ queuedAt: number; endsAt: number }> = [];
  let free = 0;
  while (queue.length > 0) {
    queue.sort((a, b) => a.at - b.at || a.channel - b.channel);
    const next = queue.shift() as { at: number; channel: number };
    const start = Math.max(free, next.at);
    if (start > horizon) break;
    free = start + t;
    attempts.push({ queuedAt: next.at, endsAt: free });
    // The retry queues just after the failure: logins already waiting go first.
    queue.push({ at: free + pause + Number.EPSILON * free, channel: next.channel });
  }
  // Arrivals spread over the middle of the horizon, away from the start-up transient.
  const from = 10 * cycle;
  const to = 30 * cycle;
  const waits: number[] = [];
  let k = 0;
  let lastEnd = 0;
  for (let i = 0; i < arrivals; i++) {
    const at = from + ((to - from) * (i + 0.5)) / arrivals;
    // FIFO: the login goes after every agent attempt queued before it.
    while (k < attempts.length && (attempts[k] as { queuedAt: number }).queuedAt < at) {
      lastEnd = Math.max(lastEnd, (attempts[k] as { endsAt: number }).endsAt);
      k++;
    }
    waits.push(Math.max(0, lastEnd - at));
  }
  return waits;
}

import diagnostics from "node:diagnostics_channel";
import type { AttemptEvent, LimitReachedEvent } from "./types.js";

/**
 * Libraries never log: every state change of an attempt is published here.
 * Subscribe with `diagnostics_channel.subscribe(name, fn)`; publishing is
 * free while nobody listens.
 */
export const channelNames = {
  queued: "synlimit:attempt:queued",
  start: "synlimit:attempt:start",
  connected: "synlimit:attempt:connected",
  failed: "synlimit:attempt:failed",
  timeout: "synlimit:attempt:timeout",
  cancelled: "synlimit:attempt:cancelled",
  rejected: "synlimit:attempt:rejected",
  limitReached: "synlimit:limit:reached",
} as const;

export type AttemptChannel = Exclude<keyof typeof channelNames, "limitReached">;

export const attemptChannels: Record<AttemptChannel, diagnostics.Channel> = {
  queued: diagnostics.channel(channelNames.queued),
  start: diagnostics.channel(channelNames.start),
  connected: diagnostics.channel(channelNames.connected),
  failed: diagnostics.channel(channelNames.failed),
  timeout: diagnostics.channel(channelNames.timeout),
  cancelled: diagnostics.channel(channelNames.cancelled),
  rejected: diagnostics.channel(channelNames.rejected),
};

const attemptChannelList = Object.values(attemptChannels);

/**
 * Whether anyone listens on an attempt channel: then every attempt must be
 * tracked, even by a gate with nothing to decide, so that it can be told.
 */
export function attemptsObserved(): boolean {
  for (const channel of attemptChannelList) if (channel.hasSubscribers) return true;
  return false;
}

export const limitReachedChannel = diagnostics.channel(channelNames.limitReached);

export type { AttemptEvent, LimitReachedEvent };

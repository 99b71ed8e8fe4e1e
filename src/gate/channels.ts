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

export const limitReachedChannel = diagnostics.channel(channelNames.limitReached);

export type { AttemptEvent, LimitReachedEvent };

import diagnostics from "node:diagnostics_channel";

/** Every state change of the guard, for subscribers; the guard itself never logs. */
export const guardChannelNames = {
  /** { host, port, outcome, durationMs } */
  preflight: "synlimit:guard:preflight",
  /** { host, port, from, to, retryAfterMs } */
  breaker: "synlimit:guard:breaker",
  /** { host, port, deadlineMs } — a TCP attempt is about to be made. */
  connectStart: "synlimit:guard:connect:start",
  /** { host, port, outcome: "connected" | "failed" | "timeout" | "aborted", durationMs, lateMs, error? } */
  connectEnd: "synlimit:guard:connect:end",
  /** { host, port, reason: "breaker-open" | "preflight" | "slot-budget", retryAfterMs } — failed fast, no TCP attempt. */
  skipped: "synlimit:guard:skipped",
  /** { host, port, appInFlight } — held back while the host app connects. */
  yield: "synlimit:guard:yield",
  /** { host, port, queued, dropped, … } — a ReconnectingLink's state. */
  link: "synlimit:guard:link",
} as const;

export const guardChannels = {
  preflight: diagnostics.channel(guardChannelNames.preflight),
  breaker: diagnostics.channel(guardChannelNames.breaker),
  connectStart: diagnostics.channel(guardChannelNames.connectStart),
  connectEnd: diagnostics.channel(guardChannelNames.connectEnd),
  skipped: diagnostics.channel(guardChannelNames.skipped),
  yield: diagnostics.channel(guardChannelNames.yield),
  link: diagnostics.channel(guardChannelNames.link),
};

export function publish(channel: diagnostics.Channel, message: object): void {
  if (channel.hasSubscribers) channel.publish(message);
}

import diagnostics from "node:diagnostics_channel";

/**
 * What the proxy publishes; it never logs (the CLI subscribes and logs).
 * No message ever carries a password or a client's raw bytes.
 */
export const proxyChannelNames = {
  /** { client, remote, protocol? , event: "open" | "close", bytesIn?, bytesOut? } */
  client: "synlimit:proxy:client",
  /** { client, remote, phase, reason } — a client closed for bad input, a deadline or auth. */
  clientError: "synlimit:proxy:client-error",
  /** { client, identity, protocol, host, port } — a valid request, before any dial. */
  request: "synlimit:proxy:request",
  /** { dial, client, identity, host, port, address, outcome, waitMs, code? } — the attempt ended. */
  attempt: "synlimit:proxy:attempt",
  /** { client, identity, host, port, rule } — refused by the ACL. */
  denied: "synlimit:proxy:denied",
  /** { identity, maxInFlight, policy, message, eventId: 4226 } — an identity hit its limit. */
  limit: "synlimit:proxy:limit",
  /** { identity, settings } — the operator changed a limit ("default" for the default). */
  limits: "synlimit:proxy:limits",
  /** { method, path, status, remote } — one admin API request. */
  admin: "synlimit:proxy:admin",
  /**
   * { event: "start" | "end", fdLimit, budget, inUse, refused? } — the proxy
   * ran short of file descriptors; once per episode, never per client.
   */
  fdLimit: "synlimit:proxy:fd-limit",
} as const;

export type ProxyChannelName = (typeof proxyChannelNames)[keyof typeof proxyChannelNames];

export const proxyChannels = {
  client: diagnostics.channel(proxyChannelNames.client),
  clientError: diagnostics.channel(proxyChannelNames.clientError),
  request: diagnostics.channel(proxyChannelNames.request),
  attempt: diagnostics.channel(proxyChannelNames.attempt),
  denied: diagnostics.channel(proxyChannelNames.denied),
  limit: diagnostics.channel(proxyChannelNames.limit),
  limits: diagnostics.channel(proxyChannelNames.limits),
  admin: diagnostics.channel(proxyChannelNames.admin),
  fdLimit: diagnostics.channel(proxyChannelNames.fdLimit),
};

/** Builds the message only when someone listens: publishing stays free otherwise. */
export function publish(channel: diagnostics.Channel, message: () => object): void {
  if (channel.hasSubscribers) channel.publish(message());
}

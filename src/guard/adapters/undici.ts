import type net from "node:net";
import type tls from "node:tls";
import { Guard, type GuardOptions } from "../guard.js";

/** The part of undici's connector options the guard needs (structural: undici is not a dependency). */
export interface UndiciConnectOptions {
  hostname: string;
  host?: string;
  protocol: string;
  port: string | number;
  servername?: string | null;
  localAddress?: string | null;
}

export type UndiciConnectCallback = (
  ...args: [null, net.Socket | tls.TLSSocket] | [Error, null]
) => void;

/**
 * A `connect` function for undici's Agent, Pool or Client
 * (`new Agent({ connect: guardedConnect(guard) })`). An open breaker fails the
 * request at once through `cb(err)` instead of holding a connect slot.
 */
export function guardedConnect(
  guard?: Guard | GuardOptions,
  tlsOptions: tls.ConnectionOptions = {},
): (options: UndiciConnectOptions, callback: UndiciConnectCallback) => void {
  const g = guard instanceof Guard ? guard : new Guard(guard);
  return (options, callback) => {
    const secure = options.protocol === "https:";
    const port = Number(options.port) || (secure ? 443 : 80);
    g.connect({
      host: options.hostname,
      port,
      ...(options.localAddress ? { socket: { localAddress: options.localAddress } } : {}),
      ...(secure
        ? {
            tls: {
              ...tlsOptions,
              servername: options.servername ?? tlsOptions.servername ?? options.hostname,
              ALPNProtocols: ["http/1.1"],
            },
          }
        : {}),
    }).then(
      (socket) => callback(null, socket),
      (error: Error) => callback(error, null),
    );
  };
}

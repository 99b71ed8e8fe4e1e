import type net from "node:net";

/**
 * A socket the emulated limiter must not count: synlimit's own fixtures (a
 * tarpit filling its accept queue) are plumbing, not the program under test.
 * Without it, a tarpit's fillers take emulated slots and, under `winxp-sp2`,
 * make the tarpit's host "known reachable", so the limit it exists to show
 * never shows. A registered symbol, so a second copy of the package agrees.
 */
export const kUnemulated: unique symbol = Symbol.for("synlimit.unemulated") as never;

/** Marks a socket before its connect starts (net.connect defers it a tick). */
export function markUnemulated<T extends net.Socket>(socket: T): T {
  (socket as T & { [kUnemulated]?: boolean })[kUnemulated] = true;
  return socket;
}

export function isUnemulated(socket: object | null): boolean {
  return socket !== null && (socket as { [kUnemulated]?: boolean })[kUnemulated] === true;
}

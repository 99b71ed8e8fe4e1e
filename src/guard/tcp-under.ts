import type net from "node:net";
import type tls from "node:tls";

/**
 * The TCP socket the guard connected under each TLS socket it made. Only a
 * TCP socket can be reset (`resetAndDestroy`), and ReconnectingLink must reset
 * a dead connection rather than close it; Node keeps the pair only in a
 * private field (`_parent`). Weak: the pair goes with the TLS socket.
 */
const tcpOf = new WeakMap<tls.TLSSocket, net.Socket>();

export function rememberTcpUnder(secure: tls.TLSSocket, tcp: net.Socket): void {
  tcpOf.set(secure, tcp);
}

/** The TCP socket under `socket` when the guard made it a TLS socket; else `socket` itself. */
export function tcpUnder(socket: net.Socket): net.Socket {
  return tcpOf.get(socket as tls.TLSSocket) ?? socket;
}

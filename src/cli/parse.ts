import net from "node:net";
import { InvalidArgumentError } from "commander";
import { parseNumberText } from "../gate/number-text.js";

/**
 * Argument parsers for commander: each throws a one-line InvalidArgumentError.
 * Numbers are read by parseNumberText, the parser of every text edge (flags,
 * environment, timing strings), so a flag takes what a config file takes.
 */
/** A port to listen on: 0 picks a free one. */
export function port(value: string): number {
  return portIn(value, 0);
}

/** A port to connect to. */
export function connectPort(value: string): number {
  return portIn(value, 1);
}

function portIn(value: string, min: number): number {
  const n = parseNumberText(value);
  if (n === null || !Number.isInteger(n) || n < min || n > 65535) {
    throw new InvalidArgumentError(`expected a port number from ${min} to 65535.`);
  }
  return n;
}

export function milliseconds(value: string): number {
  const n = parseNumberText(value);
  if (n === null)
    throw new InvalidArgumentError("expected a non-negative finite number of milliseconds.");
  return n;
}

export function positiveNumber(value: string): number {
  const n = parseNumberText(value);
  if (n === null || !(n > 0)) throw new InvalidArgumentError("expected a positive finite number.");
  return n;
}

export function ipAddress(value: string): string {
  if (net.isIP(value) === 0) throw new InvalidArgumentError("expected an IPv4 or IPv6 address.");
  return value;
}

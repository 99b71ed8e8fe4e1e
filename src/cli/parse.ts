import net from "node:net";
import { InvalidArgumentError } from "commander";

/** Argument parsers for commander: each throws a one-line InvalidArgumentError. */
/** A port to listen on: 0 picks a free one. */
export function port(value: string): number {
  return portIn(value, 0);
}

/** A port to connect to. */
export function connectPort(value: string): number {
  return portIn(value, 1);
}

function portIn(value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > 65535) {
    throw new InvalidArgumentError(`expected a port number from ${min} to 65535.`);
  }
  return Number(value);
}

export function milliseconds(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value)) {
    throw new InvalidArgumentError("expected a non-negative number of milliseconds.");
  }
  return Number(value);
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!/^\d*\.?\d+$/.test(value) || !(n > 0)) {
    throw new InvalidArgumentError("expected a positive number.");
  }
  return n;
}

export function ipAddress(value: string): string {
  if (net.isIP(value) === 0) throw new InvalidArgumentError("expected an IPv4 or IPv6 address.");
  return value;
}

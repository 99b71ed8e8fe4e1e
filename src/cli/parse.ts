import net from "node:net";
import { InvalidArgumentError } from "commander";

/** Argument parsers for commander: each throws a one-line InvalidArgumentError. */
export function port(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError("expected a port number from 0 to 65535.");
  }
  return Number(value);
}

export function connectPort(value: string): number {
  const p = port(value);
  if (p === 0) throw new InvalidArgumentError("expected a port number from 1 to 65535.");
  return p;
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

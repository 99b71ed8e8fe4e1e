import net from "node:net";
import { getSystemErrorMap } from "node:util";

/** What the hook sees of Node's TCP handle and connect request (node:net internals). */
export interface ConnectReq {
  oncomplete: (status: number, ...rest: unknown[]) => unknown;
  /** Set by node:net on every TCP connect request. */
  address?: string;
  port?: number;
}

export type ConnectFn = (
  this: TcpHandle,
  req: ConnectReq,
  address: string,
  port: number,
  ...rest: unknown[]
) => number;

export interface TcpHandle {
  connect: ConnectFn;
  connect6: ConnectFn;
  close(...args: unknown[]): unknown;
  reset?(...args: unknown[]): unknown;
  [key: symbol]: unknown;
}

export const uvStatus = (() => {
  const byName = new Map<string, number>();
  for (const [status, [name]] of getSystemErrorMap()) byName.set(name, status);
  return (name: string): number => byName.get(name) ?? -1;
})();

let ownerSymbol: symbol | undefined;

/** Node links each handle to its socket under an internal symbol. */
export function ownerOf(handle: TcpHandle): net.Socket | null {
  ownerSymbol ??= Object.getOwnPropertySymbols(handle).find(
    (s) => s.description === "owner_symbol",
  );
  if (!ownerSymbol) return null;
  const owner = handle[ownerSymbol];
  return owner instanceof net.Socket ? owner : null;
}

/**
 * Whether Node waits for this connect as one of several Happy Eyeballs
 * tries: then a failure goes through Node's own completion, so it moves on
 * to the next address exactly as after a real failure.
 */
export function isHappyEyeballs(oncomplete: ConnectReq["oncomplete"]): boolean {
  return oncomplete.name.includes("Multiple");
}

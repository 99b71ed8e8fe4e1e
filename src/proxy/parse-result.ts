/**
 * What every wire parser returns. Parsers are pure: bytes in, one of these
 * out, no sockets and no state, so they can be fuzzed without a network.
 */
export type ParseResult<T, E = ParseFailure> =
  | { readonly kind: "ok"; readonly value: T; readonly consumed: number }
  | { readonly kind: "need-more" }
  | { readonly kind: "error"; readonly error: E };

export interface ParseFailure {
  /** A short, log-safe reason (never echoes client bytes). */
  readonly reason: string;
}

export const needMore = { kind: "need-more" } as const;

export function ok<T>(value: T, consumed: number): ParseResult<T, never> {
  return { kind: "ok", value, consumed };
}

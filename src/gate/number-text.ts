/**
 * A number typed as text (a CLI flag, an environment variable, a timing
 * string): the unsigned part of a JSON number — digits, an optional
 * fraction, an optional exponent (`1e3`, `2.5E-1`) — so text accepts what a
 * config file and the admin API accept as JSON. No sign (nothing typed is
 * negative), no hex, no `Infinity`; null when it is not such a number or
 * not finite once parsed (400 nines, 1e400, are not a deadline), so a
 * caller's message says "a positive finite number". Range checks are the
 * caller's, with the same check* rules as every other edge.
 */
export function parseNumberText(text: string): number | null {
  if (!/^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

import { SynlimitError } from "../errors.js";

/**
 * Strict keys for the guard's own options objects: a misspelt or misplaced
 * key would otherwise silently drop a protection (`udpEchoPort` at the top
 * of a Guard's options means no preflight at all). Options handed through to
 * node:http or undici are not checked here; they have their own owners.
 */
export function rejectUnknownKeys(
  where: string,
  prefix: string,
  options: object,
  allowed: readonly string[],
  hints: Readonly<Record<string, string>> = {},
): void {
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    // Near a hinted key too: a misspelt misplaced key (udpEchoPrt at the
    // top) gets the same suggestion as the misplaced one.
    const near = closest(key, [...allowed, ...Object.keys(hints)]);
    const intended =
      hints[key] ?? (near === undefined ? undefined : (hints[near] ?? prefix + near));
    throw new SynlimitError(
      "SYNLIMIT_INVALID_OPTION",
      `option ${prefix}${JSON.stringify(key).slice(1, -1)} is not ${where} option` +
        (intended
          ? `; did you mean ${intended}?`
          : `; known: ${allowed.map((k) => prefix + k).join(", ")}`),
    );
  }
}

/** A known key within two edits (case-insensitively), for "did you mean". */
function closest(key: string, allowed: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = distance(k, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * For the adapters, whose guard options come first and their client's own
 * options second: a key of the second given in the first is named as such,
 * instead of "not a Guard option".
 */
export function rejectMisplacedKeys(
  guardOptions: unknown,
  guardKeys: readonly string[],
  otherKeys: readonly string[],
  otherArgument: string,
): void {
  if (typeof guardOptions !== "object" || guardOptions === null) return;
  for (const key of Object.keys(guardOptions)) {
    if (guardKeys.includes(key) || !otherKeys.includes(key)) continue;
    throw new SynlimitError(
      "SYNLIMIT_INVALID_OPTION",
      `option ${JSON.stringify(key).slice(1, -1)} is not a Guard option; it belongs in ${otherArgument}`,
    );
  }
}

/**
 * What a fresh connect did while some attempts were held pending: went
 * straight through, waited (no answer within the settle window), or was
 * refused at once.
 */
export type Passage = "through" | "blocked" | "refused";

export interface TrialResult {
  readonly passage: Passage;
  /** Attempts actually pending during the trial (fewer than asked if some were refused). */
  readonly held: number;
}

/** Runs one trial with `held` attempts pending. */
export type Trial = (held: number) => Promise<TrialResult>;

export interface SearchResult {
  /**
   * k: concurrent attempts allowed, i.e. one more than the most held
   * attempts under which a connect still went through; null when every
   * trial up to `max` went through.
   */
  readonly limit: number | null;
  /** How the connect fared over the limit (the last trial that did not pass). */
  readonly over: Exclude<Passage, "through"> | null;
  readonly trials: number;
}

/**
 * Finds k in O(log k) trials: double the held attempts until a connect does
 * not pass (1, 2, 4, … capped at `max`), then bisect between the last pass
 * and the first failure. Passing trials cost one loopback connect; only
 * failing ones cost a settle window, and the doubling meets one of those.
 */
export async function searchLimit(max: number, trial: Trial): Promise<SearchResult> {
  const s: { lo: number; hi: number | null; over: SearchResult["over"]; trials: number } = {
    lo: 0,
    hi: null,
    over: null,
    trials: 0,
  };
  const run = async (held: number) => {
    s.trials++;
    const r = await trial(held);
    if (r.passage === "through") {
      s.lo = Math.max(s.lo, r.held);
    } else {
      const hi = Math.max(1, s.hi === null ? r.held : Math.min(s.hi, r.held));
      s.hi = hi;
      s.over = r.passage;
      // A failure at or below an earlier pass means that pass was luck (a
      // slot freed meanwhile): the latest evidence wins.
      if (s.lo >= hi) s.lo = hi - 1;
    }
    return r.passage;
  };
  for (let held = 1; ; held = Math.min(held * 2, max)) {
    if ((await run(held)) !== "through" || held >= max) break;
  }
  for (let hi = s.hi; hi !== null && hi - s.lo > 1; hi = s.hi) {
    await run(Math.floor((s.lo + hi) / 2));
  }
  return { limit: s.hi, over: s.over, trials: s.trials };
}

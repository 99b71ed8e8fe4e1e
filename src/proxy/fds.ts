import { readdirSync, readFileSync } from "node:fs";

/** Descriptors kept free for the admin API (its listener's accept, a request, a scrape). */
export const ADMIN_RESERVE_FDS = 8;

/** The soft RLIMIT_NOFILE of this process (Linux /proc), or null where it cannot be read. */
export function softFdLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(
      readFileSync("/proc/self/limits", "utf8"),
    );
    if (!m?.[1] || m[1] === "unlimited") return null;
    return Number(m[1]);
  } catch {
    return null;
  }
}

/** Descriptors open in this process now, or null where /proc is not there. */
export function openFds(): number | null {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return null;
  }
}

export interface FdEpisode {
  readonly event: "start" | "end";
  readonly fdLimit: number;
  readonly budget: number;
  readonly inUse: number;
  /** Clients refused during the episode (at its end). */
  readonly refused?: number;
}

/**
 * The proxy's share of the process's file descriptors: every client and
 * every upstream socket takes one. Near the limit, requests are answered
 * "try later" (a request costs an upstream descriptor, a reply does not),
 * and the listener stops admitting clients before the admin API's reserve
 * is touched. An episode (from the first refusal until use falls back
 * below 90 % of the budget) is reported once at its start and once at its
 * end, never per client.
 */
export class FdBudget {
  readonly fdLimit: number;
  /** Descriptors for clients and upstreams together. */
  readonly budget: number;
  #inEpisode = false;
  #refused = 0;
  readonly #report: (e: FdEpisode) => void;

  constructor(fdLimit: number, baseline: number, report: (e: FdEpisode) => void) {
    this.fdLimit = fdLimit;
    this.budget = Math.max(2, fdLimit - baseline - ADMIN_RESERVE_FDS);
    this.#report = report;
  }

  get inEpisode(): boolean {
    return this.#inEpisode;
  }

  /** True when one more upstream socket still fits beside `inUse` descriptors. */
  allows(inUse: number): boolean {
    return inUse + 1 <= this.budget;
  }

  refused(inUse: number): void {
    this.#refused++;
    if (this.#inEpisode) return;
    this.#inEpisode = true;
    this.#report({
      event: "start",
      fdLimit: this.fdLimit,
      budget: this.budget,
      inUse,
    });
  }

  /** A descriptor was given back: the episode ends once use is well below the budget. */
  released(inUse: number): void {
    if (!this.#inEpisode || inUse >= this.budget * 0.9) return;
    this.#inEpisode = false;
    const refused = this.#refused;
    this.#refused = 0;
    this.#report({ event: "end", fdLimit: this.fdLimit, budget: this.budget, inUse, refused });
  }
}

// One percentile for the whole project: the lab's tables and the benchmarks' agree.
export { max, median, percentile } from "../src/stats.js";

/** Microseconds from milliseconds, rounded for a table. */
export const us = (ms: number): string => (ms * 1000).toFixed(1);

import type { AttemptRecord, AttemptRole, Operation, ScenarioName } from "../types.js";

/** Fixed colors, so a role or scenario has the same color in every chart. */
export const roleColors: Record<AttemptRole, string> = {
  login: "#d62728",
  db: "#1f77b4",
  api: "#2ca02c",
  "api-dead": "#9467bd",
  agent: "#ff7f0e",
  other: "#7f7f7f",
};

export const roles = Object.keys(roleColors) as AttemptRole[];

export const operations: Operation[] = ["login", "db", "api"];

/** An operation has the color of the attempts it makes. */
export const opColors: Record<Operation, string> = {
  login: roleColors.login,
  db: roleColors.db,
  api: roleColors.api,
};

export const scenarioOrder: ScenarioName[] = [
  "baseline",
  "incident",
  "fixed",
  "escalation",
  "restart",
];

export type Stat = "p50Ms" | "p95Ms" | "p99Ms";
export const percentileStats: Stat[] = ["p50Ms", "p95Ms", "p99Ms"];
export const statColors: Record<Stat, string> = {
  p50Ms: "#9ecae1",
  p95Ms: "#4292c6",
  p99Ms: "#08306b",
};

type Outcome = AttemptRecord["outcome"];
/** Only the endings worth a marker: a connected attempt is the normal case. */
export const outcomeSymbols: Partial<Record<Outcome, string>> = {
  failed: "times",
  "timed-out": "times",
  cancelled: "square",
  rejected: "square",
};

import type { AttemptOutcome, AttemptRole, Operation, ScenarioName } from "../types.js";

/**
 * Fixed colors, so a role has the same color in every chart. The agent is
 * near-black and the logins red, so the incident's two parties never look alike.
 */
export const roleColors: Record<AttemptRole, string> = {
  login: "#d62728",
  db: "#1f77b4",
  api: "#2ca02c",
  "api-dead": "#9467bd",
  agent: "#222222",
  other: "#8c6d31",
};

/** Waiting for a slot: a light tint of each role's hue, told apart from each other and from SYN_SENT. */
export const waitColors: Record<AttemptRole, string> = {
  login: "#f7a8a8",
  db: "#a6cbe8",
  api: "#b3e0a6",
  "api-dead": "#d4c4ea",
  agent: "#b0b0b0",
  other: "#e3cf9a",
};

/** The emulated OS giving up on a pending attempt: apart from every role's hue. */
export const giveUpColor = "#ff7f0e";

/** Lane order in the timeline: the slot's holders first, the ones who wait after. */
export const roles: AttemptRole[] = ["agent", "api-dead", "login", "db", "api", "other"];

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
  "escalation-fixed",
  "restart",
  "restart-fixed",
];

export type Stat = "p50Ms" | "p95Ms" | "p99Ms";
export const percentileStats: Stat[] = ["p50Ms", "p95Ms", "p99Ms"];
export const statColors: Record<Stat, string> = {
  p50Ms: "#6baed6",
  p95Ms: "#2171b5",
  p99Ms: "#08306b",
};

/** Only the endings worth a marker: a connected attempt is the normal case. */
export const outcomeSymbols: Partial<Record<AttemptOutcome, string>> = {
  failed: "times",
  "timed-out": "times",
  cancelled: "square",
  rejected: "square",
  pending: "triangle",
};

export const outcomeLabels: Partial<Record<AttemptOutcome, string>> = {
  failed: "× failed or timed out",
  "timed-out": "× failed or timed out",
  cancelled: "□ cancelled or rejected",
  rejected: "□ cancelled or rejected",
  pending: "△ still pending at the end",
};

export { GuardedAgent, GuardedHttpsAgent } from "./adapters/http.js";
export {
  guardedConnect,
  type UndiciConnectCallback,
  type UndiciConnectOptions,
} from "./adapters/undici.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export type { BreakerState } from "./breaker.js";
export { AttemptBudget } from "./budget.js";
export { guardChannelNames } from "./channels.js";
export {
  Guard,
  type GuardConnectOptions,
  type GuardOptions,
  type PreflightOptions,
} from "./guard.js";
export {
  type LinkState,
  type LinkStats,
  ReconnectingLink,
  type ReconnectingLinkOptions,
} from "./link.js";
export type { PreflightCheck, PreflightOutcome, PreflightTarget } from "./preflight.js";

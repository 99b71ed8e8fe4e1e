export { GuardError, type GuardErrorDetails, SynlimitError } from "../errors.js";
export { GuardedAgent, GuardedHttpsAgent } from "./adapters/http.js";
export {
  type GuardedConnectOptions,
  guardedConnect,
  type UndiciConnectCallback,
  type UndiciConnectOptions,
} from "./adapters/undici.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export type { BreakerState } from "./breaker.js";
export { AttemptBudget } from "./budget.js";
export { guardChannelNames } from "./channels.js";
export type { Disposable } from "./events.js";
export {
  Guard,
  type GuardAttemptEvent,
  type GuardBreakEvent,
  type GuardConnectOptions,
  type GuardOptions,
  type GuardPeerEvent,
  type PreflightOptions,
} from "./guard.js";
export {
  type LinkState,
  type LinkStats,
  ReconnectingLink,
  type ReconnectingLinkOptions,
} from "./link.js";
export type { PreflightCheck, PreflightOutcome, PreflightTarget } from "./preflight.js";

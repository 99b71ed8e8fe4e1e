export { channelNames } from "./channels.js";
export {
  Attempt,
  AttemptGate,
  type AttemptHandlers,
  EVENT_4226_TEXT,
  type GateStats,
} from "./gate.js";
export { resolveTiming, type Timing, type TimingOption, timingNames } from "./timing.js";
export type {
  AttemptEvent,
  AttemptState,
  Destination,
  GateOptions,
  LimitReachedEvent,
  Policy,
  RateOptions,
  Scope,
} from "./types.js";

export { channelNames } from "./channels.js";
export {
  Attempt,
  AttemptGate,
  type AttemptHandlers,
  DEFAULT_OWNER,
  EVENT_4226_TEXT,
  type GateStats,
} from "./gate.js";
export {
  checkTimingOption,
  isScheduleTiming,
  isTimingName,
  parseTiming,
  resolveTiming,
  TIMING_EXPECTED,
  type Timing,
  type TimingName,
  type TimingOption,
  type TimingProfile,
  type TimingSchedule,
  timingNames,
  timings,
} from "./timing.js";
export type {
  AttemptEvent,
  AttemptState,
  Destination,
  Fairness,
  GateOptions,
  LimitReachedEvent,
  Policy,
  RateOptions,
  Scope,
} from "./types.js";

import { defaults } from "../defaults.js";
import type { AgentModel, Operation } from "./types.js";

// Kept apart from run.ts so the CLI can show these in --help without
// loading the lab's clients (ldapts, pg, undici).
/** Defaults sized so all seven scenarios run in well under a minute at the default scale. */
export const labDefaults = {
  timeScale: 0.02,
  fieldWindowMs: defaults.labWindowMs,
  fieldIntervalMs: {
    login: defaults.labLoginIntervalMs,
    db: defaults.labDbIntervalMs,
    api: defaults.labApiIntervalMs,
  } as Record<Operation, number>,
  agent: {
    channels: defaults.labAgentChannels,
    retryPauseMs: defaults.labAgentRetryPauseMs,
  } as AgentModel,
  upstreams: 3,
  dbPoolSize: 4,
  apiConnectionsPerUpstream: 2,
  /** An operation still waiting this many attempt timeouts after the window is failed. */
  drainAttemptTimeouts: 4,
};

import { defaults } from "../defaults.js";
import type { AgentModel, Operation } from "./types.js";

// Kept apart from run.ts so the CLI can show these in --help without
// loading the lab's clients (ldapts, pg, undici).
/** Defaults sized so all seven scenarios run in well under a minute at the default scale. */
export const labDefaults = {
  timeScale: 0.02,
  /**
   * The smallest time scale the CLI takes. The lab's own work (a loopback
   * connect, a query, a late timer on a busy machine: a few ms) is stretched
   * by 1/scale too; below this it is a large share of a compressed 21 s
   * attempt and the checks fail for the machine, not the limiter (0.001: the
   * checks fail; 1e-4: the app's DB pool cannot even connect at start-up).
   * Measured in docs/lab.md ("Time scale bounds").
   */
  minTimeScale: 0.005,
  /**
   * The largest: 1 is real time. Above it the lab only runs slower (1e3: 35
   * hours a scenario) and shows nothing real time does not.
   */
  maxTimeScale: 1,
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

import type { ProfileName } from "../emulate/profiles.js";
import type { ErrorBudget, ScenarioName, ScenarioResult } from "./types.js";

export interface Scenario {
  readonly name: ScenarioName;
  readonly description: string;
  readonly profile: ProfileName | null;
  readonly agent: ScenarioResult["agent"];
  readonly apiPools: ScenarioResult["apiPools"];
  readonly collector: ScenarioResult["collector"];
  /** Failed operations this scenario may have; more means the run is broken, not the incident. */
  readonly errorBudget: ErrorBudget;
  /** How many of the API upstreams die, and when (fraction of the measured window). */
  readonly upstreamsDie?: { count: number; atFraction: number };
  /** When every pool is flushed at once (the incident's iisreset). */
  readonly flushAtFraction?: number;
}

const none: ErrorBudget = { login: 0, db: 0, api: 0 };
// Two of three upstreams die early in the window: about 60 % of API calls go to a
// dead one and fail; calls to the healthy one must not.
const deadUpstreamsApi = 0.75;

/** The seven presets, in the order the story is told. */
export const scenarios: readonly Scenario[] = [
  {
    name: "baseline",
    description:
      "A normal machine: no attempt limit (Windows timing). The agent retries its dead collector in a plain loop, which costs nothing here.",
    profile: "windows",
    agent: "naive",
    apiPools: "plain",
    collector: "dead-silent-echo",
    errorBudget: none,
  },
  {
    name: "incident",
    description:
      "The customer's server: 1 connect attempt per process, FIFO, Windows timing. The naive agent keeps retrying the dead collector, so an attempt is almost always pending and every login waits for the rest of it; pooled DB and API calls are not hurt.",
    profile: "incident",
    agent: "naive",
    apiPools: "plain",
    collector: "dead-silent-echo",
    errorBudget: none,
  },
  {
    name: "fixed",
    description:
      "Same server, the agent on synlimit/guard's ReconnectingLink: a silent UDP echo means no TCP attempt, so logins never wait.",
    profile: "incident",
    agent: "guarded",
    apiPools: "plain",
    collector: "dead-silent-echo",
    errorBudget: none,
  },
  {
    name: "escalation",
    description:
      "The author's prediction: two of the three API upstreams die. Their pools' reconnect attempts sit in SYN_SENT in front of the logins, agent fixed or not.",
    profile: "incident",
    agent: "guarded",
    apiPools: "plain",
    collector: "dead-silent-echo",
    // Logins may time out: that is the escalation. The warm DB pool makes no attempt.
    errorBudget: { login: 1, db: 0, api: deadUpstreamsApi },
    upstreamsDie: { count: 2, atFraction: 0.1 },
  },
  {
    name: "escalation-fixed",
    description:
      "The escalation with the API pools dialling through synlimit/guard: after one short attempt a dead upstream's breaker opens, its calls fail fast, and logins stop waiting.",
    profile: "incident",
    agent: "guarded",
    apiPools: "guarded",
    collector: "dead-silent-echo",
    errorBudget: { login: 0, db: 0, api: deadUpstreamsApi },
    upstreamsDie: { count: 2, atFraction: 0.1 },
  },
  {
    name: "restart",
    description:
      "During the escalation, every pool is flushed at once (iisreset): the DB and healthy API connections must be made again, and queue behind the dead upstreams' pending attempts.",
    profile: "incident",
    agent: "guarded",
    apiPools: "plain",
    collector: "dead-silent-echo",
    // Reconnecting DB calls wait behind the dead upstreams; some may run out of time.
    errorBudget: { login: 1, db: 0.5, api: deadUpstreamsApi },
    upstreamsDie: { count: 2, atFraction: 0.1 },
    flushAtFraction: 0.35,
  },
  {
    name: "restart-fixed",
    description:
      "The restart with the API pools dialling through synlimit/guard: the flushed DB and healthy API pools reconnect at once, since no attempt to a dead upstream holds the slot for long.",
    profile: "incident",
    agent: "guarded",
    apiPools: "guarded",
    collector: "dead-silent-echo",
    errorBudget: { login: 0, db: 0, api: deadUpstreamsApi },
    upstreamsDie: { count: 2, atFraction: 0.1 },
    flushAtFraction: 0.35,
  },
];

export const scenarioNames = scenarios.map((s) => s.name);

export function isScenarioName(name: string): name is ScenarioName {
  return (scenarioNames as string[]).includes(name);
}

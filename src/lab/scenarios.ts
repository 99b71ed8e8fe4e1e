import type { ProfileName } from "../emulate/profiles.js";
import type { ScenarioName, ScenarioResult } from "./types.js";

export interface Scenario {
  readonly name: ScenarioName;
  readonly description: string;
  readonly profile: ProfileName | null;
  readonly agent: ScenarioResult["agent"];
  readonly collector: ScenarioResult["collector"];
  /** How many of the API upstreams die, and when (fraction of the measured window). */
  readonly upstreamsDie?: { count: number; atFraction: number };
  /** When every pool is flushed at once (the incident's iisreset). */
  readonly flushAtFraction?: number;
}

/** The five presets, in the order the story is told. */
export const scenarios: readonly Scenario[] = [
  {
    name: "baseline",
    description:
      "A normal machine: no attempt limit (Windows timing). The agent retries its dead collector in a plain loop, which costs nothing here.",
    profile: "windows",
    agent: "naive",
    collector: "dead-silent-echo",
  },
  {
    name: "incident",
    description:
      "The customer's server: 1 connect attempt per process, FIFO, Windows timing. The naive agent's two channels (traces, metrics) keep retrying the dead collector, so one attempt is always pending and every login waits behind it; pooled DB and API calls are not hurt.",
    profile: "incident",
    agent: "naive",
    collector: "dead-silent-echo",
  },
  {
    name: "fixed",
    description:
      "Same server, the agent on synlimit/guard's ReconnectingLink: a silent UDP echo means no TCP attempt, so logins never wait.",
    profile: "incident",
    agent: "guarded",
    collector: "dead-silent-echo",
  },
  {
    name: "escalation",
    description:
      "The author's prediction: two of the three API upstreams die. Their pools' reconnect attempts sit in SYN_SENT in front of the logins, agent fixed or not.",
    profile: "incident",
    agent: "guarded",
    collector: "dead-silent-echo",
    upstreamsDie: { count: 2, atFraction: 0.1 },
  },
  {
    name: "restart",
    description:
      "During the escalation, every pool is flushed at once (iisreset): the DB and healthy API connections must be made again, and queue behind the dead upstreams' pending attempts.",
    profile: "incident",
    agent: "guarded",
    collector: "dead-silent-echo",
    upstreamsDie: { count: 2, atFraction: 0.1 },
    flushAtFraction: 0.35,
  },
];

export const scenarioNames = scenarios.map((s) => s.name);

export function isScenarioName(name: string): name is ScenarioName {
  return (scenarioNames as string[]).includes(name);
}

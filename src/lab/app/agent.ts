import { ReconnectingLink } from "../../guard/link.js";
import { NaiveAgent } from "../naive-agent.js";
import type { AppConfig } from "./config.js";

export interface RunningAgent {
  stop(): Promise<void>;
}

/** The APM-like agent inside the app: the naive reconnect loop, or the guard's link. */
export function startAgent(config: AppConfig): RunningAgent | null {
  const { host, port, udpEchoPort } = config.collector;
  if (config.agent === "naive") {
    const { channels, retryPauseMs } = config.agentModel;
    const agent = new NaiveAgent(host, port, channels, retryPauseMs * config.timeScale).start();
    return { stop: async () => agent.stop() };
  }
  if (config.agent === "guarded") {
    const link = new ReconnectingLink({ host, port, udpEchoPort, guard: { budget: "lab-agent" } });
    // The agent reports a span every 100 ms, as a real one would keep doing.
    const timer = setInterval(() => link.send(`span ${Date.now()}\n`), 100);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await link.close();
      },
    };
  }
  return null;
}

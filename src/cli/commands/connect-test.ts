import type { Command } from "commander";
import { defaults } from "../../defaults.js";
import { emulationSummary } from "../../emulate/install.js";
import { type ConnectTestResult, connectTest } from "../../probe/connect-test.js";
import { connectPort, milliseconds } from "../parse.js";
import { formatConnectTest } from "../render/connect-test.js";

interface Flags {
  livePort: number;
  liveHost?: string;
  delay: number;
  timeout?: number;
  json?: boolean;
}

/** Exit codes: 0 not serialized, 3 serialized, 2 could not tell. */
export const connectTestExit = { "not-serialized": 0, serialized: 3, inconclusive: 2 } as const;

export function registerConnectTest(program: Command): void {
  program
    .command("connect-test")
    .description(
      "the incident's test program: connect to HOST:PORT (which should stay pending), then after --delay to a live port, and tell whether the second waited for the first",
    )
    .argument("<host>", "host of the target that stays pending (a dropped SYN)")
    .argument("<port>", "port of that target", connectPort)
    .option(
      "--live-port <port>",
      "port of the live target",
      connectPort,
      defaults.connectTestLivePort,
    )
    .option("--live-host <host>", "host of the live target (default: HOST)")
    .option(
      "--delay <ms>",
      "delay before the live attempt",
      milliseconds,
      defaults.connectTestDelayMs,
    )
    .option(
      "--timeout <ms>",
      "give up on an attempt after this long (default: none; the pending attempt is stopped as soon as the verdict is certain)",
      milliseconds,
    )
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      `
Exit codes: 0 the live connect did not wait, 3 connect attempts are serialized, 2 could not tell.

Example (the incident on loopback, limiter emulated, 21 s compressed to 2.1 s):
  synlimit tarpit --port 9999 &
  SYNLIMIT_PROFILE=incident SYNLIMIT_TIME_SCALE=0.1 \\
    node --import synlimit/register $(which synlimit) connect-test 127.0.0.1 9999 --live-port 8080
`,
    )
    .action(async (host: string, port: number, flags: Flags) => {
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once("SIGINT", onSignal);
      const startedAt = new Date();
      let result: ConnectTestResult;
      try {
        result = await connectTest({
          host,
          port,
          livePort: flags.livePort,
          delayMs: flags.delay,
          signal: abort.signal,
          ...(flags.liveHost ? { liveHost: flags.liveHost } : {}),
          ...(flags.timeout !== undefined
            ? { timeoutMs: flags.timeout }
            : { stopWhenCertain: true }),
        });
      } finally {
        process.off("SIGINT", onSignal);
      }
      const context = { startedAt, emulation: emulationSummary() };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ version: 1, ...context, ...result })}\n`);
      } else {
        process.stdout.write(formatConnectTest(result, context));
      }
      process.exitCode = abort.signal.aborted ? 130 : connectTestExit[result.verdict.kind];
    });
}

import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { isSynlimitError } from "../errors.js";
import { registerAnalyze } from "./commands/analyze.js";
import { registerConnectTest } from "./commands/connect-test.js";
import { registerDemo } from "./commands/demo.js";
import { registerEcho } from "./commands/echo.js";
import { registerGate } from "./commands/gate.js";
import { registerLab } from "./commands/lab.js";
import { registerProbe } from "./commands/probe.js";
import { registerProfiles } from "./commands/profiles.js";
import { registerRecord } from "./commands/record.js";
import { registerSimulate } from "./commands/simulate.js";
import { registerTarpit } from "./commands/tarpit.js";

const { version } = JSON.parse(
  readFileSync(new URL("../../../package.json", import.meta.url), "utf8"),
) as { version: string };

export function buildProgram(): Command {
  const program = new Command("synlimit")
    .description(
      "Reproduce, detect and survive hosts that limit concurrent outbound TCP connect attempts.",
    )
    .version(version)
    .configureOutput({
      // One line per error, hint included, so scripts can grep it.
      outputError: (text, write) =>
        write(`synlimit: ${text.replace(/^error: /, "").trimEnd()} (see --help)\n`),
    });
  registerLab(program);
  registerDemo(program);
  registerConnectTest(program);
  registerProbe(program);
  registerGate(program);
  registerTarpit(program);
  registerEcho(program);
  registerProfiles(program);
  registerRecord(program);
  registerSimulate(program);
  registerAnalyze(program);
  for (const command of program.commands) command.exitOverride();
  program.exitOverride();
  return program;
}

/** Errors in what the user typed: the message alone says what to change. */
const inputCodes: ReadonlySet<string> = new Set([
  "SYNLIMIT_USAGE",
  "SYNLIMIT_INVALID_OPTION",
  "SYNLIMIT_INVALID_ENV",
]);

/**
 * Runs the CLI. Usage errors and SynlimitErrors end with one line on stderr
 * and exit code 2; anything else is a bug and keeps its stack.
 */
export async function runCli(program: Command, argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    if (isSynlimitError(error)) {
      // A script can tell a busy port or a crashed child from a typo.
      const code = inputCodes.has(error.code) ? "" : ` (${error.code})`;
      process.stderr.write(`synlimit: ${error.message}${code}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
}

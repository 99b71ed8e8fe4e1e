import { spawn } from "node:child_process";
import { existsSync, lstatSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { usageError } from "../../errors.js";
import { RoleMap } from "../../record/roles.js";
import { envWithout } from "../child.js";
import { checkOutputFile } from "../paths.js";

const registerUrl = new URL("../../emulate/register.js", import.meta.url).href;

interface Flags {
  output: string;
  role: string[];
}

export function registerRecord(program: Command): void {
  program
    .command("record")
    .description(
      "run a Node program and write every outbound connect attempt it makes, unlimited, as a trace (docs/trace.md)",
    )
    .requiredOption("-o, --output <file>", "trace file to write (JSON lines)")
    .option(
      "--role <port=role>",
      "label attempts to a destination: 389=login or 127.0.0.1:5432=db (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .argument("<command...>", "the program, after --: node app.js")
    .addHelpText(
      "after",
      "\nExample:\n  synlimit record -o app.trace --role 389=login --role 5432=db -- node app.js\n  synlimit simulate app.trace --profile incident\n\nThe program records itself only (not node processes it starts). Without the CLI:\n  SYNLIMIT_RECORD=app.trace SYNLIMIT_ROLES=389=login node --import synlimit/register app.js\n",
    )
    .action(async (command: string[], flags: Flags) => {
      const roles = RoleMap.parse(flags.role);
      const file = path.resolve(flags.output);
      checkOutputFile(flags.output, "--output");
      const [cmd, ...args] = command as [string, ...string[]];
      const env = envWithout("SYNLIMIT_");
      env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --import=${registerUrl}`.trim();
      env.SYNLIMIT_RECORD = file;
      if (roles.size > 0) env.SYNLIMIT_ROLES = roles.toString();
      // The old trace goes so that "wrote no trace" can be told; only ever a file.
      const old = lstatSync(file, { throwIfNoEntry: false });
      if (old?.isDirectory()) {
        throw usageError(`--output ${flags.output} is a directory; give a file name for the trace`);
      }
      if (old) rmSync(file);
      const startedAt = Date.now();
      const child = spawn(cmd, args, { env, stdio: "inherit" });
      const forward = (signal: NodeJS.Signals) => child.kill(signal);
      process.on("SIGINT", forward).on("SIGTERM", forward);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
        (resolve, reject) => {
          child.once("error", (e: NodeJS.ErrnoException) =>
            reject(usageError(`cannot run ${cmd}: ${e.code ?? e.message}`)),
          );
          child.once("exit", (c, s) => resolve([c, s]));
        },
      ).finally(() => process.off("SIGINT", forward).off("SIGTERM", forward));
      if (!existsSync(file)) {
        throw usageError(
          `${cmd} wrote no trace to ${file}: record needs a Node program (node app.js), started directly`,
        );
      }
      const lines = countLines(file);
      process.stderr.write(
        `synlimit: recorded ${lines} connect attempt(s) to ${flags.output} in ${((Date.now() - startedAt) / 1000).toFixed(1)} s\n`,
      );
      process.exitCode = code ?? 128 + (signal === "SIGINT" ? 2 : 15);
    });
}

function countLines(file: string): number {
  const text = readFileSync(file);
  let n = 0;
  for (const byte of text) if (byte === 10) n++;
  return n;
}

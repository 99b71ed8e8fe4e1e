import { type ChildProcess, spawn } from "node:child_process";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { envWithout } from "../../src/cli/child.js";

export const cliPath = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
export const registerUrl = new URL("../../src/emulate/register.js", import.meta.url).href;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment without SYNLIMIT_* leaking in from the caller. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...envWithout("SYNLIMIT_"), ...extra };
}

/** Runs the built CLI to completion. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string>; nodeArgs?: string[] } = {},
): Promise<CliResult> {
  const child = startCli(args, options);
  return finished(child);
}

export function startCli(
  args: string[],
  options: { env?: Record<string, string>; nodeArgs?: string[] } = {},
): ChildProcess & { stdoutText: () => string } {
  return start(
    process.execPath,
    [...(options.nodeArgs ?? []), cliPath, ...args],
    cleanEnv(options.env),
  );
}

/** Runs any command to completion, its output collected. */
export function runCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = cleanEnv(),
): Promise<CliResult> {
  return finished(start(command, args, env));
}

function start(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): ChildProcess & { stdoutText: () => string } {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  return Object.assign(child, { stdoutText: () => out });
}

export function finished(child: ChildProcess & { stdoutText?: () => string }): Promise<CliResult> {
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  return new Promise((resolve) => {
    child.once("close", (code, signal) =>
      resolve({ code, signal, stdout: child.stdoutText?.() ?? "", stderr }),
    );
  });
}

/** Resolves with the first full line the child prints on stdout. */
export function firstLine(child: ChildProcess & { stdoutText: () => string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const text = child.stdoutText();
      const nl = text.indexOf("\n");
      if (nl >= 0) {
        child.stdout?.off("data", check);
        resolve(text.slice(0, nl));
      }
    };
    child.stdout?.on("data", check);
    child.once("exit", (code) => reject(new Error(`exited ${code} before printing a line`)));
    check();
  });
}

/** Starts the CLI and kills it when the test ends, whatever happened. */
export function startForTest(t: TestContext, args: string[]) {
  const child = startCli(args);
  const result = finished(child);
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return { child, result };
}

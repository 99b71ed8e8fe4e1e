import { execFile } from "node:child_process";

/** Runs a program and resolves with its standard output; rejects on failure. Injected in tests. */
export type RunCommand = (file: string, args: readonly string[]) => Promise<string>;

/** A Windows command must answer well within the probe's own time budget. */
const COMMAND_TIMEOUT_MS = 20_000;

export const runCommand: RunCommand = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { timeout: COMMAND_TIMEOUT_MS, windowsHide: true, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    );
  });

/**
 * `powershell.exe` (Windows PowerShell 5.1, present on every supported
 * Windows) with UTF-8 output, so non-ASCII process names survive the pipe.
 */
export function powershell(run: RunCommand, script: string): Promise<string> {
  return run("powershell.exe", [
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    `[Console]::OutputEncoding=[Text.Encoding]::UTF8; ${script}`,
  ]);
}

/**
 * The objects ConvertTo-Json wrote: one object (not an array) when there was
 * one, nothing at all when there was none. Throws on anything else, naming
 * the command and the entry.
 */
export function convertToJsonRows(text: string, command: string): Record<string, unknown>[] {
  const trimmed = text.replace(/^\uFEFF/, "").trim();
  if (trimmed === "") return [];
  const parsed: unknown = JSON.parse(trimmed);
  const rows = Array.isArray(parsed) ? parsed : [parsed];
  return rows.map((row, i) => {
    if (typeof row !== "object" || row === null) {
      throw new Error(`${command} JSON: entry ${i} is not an object`);
    }
    return row as Record<string, unknown>;
  });
}

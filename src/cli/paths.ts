import { statSync } from "node:fs";
import { usageError } from "../errors.js";

/**
 * A --report directory must be a directory or not exist yet: refused before
 * the work, so a file in the way costs one line, not the analysis.
 */
export function checkReportDir(dir: string | undefined): void {
  if (dir === undefined) return;
  if (dir === "") throw usageError("--report needs a directory");
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (stat && !stat.isDirectory()) {
    throw usageError(`--report ${dir} is a file, not a directory`);
  }
}

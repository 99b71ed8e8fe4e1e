import {
  accessSync,
  closeSync,
  constants,
  lstatSync,
  mkdirSync,
  openSync,
  rmSync,
  type Stats,
  statSync,
} from "node:fs";
import path from "node:path";
import { isSynlimitError, type SynlimitError, usageError } from "../errors.js";

/**
 * Output paths (--report DIR, --output/--trace FILE) are checked before the
 * work starts, so a path that cannot be written costs one line, not a run:
 * the lab's services, a sweep, an analysis.
 */

/** The errno codes a user can meet here, in words; anything else shows its code. */
const reasons: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  ENAMETOOLONG: "name too long",
  ELOOP: "too many symbolic links",
  // What mkdir/open answer in /proc and /sys although the parent exists.
  ENOENT: "the file system does not take new entries there",
  EEXIST: "something else was created there meanwhile",
};

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === undefined) return String((error as Error | null)?.message ?? error);
  return `${reasons[code] ?? "failed"} (${code})`;
}

/** The path's stat; null when it or a parent is missing, or a parent is a file (found by the caller). */
function statOrNull(p: string): Stats | null {
  try {
    return statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw e;
  }
}

/** The nearest existing ancestor of a missing path when it is a file, else null. */
function fileInTheWay(missing: string): string | null {
  for (let p = path.dirname(missing); p !== path.dirname(p); p = path.dirname(p)) {
    const stat = statOrNull(p);
    if (stat) return stat.isDirectory() ? null : p;
  }
  return null;
}

function failure(flag: string, given: string, problem: string): SynlimitError {
  return usageError(`${flag} ${given}: ${problem}`);
}

/**
 * Makes dir and its missing parents one level at a time. Not
 * mkdir({ recursive: true }): Node 20's recursive mkdir spins forever where
 * mkdir answers ENOENT under an existing parent (/proc/nope).
 */
function makeDir(flag: string, given: string, dir: string): void {
  const stat = statOrNull(dir);
  if (stat) {
    if (!stat.isDirectory()) {
      throw failure(flag, given, `${dir} is a file, not a directory`);
    }
    return;
  }
  const parent = path.dirname(dir);
  if (parent !== dir) makeDir(flag, given, parent);
  try {
    mkdirSync(dir);
  } catch (e) {
    throw failure(flag, given, `cannot create directory ${dir}: ${reason(e)}`);
  }
}

function wrap(flag: string, given: string, work: () => void): void {
  try {
    work();
  } catch (e) {
    if (isSynlimitError(e)) throw e;
    throw failure(flag, given, reason(e));
  }
}

/**
 * A --report directory: made now if missing (with its parents), and it must
 * be writable. Throws a one-line usage error naming the flag otherwise.
 */
export function checkReportDir(dir: string | undefined, flag = "--report"): void {
  if (dir === undefined) return;
  if (dir === "") throw usageError(`${flag} needs a directory`);
  wrap(flag, dir, () => {
    const full = path.resolve(dir);
    makeDir(flag, dir, full);
    try {
      accessSync(full, constants.W_OK | constants.X_OK);
    } catch (e) {
      throw failure(flag, dir, `cannot write in ${full}: ${reason(e)}`);
    }
  });
}

/**
 * An output file (a trace): its directory must exist, and the file must be
 * creatable — tried by opening it for appending, and removed again when the
 * try created it, so a failed run leaves nothing behind.
 */
export function checkOutputFile(file: string | undefined, flag: string): void {
  if (file === undefined) return;
  if (file === "") throw usageError(`${flag} needs a file name`);
  wrap(flag, file, () => {
    const full = path.resolve(file);
    const dir = path.dirname(full);
    const dirStat = statOrNull(dir);
    if (!dirStat) {
      const blocker = fileInTheWay(dir);
      if (blocker) throw failure(flag, file, `${blocker} is a file, not a directory`);
      throw usageError(`${flag} directory ${dir} does not exist`);
    }
    if (!dirStat.isDirectory()) throw failure(flag, file, `${dir} is a file, not a directory`);
    const old = lstatSync(full, { throwIfNoEntry: false });
    if (old?.isDirectory()) {
      throw usageError(`${flag} ${file} is a directory; give a file name`);
    }
    try {
      if (old && !old.isFile()) {
        // A device or a pipe (/dev/null): opening could block, so only ask.
        accessSync(full, constants.W_OK);
      } else {
        closeSync(openSync(full, "a"));
        if (!old) rmSync(full);
      }
    } catch (e) {
      throw failure(flag, file, `cannot write ${full}: ${reason(e)}`);
    }
  });
}

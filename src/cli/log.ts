import { pino } from "pino";
import { invalidOption } from "../errors.js";

export type Logger = pino.Logger;

/** pino's level names, "silent" included: what `--log-level` accepts. */
export const logLevels: readonly string[] = [...Object.keys(pino.levels.values), "silent"];

// Paths a future caller might hand over wholesale (options, headers, URLs):
// a log line is read by more people than the secret it would carry.
const redact = {
  paths: [
    "password",
    "*.password",
    "token",
    "*.token",
    "secret",
    "*.secret",
    "authorization",
    "*.authorization",
    "*.headers.authorization",
    "*.headers.cookie",
  ],
  censor: "[redacted]",
};

/**
 * The CLI's logger: JSON lines on stderr, so stdout stays the command's
 * result. Synchronous, so the last lines before a signal or a crash are
 * written, not lost in a buffer.
 */
export function createLogger(level = "info"): Logger {
  if (!logLevels.includes(level))
    throw invalidOption("logLevel", `one of ${logLevels.join(", ")}`, level);
  return pino({ name: "synlimit", level, redact }, pino.destination({ dest: 2, sync: true }));
}

import { InvalidArgumentError } from "commander";
import { logLevels } from "./log.js";

/** A pino level name for `--log-level`. */
export function logLevel(value: string): string {
  if (!logLevels.includes(value)) {
    throw new InvalidArgumentError(`expected one of ${logLevels.join(", ")}.`);
  }
  return value;
}

import { onOutputClosed } from "./output.js";

/**
 * Resolves on the first SIGINT or SIGTERM, or when stdout's reader has gone
 * ("SIGPIPE"), so servers can close cleanly.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const done = (signal: NodeJS.Signals) => {
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      stopWatchingOutput();
      resolve(signal);
    };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
    const stopWatchingOutput = onOutputClosed(() => done("SIGPIPE"));
  });
}

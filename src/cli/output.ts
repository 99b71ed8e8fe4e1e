import { EventEmitter } from "node:events";

const events = new EventEmitter();
let closed = false;

/**
 * `synlimit profiles | head -1`: once the reader of stdout is gone, what is
 * left to print has no one to read it. Writes to a closed pipe fail with
 * EPIPE, emitted on the stream; without a listener that is an uncaught
 * exception and a stack trace. Here it ends the output quietly instead, and
 * tells a waiting server (see `untilSignal`) to close as it would on Ctrl-C.
 */
export function endQuietlyWhenOutputCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") throw error;
      if (stream === process.stdout && !closed) {
        closed = true;
        events.emit("closed");
      }
    });
  }
}

/** Calls `listener` once when stdout's reader has gone; returns a function that stops listening. */
export function onOutputClosed(listener: () => void): () => void {
  if (closed) {
    queueMicrotask(listener);
    return () => {};
  }
  events.once("closed", listener);
  return () => events.off("closed", listener);
}

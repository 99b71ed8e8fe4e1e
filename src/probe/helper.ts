/**
 * The probe's second process. The parent starts it with its own execArgv, so
 * it lives under whatever limits any process on this host lives under (an
 * `--import` limiter included); it dials on request and reports back, one
 * JSON object per line.
 */
import { createInterface } from "node:readline";
import { systemClock } from "../clock.js";
import type { Dial } from "./dial.js";
import type { HelperCommand, HelperMessage } from "./helper-protocol.js";
import { dialerFor } from "./via.js";

const dials = new Map<number, Dial>();
let dial = dialerFor(null, systemClock);
const send = (message: HelperMessage) => process.stdout.write(`${JSON.stringify(message)}\n`);

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  let command: HelperCommand;
  try {
    command = JSON.parse(line) as HelperCommand;
  } catch {
    return;
  }
  if (command.op === "init") {
    dial = dialerFor(command.via, systemClock);
  } else if (command.op === "dial") {
    const d = dial({ host: command.host, port: command.port });
    dials.set(command.id, d);
    void d.sent.then(() => send({ id: command.id, sent: true }));
    void d.done.then((outcome) => send({ id: command.id, outcome }));
  } else if (command.op === "cancel") {
    dials.get(command.id)?.cancel();
  }
});
// The parent's end of the pipe closes however the parent ends; nothing of
// ours may stay pending after it.
lines.on("close", () => {
  for (const d of dials.values()) d.cancel();
  process.exit(0);
});
send({ ready: true, pid: process.pid });

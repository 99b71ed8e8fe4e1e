import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Clock } from "../clock.js";
import { aborted, type Endpoint, SynlimitError } from "../errors.js";
import type { ProxySpec } from "./address.js";
import type { Dial, DialOutcome } from "./dial.js";
import type { HelperCommand, HelperMessage } from "./helper-protocol.js";

const helperScript = fileURLToPath(new URL("./helper.js", import.meta.url));
const READY_TIMEOUT_MS = 15_000;
const EXIT_GRACE_MS = 2_000;

// A debugger flag would make the helper fight the parent for the inspector
// port (or stop at its first line); every other flag is kept on purpose.
const inheritedExecArgv = () => process.execArgv.filter((a) => !/^--(inspect|debug)/.test(a));

/** A dial carried out by the helper process; times are the helper's own. */
class RemoteDial implements Dial {
  readonly startedAt: number;
  readonly sent: Promise<void>;
  readonly done: Promise<DialOutcome>;
  outcome: DialOutcome | null = null;
  endedAt: number | null = null;
  markSent!: () => void;
  #resolve!: (o: DialOutcome) => void;

  constructor(
    readonly target: Endpoint,
    private readonly clock: Clock,
    private readonly onCancel: () => void,
  ) {
    this.startedAt = clock.now();
    this.sent = new Promise((r) => {
      this.markSent = r;
    });
    this.done = new Promise((r) => {
      this.#resolve = r;
    });
  }

  finish(outcome: DialOutcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.endedAt = this.clock.now();
    this.markSent();
    this.#resolve(outcome);
  }

  cancel(): void {
    if (this.outcome) return;
    this.onCancel();
    this.finish({ kind: "cancelled", ms: this.clock.now() - this.startedAt });
  }
}

/**
 * A second process on this host that dials on request: the probe's way to
 * tell a per-process limit from a machine-wide one.
 */
export class HelperProcess {
  #nextId = 1;
  readonly #dials = new Map<number, RemoteDial>();

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly clock: Clock,
    readonly pid: number,
    private readonly exited: Promise<void>,
    stderr: () => string,
  ) {
    // A helper that dies mid-run ends its dials, so no wait hangs on it.
    void exited.then(() => {
      const why = stderr().trim().split("\n")[0] || "no message";
      for (const d of this.#dials.values()) {
        d.finish({
          kind: "error",
          ms: clock.now() - d.startedAt,
          code: "EHELPER",
          message: `the helper process ended: ${why}`,
          stage: "helper",
        });
      }
    });
  }

  static async start(
    via: ProxySpec | null,
    clock: Clock,
    signal?: AbortSignal,
  ): Promise<HelperProcess> {
    if (signal?.aborted) throw aborted("probe", signal.reason);
    const child = spawn(process.execPath, [...inheritedExecArgv(), helperScript], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const exited = new Promise<void>((resolve) => {
      child.once("close", () => resolve());
      child.once("error", () => resolve()); // never spawned: nothing to wait for
    });
    // A helper that died must not crash the probe with EPIPE.
    child.stdin.on("error", () => {});
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 4096) stderr += d;
    });
    const lines = createInterface({ input: child.stdout });
    let helper: HelperProcess | null = null;
    const ready = new Promise<number>((resolve, reject) => {
      const timer = clock.setTimer(
        () => reject(failure(`did not start within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
      const onAbort = () => reject(aborted("probe", signal?.reason));
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = () => {
        timer.cancel();
        signal?.removeEventListener("abort", onAbort);
      };
      child.once("error", (error) => {
        settle();
        reject(failure(error.message));
      });
      child.once("close", (code) => {
        settle();
        reject(
          failure(`exited with code ${code}: ${stderr.trim().split("\n")[0] || "no message"}`),
        );
      });
      lines.on("line", (line) => {
        let message: HelperMessage;
        try {
          message = JSON.parse(line) as HelperMessage;
        } catch {
          return;
        }
        if ("ready" in message) {
          settle();
          resolve(message.pid);
        } else if (helper) helper.#receive(message);
      });
    });
    try {
      const pid = await ready;
      helper = new HelperProcess(child, clock, pid, exited, () => stderr);
      helper.#send({ op: "init", via });
      return helper;
    } catch (error) {
      // Gone before this returns: an aborted probe leaves no process behind.
      child.kill("SIGKILL");
      await exited;
      throw error;
    }
  }

  dial(target: Endpoint): Dial {
    const id = this.#nextId++;
    const d = new RemoteDial(target, this.clock, () => this.#send({ op: "cancel", id }));
    this.#dials.set(id, d);
    this.#send({ op: "dial", id, host: target.host, port: target.port });
    return d;
  }

  /** Ends the helper; closing its stdin makes it cancel everything it holds first. */
  async close(): Promise<void> {
    for (const d of this.#dials.values()) d.cancel();
    this.child.stdin.end();
    const timer = this.clock.setTimer(() => this.child.kill("SIGKILL"), EXIT_GRACE_MS);
    await this.exited;
    timer.cancel();
  }

  #receive(message: Exclude<HelperMessage, { ready: true }>): void {
    const d = this.#dials.get(message.id);
    if (!d) return;
    if ("sent" in message) d.markSent();
    else {
      d.finish(message.outcome);
      this.#dials.delete(message.id);
    }
  }

  #send(command: HelperCommand): void {
    if (this.child.stdin.writable) this.child.stdin.write(`${JSON.stringify(command)}\n`);
  }
}

function failure(why: string): SynlimitError {
  return new SynlimitError("SYNLIMIT_CHILD_FAILED", `the probe's helper process ${why}`);
}

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { access, constants, mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SynlimitError, usageError } from "../../errors.js";

/** A server the lab talks to: where it is, and how to stop it. */
export interface RealService {
  url: string;
  close(): Promise<void>;
}

/**
 * A port nobody listens on right now. Another process may take it before the
 * server binds it; with ephemeral ports on loopback that race is rare enough
 * for a lab, and the start-up wait surfaces it as a clear error.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = net.createServer();
  server.listen({ host, port: 0 });
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function makeTempDir(name: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `synlimit-${name}-`));
}

export function removeDir(path: string): Promise<void> {
  return rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** Throws the one-line usage error naming the Debian package when `path` is missing. */
export async function requireFile(
  path: string,
  debianPackage: string,
  mode: "executable" | "readable" = "executable",
): Promise<void> {
  try {
    await access(path, mode === "executable" ? constants.X_OK : constants.R_OK);
  } catch {
    throw usageError(`${path} not found: install the Debian package ${debianPackage}`);
  }
}

/** uid and gid of a local account, from /etc/passwd (Node has no getpwnam). */
export async function lookupUser(name: string): Promise<{ uid: number; gid: number } | null> {
  const passwd = await readFile("/etc/passwd", "utf8").catch(() => "");
  for (const line of passwd.split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

export interface ChildOptions {
  cwd?: string;
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
}

const OUTPUT_TAIL_BYTES = 4096;

/**
 * A server process we own: its output is kept (the tail only) so a failed
 * start can say why, and `stop()` escalates to SIGKILL so a wedged server
 * never outlives the test that started it.
 */
export class ChildService {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  #output = "";
  #exitCode: number | null = null;
  #exitSignal: NodeJS.Signals | null = null;
  #hasExited = false;
  readonly #killOnExit = () => this.child.kill("SIGKILL");

  constructor(name: string, command: string, args: readonly string[], options: ChildOptions = {}) {
    this.name = name;
    // Spawned directly (not through runuser or a shell) so signals reach the
    // server itself and `pid` is the server's.
    this.child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_BYTES);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    // If our process exits without close() (a crash, process.exit), the
    // server must not outlive it holding a port; only SIGKILL of us escapes this.
    process.once("exit", this.#killOnExit);
    this.exited = new Promise<void>((resolve) => {
      this.child.once("error", (error) => {
        keep(Buffer.from(`${error.message}\n`));
        this.#markExited(null, null);
        resolve();
      });
      this.child.once("exit", (code, signal) => {
        this.#markExited(code, signal);
        resolve();
      });
    });
  }

  #markExited(code: number | null, signal: NodeJS.Signals | null): void {
    process.removeListener("exit", this.#killOnExit);
    this.#hasExited = true;
    this.#exitCode = code;
    this.#exitSignal = signal;
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get hasExited(): boolean {
    return this.#hasExited;
  }

  /** The last lines the process wrote, on one line, for error messages. */
  get outputTail(): string {
    const lines = this.#output.trim().split("\n").slice(-5);
    return lines.join(" | ");
  }

  describeExit(): string {
    const how = this.#exitSignal ? `signal ${this.#exitSignal}` : `code ${this.#exitCode}`;
    const tail = this.outputTail;
    return `${this.name} exited (${how})${tail ? `: ${tail}` : ""}`;
  }

  /** Sends `signal`, then SIGKILL after `graceMs`; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 5000): Promise<void> {
    if (this.#hasExited) return;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.child.kill("SIGKILL");
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    await this.exited;
  }
}

export interface WaitOptions {
  /** What is being waited for, for the error message. */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  /** Stop waiting early, with its output, if this process exits. */
  child?: ChildService;
}

/**
 * Polls `probe` until it resolves true, the deadline passes, or the child
 * exits. A probe that throws counts as "not yet"; its last error is reported.
 */
export async function waitUntil(
  probe: () => Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  const { what, timeoutMs, intervalMs = 50, child } = options;
  const deadline = performance.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    if (child?.hasExited) {
      throw new SynlimitError("SYNLIMIT_CHILD_FAILED", `${what}: ${child.describeExit()}`);
    }
    try {
      if (await probe()) return;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (performance.now() >= deadline) {
      const tail = child?.outputTail;
      throw new SynlimitError(
        "SYNLIMIT_CHILD_FAILED",
        `${what}: not ready after ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ""}${tail ? `; output: ${tail}` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Runs a command to completion; rejects with its output when it fails. */
export async function run(
  name: string,
  command: string,
  args: readonly string[],
  options: ChildOptions & { timeoutMs?: number } = {},
): Promise<void> {
  const { timeoutMs = 60_000, ...spawnOptions } = options;
  const child = new ChildService(name, command, args, spawnOptions);
  const timer = setTimeout(() => child.child.kill("SIGKILL"), timeoutMs);
  await child.exited;
  clearTimeout(timer);
  if (child.child.exitCode !== 0) {
    throw new SynlimitError("SYNLIMIT_CHILD_FAILED", `${name} failed: ${child.describeExit()}`);
  }
}

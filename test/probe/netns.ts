import { execFile, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { promisify } from "node:util";
import type { ProbeResult } from "../../src/probe/report.js";
import { cleanEnv, cliPath } from "../helpers/run-cli.js";

const run = promisify(execFile);

/** What the netfilter tests need that this machine lacks, in one line; null when nothing. */
export function missingForNetns(): string | null {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root (ip netns add needs CAP_SYS_ADMIN)");
  const onPath = (bin: string) =>
    (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin")
      .split(":")
      .concat(["/usr/sbin", "/sbin"])
      .some((dir) => {
        try {
          accessSync(`${dir}/${bin}`, constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
  if (!onPath("ip")) missing.push("ip (apt-get install iproute2)");
  if (!onPath("iptables")) missing.push("iptables (apt-get install iptables)");
  return missing.length === 0
    ? null
    : `the netfilter probe tests cannot run here, missing: ${missing.join(", ")}`;
}

let nextId = 0;

/**
 * A network namespace of the test's own, with only its loopback up: the
 * netfilter rules added to it limit nothing outside it. Named per test run
 * (pid and a counter), deleted by close().
 */
export class NetNamespace {
  /** Processes started inside; ended before the namespace is deleted. */
  readonly #children: Array<() => Promise<void>> = [];

  private constructor(readonly name: string) {}

  static async create(): Promise<NetNamespace> {
    const name = `synlimit-t${process.pid}-${nextId++}`;
    await run("ip", ["netns", "add", name]);
    const ns = new NetNamespace(name);
    try {
      await run("ip", ["-n", name, "link", "set", "lo", "up"]);
    } catch (error) {
      await ns.close();
      throw error;
    }
    return ns;
  }

  /** One rule on the namespace's OUTPUT chain (where its loopback SYNs leave). */
  async iptables(...args: string[]): Promise<void> {
    await run("ip", ["netns", "exec", this.name, "iptables", "-w", ...args]);
  }

  /** `synlimit probe --json --quiet ARGS` inside the namespace. */
  probe(args: string[] = []): Promise<{ code: number | null; json: ProbeResult; raw: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        "ip",
        [
          "netns",
          "exec",
          this.name,
          process.execPath,
          cliPath,
          "probe",
          "--json",
          "--quiet",
          ...args,
        ],
        { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        err += d;
      });
      child.once("error", reject);
      child.once("close", (code) => {
        try {
          resolve({ code, json: JSON.parse(out) as ProbeResult, raw: out + err });
        } catch {
          reject(new Error(`no JSON from the probe (exit ${code}): ${out}${err}`));
        }
      });
    });
  }

  /**
   * Another process in the namespace holding one established connection (to
   * a listener of its own), until close().
   */
  holdConnection(): Promise<{ close(): Promise<void> }> {
    const script = `const net=require("node:net");const s=net.createServer().listen(0,"127.0.0.1",()=>{const c=net.connect(s.address().port,"127.0.0.1",()=>console.log("held"));c.on("error",()=>{});});process.stdin.resume();process.stdin.on("end",()=>process.exit(0));`;
    const child = spawn("ip", ["netns", "exec", this.name, process.execPath, "-e", script], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
    const close = async () => {
      child.stdin.end();
      child.kill("SIGKILL");
      await exited;
    };
    this.#children.push(close);
    return new Promise((resolve, reject) => {
      child.stdout.setEncoding("utf8").once("data", () => resolve({ close }));
      child.once("error", reject);
      void exited.then(() => reject(new Error("the holder process ended before holding")));
    });
  }

  async close(): Promise<void> {
    for (const c of this.#children.splice(0)) await c();
    await run("ip", ["netns", "del", this.name]).catch(() => {});
  }
}

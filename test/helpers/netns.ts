import { spawnSync } from "node:child_process";

/**
 * A command line that runs inside a fresh network namespace with only its own
 * loopback: fixed ports are free there, nothing outside is reachable, and
 * `tcp_syn_retries` (per namespace) makes the kernel give up on an unanswered
 * connect in seconds instead of 127 s. Needs root (CI runs as root).
 */
export function netnsCommand(command: string[], synRetries = 1): string[] {
  return [
    "unshare",
    "--net",
    "sh",
    "-c",
    `ip link set lo up && sysctl -qw net.ipv4.tcp_syn_retries=${synRetries} && exec "$@"`,
    "sh",
    ...command,
  ];
}

let supported: boolean | undefined;

/** Whether this process may create network namespaces (root with unshare and ip). */
export function netnsSupported(): boolean {
  supported ??=
    spawnSync("unshare", ["--net", "sh", "-c", "ip link set lo up"], { stdio: "ignore" }).status ===
    0;
  return supported;
}

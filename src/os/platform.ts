import type { Endpoint } from "../errors.js";

/**
 * Decisions that depend on the operating system, with the platform passed
 * in (never read from `process.platform` here), so each branch is tested on
 * any host.
 */

/** The one line a Windows user sees when the probe has no blackhole. */
export const WINDOWS_NEEDS_BLACKHOLE =
  "no loopback tarpit can exist on Windows (a connect to a full backlog is refused with RST, not left pending): pass --blackhole HOST:PORT, a port where SYNs are silently dropped, e.g. a Linux machine running `synlimit tarpit --host ADDRESS --allow-non-loopback` (see docs/windows.md)";

/** Whether a listener that never accepts leaves connects pending (SYN dropped) rather than refused. */
export function loopbackTarpitPossible(platform: NodeJS.Platform): boolean {
  return platform !== "win32";
}

/**
 * Why the probe cannot start its own blackhole here, or null. It never
 * picks a non-loopback address itself: the user passes one.
 */
export function blackholeProblem(
  platform: NodeJS.Platform,
  o: { readonly blackhole: Endpoint | null },
): string | null {
  if (o.blackhole) return null;
  return loopbackTarpitPossible(platform) ? null : WINDOWS_NEEDS_BLACKHOLE;
}

/** How the probe lists the processes holding connect attempts. */
export function holdersMethod(platform: NodeJS.Platform): "proc" | "windows" | "none" {
  if (platform === "linux") return "proc";
  if (platform === "win32") return "windows";
  return "none";
}

/** Where the host's SYN schedule is read from. */
export function synScheduleMethod(
  platform: NodeJS.Platform,
): "tcp_syn_retries" | "Get-NetTCPSetting" | "none" {
  if (platform === "linux") return "tcp_syn_retries";
  if (platform === "win32") return "Get-NetTCPSetting";
  return "none";
}

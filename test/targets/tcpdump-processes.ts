import { readdirSync, readFileSync } from "node:fs";

/** tcpdump processes watching `port` (to prove none outlives the tarpit). */
export function tcpdumpsOn(port: number): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return argv[0]?.endsWith("tcpdump") && argv.some((a) => a.includes(`dst port ${port}`));
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number);
}

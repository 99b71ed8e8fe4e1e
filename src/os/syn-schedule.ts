import { readFile } from "node:fs/promises";
import { LINUX_INITIAL_RTO_MS, LINUX_RTO_MAX_MS, linuxSynSchedule } from "./linux-syn-schedule.js";
import { synScheduleMethod } from "./platform.js";
import { powershell, type RunCommand, runCommand } from "./windows/powershell.js";
import {
  GET_NET_TCP_SETTING,
  likelyTemplate,
  parseNetTcpSetting,
  windowsSchedule,
} from "./windows/tcp-setting.js";

/**
 * This host's SYN schedule: when its TCP stack retransmits a SYN to a
 * silent peer and when it gives up. The give-up time is how long a connect
 * queued behind one attempt to a dead host waits under a limit of one.
 */
export type HostSynSchedule =
  | {
      readonly available: true;
      /** Where the numbers come from, e.g. "net.ipv4.tcp_syn_retries = 6". */
      readonly source: string;
      readonly synAtMs: readonly number[];
      readonly giveUpMs: number;
      /**
       * measured: a give-up time measured on Windows for this setting, as
       * reported publicly, not verified by synlimit (docs/windows.md); model:
       * the Linux kernel's schedule from its sysctls (doubling from a 1 s RTO,
       * after any tcp_syn_linear_timeouts resends 1 s apart); estimated:
       * doubling, not observed for this setting.
       */
      readonly basis: "measured" | "model" | "estimated";
      readonly notes: readonly string[];
    }
  | { readonly available: false; readonly reason: string };

export interface HostSynScheduleDeps {
  readonly platform?: NodeJS.Platform;
  readonly readText?: (path: string) => Promise<string>;
  readonly run?: RunCommand;
}

export async function readHostSynSchedule(
  deps: HostSynScheduleDeps = {},
): Promise<HostSynSchedule> {
  const platform = deps.platform ?? process.platform;
  const readText = deps.readText ?? ((p: string) => readFile(p, "utf8"));
  const method = synScheduleMethod(platform);
  try {
    if (method === "tcp_syn_retries") return await linux(readText);
    if (method === "Get-NetTCPSetting")
      return windows(await powershell(deps.run ?? runCommand, GET_NET_TCP_SETTING));
  } catch (error) {
    return { available: false, reason: `${method}: ${(error as Error).message.split("\n")[0]}` };
  }
  return { available: false, reason: `no SYN schedule reader for ${platform}` };
}

async function linux(readText: (p: string) => Promise<string>): Promise<HostSynSchedule> {
  const text = (await readText("/proc/sys/net/ipv4/tcp_syn_retries")).trim();
  if (!/^\d+$/.test(text)) throw new Error(`unexpected tcp_syn_retries ${JSON.stringify(text)}`);
  const retries = Number(text);
  const optional = (name: string) =>
    readText(`/proc/sys/net/ipv4/${name}`).then(
      (v) => (/^\d+$/.test(v.trim()) ? Number(v.trim()) : null),
      () => null,
    );
  const [linear, rtoMax] = await Promise.all([
    optional("tcp_syn_linear_timeouts"),
    optional("tcp_rto_max_ms"),
  ]);
  const s = linuxSynSchedule(
    retries,
    linear ?? 0,
    LINUX_INITIAL_RTO_MS,
    rtoMax ?? LINUX_RTO_MAX_MS,
  );
  const parts = [`net.ipv4.tcp_syn_retries = ${retries}`];
  if (linear !== null) parts.push(`tcp_syn_linear_timeouts = ${linear}`);
  return {
    available: true,
    source: parts.join(", "),
    synAtMs: [0, ...s.retransmitAtMs],
    giveUpMs: s.giveUpAtMs,
    basis: "model",
    notes: [],
  };
}

function windows(json: string): HostSynSchedule {
  const templates = parseNetTcpSetting(json);
  const t = likelyTemplate(templates);
  if (!t || t.initialRtoMs === null || t.maxSynRetransmissions === null) {
    return {
      available: false,
      reason: `Get-NetTCPSetting: no template with InitialRtoMs and MaxSynRetransmissions (${templates.map((x) => x.settingName).join(", ") || "none"})`,
    };
  }
  const s = windowsSchedule(t.initialRtoMs, t.maxSynRetransmissions);
  const others = templates
    .filter((x) => x !== t && x.initialRtoMs !== null && x.maxSynRetransmissions !== null)
    .map(
      (x) =>
        `${x.settingName}: InitialRtoMs ${x.initialRtoMs}, MaxSynRetransmissions ${x.maxSynRetransmissions}`,
    );
  return {
    available: true,
    source: `Get-NetTCPSetting ${t.settingName}: InitialRtoMs ${t.initialRtoMs}, MaxSynRetransmissions ${t.maxSynRetransmissions}`,
    synAtMs: s.synAtMs,
    giveUpMs: s.giveUpMs,
    basis: s.basis,
    notes: others.length > 0 ? [`other templates: ${others.join("; ")}`] : [],
  };
}

/** One line for a report: the schedule and what it predicts for a blocked connect. */
export function describeHostSchedule(s: HostSynSchedule): string {
  if (!s.available) return `host SYN schedule: unknown (${s.reason})`;
  const sec = (ms: number) => `${Math.round(ms / 100) / 10}`;
  return `host SYN schedule (${s.source}, ${s.basis}): SYN at ${s.synAtMs.map(sec).join(", ")} s, gives up at ${sec(s.giveUpMs)} s — a connect queued behind one attempt to a dead host waits up to ${sec(s.giveUpMs)} s`;
}

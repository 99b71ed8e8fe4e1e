import { convertToJsonRows } from "./powershell.js";
/**
 * `Get-NetTCPSetting` (NetTCPIP module, no admin rights needed): the TCP
 * templates (Internet, Datacenter, Compat, …) and, per template, the SYN
 * retransmission settings that decide how long a connect to a silent peer
 * waits. Read as JSON, never as the formatted (localised) table.
 */

/** What the probe runs; Select-Object keeps the JSON to plain numbers and names. */
export const GET_NET_TCP_SETTING =
  "Get-NetTCPSetting | Select-Object SettingName,InitialRtoMs,MinRtoMs,MaxSynRetransmissions | ConvertTo-Json -Compress";

export interface TcpTemplate {
  readonly settingName: string;
  /** null where the template leaves it unset (the "Automatic" template does). */
  readonly initialRtoMs: number | null;
  readonly maxSynRetransmissions: number | null;
}

/**
 * Parses the JSON. ConvertTo-Json writes one object (not an array) when
 * there is one template, and nothing at all when there is none. Both the
 * Select-Object shape and a whole CIM instance are accepted; a property may
 * be missing or null. Throws on text that is not such JSON.
 */
export function parseNetTcpSetting(text: string): TcpTemplate[] {
  return convertToJsonRows(text, "Get-NetTCPSetting").map((r, i) => {
    const name = r.SettingName;
    if (typeof name !== "string" || name === "") {
      throw new Error(`Get-NetTCPSetting JSON: entry ${i} has no SettingName`);
    }
    return {
      settingName: name,
      initialRtoMs: count(r.InitialRtoMs ?? r.InitialRto),
      maxSynRetransmissions: count(r.MaxSynRetransmissions),
    };
  });
}

function count(v: unknown): number | null {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/**
 * Give-up times publicly reported for a 1 s initial RTO (CI runners
 * blackholing a connect; not verified by synlimit on Windows, see
 * docs/windows.md). They do not follow the doubling model (4 resends would
 * give 31 s), so they are taken as reported, and `basis` says so.
 */
const MEASURED_GIVE_UP_MS: Readonly<Record<string, number>> = {
  "1000/2": 7_000,
  "1000/4": 21_000,
  "1000/6": 123_000,
  // The field host (docs/incident.md): 3 s initial RTO, 2 retransmissions.
  "3000/2": 21_000,
};

/** Windows caps a retransmission timeout at 60 s (the 6-retransmission case ends 60 s after its last SYN). */
const MAX_RTO_MS = 60_000;

export interface WindowsSchedule {
  readonly synAtMs: readonly number[];
  readonly giveUpMs: number;
  /** measured: a give-up time reported for this setting; estimated: doubling RTOs, not observed. */
  readonly basis: "measured" | "estimated";
}

/** The SYN schedule a template implies: the RTO doubles after every SYN. */
export function windowsSchedule(
  initialRtoMs: number,
  maxSynRetransmissions: number,
): WindowsSchedule {
  const synAtMs = [0];
  let rto = initialRtoMs;
  let at = 0;
  for (let i = 0; i < maxSynRetransmissions; i++) {
    at += rto;
    synAtMs.push(at);
    rto = Math.min(rto * 2, MAX_RTO_MS);
  }
  const measured = MEASURED_GIVE_UP_MS[`${initialRtoMs}/${maxSynRetransmissions}`];
  return measured !== undefined
    ? { synAtMs, giveUpMs: measured, basis: "measured" }
    : { synAtMs, giveUpMs: at + rto, basis: "estimated" };
}

/**
 * The template an ordinary outbound connect uses. Windows picks one per
 * destination through its transport filters (Get-NetTransportFilter); the
 * default filter names "Automatic", which resolves to Internet (clients) or
 * Datacenter (servers, low-latency paths). Internet is the first choice
 * here, then Datacenter, then any template with both values set.
 */
export function likelyTemplate(templates: readonly TcpTemplate[]): TcpTemplate | null {
  const usable = templates.filter(
    (t) => t.initialRtoMs !== null && t.initialRtoMs > 0 && t.maxSynRetransmissions !== null,
  );
  return (
    usable.find((t) => t.settingName === "Internet") ??
    usable.find((t) => t.settingName === "Datacenter") ??
    usable[0] ??
    null
  );
}

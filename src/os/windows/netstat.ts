/**
 * `netstat -ano`: the fallback where PowerShell's NetTCPIP module is missing
 * (Server Core without it, old hosts). Its headers and state names are
 * localised, so rows are recognised by shape and states through a table of
 * the names used by common display languages.
 */

/** SYN_SENT as netstat prints it, by display language (upper case, accents removed). */
const SYN_SENT_NAMES: ReadonlySet<string> = new Set([
  "SYN_SENT", // English
  "SYN_GESENDET", // German
]);
const SYN_RECEIVED_NAMES: ReadonlySet<string> = new Set(["SYN_RECEIVED", "SYN_EMPFANGEN"]);

export interface NetstatRow {
  readonly local: { host: string; port: number };
  readonly remote: { host: string; port: number };
  /** The state as printed. */
  readonly stateText: string;
  readonly pid: number;
}

export interface NetstatPending extends NetstatRow {
  /**
   * true when the state name is not one synlimit knows and the row was
   * taken as SYN_SENT because it is a SYN_* state on a port that does not
   * listen (so not a half-open inbound connection).
   */
  readonly stateGuessed: boolean;
}

const ROW = /^\s*TCP\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s*$/i;

/** Every TCP row of `netstat -ano` (UDP rows and headers are skipped). */
export function parseNetstatRows(text: string): NetstatRow[] {
  const rows: NetstatRow[] = [];
  for (const line of text.split(/\r?\n/)) {
    const m = ROW.exec(line);
    if (!m) continue;
    const local = endpoint(m[1] as string);
    const remote = endpoint(m[2] as string);
    if (!local || !remote) continue;
    rows.push({ local, remote, stateText: m[3] as string, pid: Number(m[4]) });
  }
  return rows;
}

/** The rows in SYN_SENT, in any of the known languages or recognisably so. */
export function netstatSynSent(text: string): NetstatPending[] {
  const rows = parseNetstatRows(text);
  // A listening socket's row has no remote end (0.0.0.0:0 or [::]:0) and no SYN_ state.
  const listening = new Set(
    rows.filter((r) => r.remote.port === 0 && !/^SYN/i.test(r.stateText)).map((r) => r.local.port),
  );
  const out: NetstatPending[] = [];
  for (const r of rows) {
    const state = fold(r.stateText);
    if (SYN_SENT_NAMES.has(state)) out.push({ ...r, stateGuessed: false });
    else if (
      state.startsWith("SYN") &&
      !SYN_RECEIVED_NAMES.has(state) &&
      !listening.has(r.local.port)
    ) {
      out.push({ ...r, stateGuessed: true });
    }
  }
  return out;
}

function fold(s: string): string {
  return s
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toUpperCase();
}

/** 127.0.0.1:80, [::1]:443, [::1%1]:49712, *:* (UDP). */
function endpoint(text: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { host: (m[1] as string).replace(/%\d+$/, ""), port };
}

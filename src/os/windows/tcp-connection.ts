import { convertToJsonRows } from "./powershell.js";
/**
 * `Get-NetTCPConnection -State SynSent,Bound` (no admin rights needed): who
 * holds connect attempts right now, with the owning process and when the
 * socket was created. Read as JSON, so nothing depends on the display
 * language. Sockets a security product holds back before their SYN may
 * show as Bound, not SynSent.
 */

/**
 * What the probe runs. State is cast to its number and CreationTime written
 * as ISO 8601 UTC, so neither PowerShell 5.1 nor 7 formats them its own way;
 * the process name is looked up in the same pass.
 */
export const GET_NET_TCP_CONNECTION =
  "Get-NetTCPConnection -State SynSent,Bound -ErrorAction SilentlyContinue | Select-Object LocalAddress,LocalPort,RemoteAddress,RemotePort,@{n='State';e={[int]$_.State}},OwningProcess,@{n='CreationTime';e={$_.CreationTime.ToUniversalTime().ToString('o')}},@{n='ProcessName';e={(Get-Process -Id $_.OwningProcess -ErrorAction SilentlyContinue).ProcessName}} | ConvertTo-Json -Compress";

/** MSFT_NetTCPConnection.State values (the documented enumeration). */
const STATE_BY_NUMBER: Readonly<Record<number, string>> = {
  1: "Closed",
  2: "Listen",
  3: "SynSent",
  4: "SynReceived",
  5: "Established",
  6: "FinWait1",
  7: "FinWait2",
  8: "CloseWait",
  9: "Closing",
  10: "LastAck",
  11: "TimeWait",
  12: "DeleteTCB",
  100: "Bound",
};

export interface WindowsTcpSocket {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** SynSent, Bound, … (the enumeration's invariant names). */
  readonly state: string;
  readonly pid: number;
  readonly processName: string | null;
  /** Milliseconds since the epoch; null when absent or unreadable. */
  readonly createdAt: number | null;
}

/**
 * Parses the JSON (one object or an array; empty text when nothing
 * matched). State may be a number (as cast above, or PowerShell 5.1's
 * default) or a name (PowerShell 7 with -EnumsAsStrings); CreationTime an
 * ISO string or 5.1's "\/Date(ms)\/".
 */
export function parseNetTcpConnection(text: string): WindowsTcpSocket[] {
  return convertToJsonRows(text, "Get-NetTCPConnection").map((r, i) => {
    const state =
      typeof r.State === "number"
        ? STATE_BY_NUMBER[r.State]
        : typeof r.State === "string"
          ? r.State
          : undefined;
    const pid = r.OwningProcess;
    if (
      typeof r.LocalAddress !== "string" ||
      typeof r.RemoteAddress !== "string" ||
      !isPort(r.LocalPort) ||
      !isPort(r.RemotePort) ||
      state === undefined ||
      typeof pid !== "number" ||
      !Number.isSafeInteger(pid)
    ) {
      throw new Error(
        `Get-NetTCPConnection JSON: entry ${i} lacks an address, port, state or process`,
      );
    }
    return {
      localAddress: r.LocalAddress,
      localPort: r.LocalPort,
      remoteAddress: r.RemoteAddress,
      remotePort: r.RemotePort,
      state,
      pid,
      processName: typeof r.ProcessName === "string" && r.ProcessName !== "" ? r.ProcessName : null,
      createdAt: timestamp(r.CreationTime),
    };
  });
}

function isPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535;
}

function timestamp(v: unknown): number | null {
  if (typeof v !== "string") return null;
  const legacy = /^\/Date\((-?\d+)\)\/$/.exec(v);
  if (legacy) return Number(legacy[1]);
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? null : ms;
}

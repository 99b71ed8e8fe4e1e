import type { HoldersReport } from "../linux/holders.js";
import { netstatSynSent } from "./netstat.js";
import { powershell, type RunCommand, runCommand } from "./powershell.js";
import { GET_NET_TCP_CONNECTION, parseNetTcpConnection } from "./tcp-connection.js";

export type WindowsHoldersReport = HoldersReport & {
  /** Where the list came from: the JSON of Get-NetTCPConnection, or netstat's text. */
  readonly source?: "Get-NetTCPConnection" | "netstat -ano";
  /** Processes with sockets in the Bound state (possibly held back before their SYN). */
  readonly bound?: ReadonlyArray<{ pid: number; processName: string | null; sockets: number }>;
  readonly notes?: readonly string[];
};

/**
 * Who holds connect attempts on this Windows host: Get-NetTCPConnection as
 * JSON first (no localised text), `netstat -ano` when PowerShell or its
 * NetTCPIP module is not there. Neither needs admin rights.
 */
export async function listWindowsHolders(
  run: RunCommand = runCommand,
): Promise<WindowsHoldersReport> {
  let json: string | null = null;
  let why = "";
  try {
    json = await powershell(run, GET_NET_TCP_CONNECTION);
  } catch (error) {
    why = (error as Error).message.split("\n")[0] ?? "failed";
  }
  if (json !== null) {
    try {
      return fromConnections(json);
    } catch (error) {
      why = (error as Error).message;
    }
  }
  let text: string;
  try {
    text = await run("netstat", ["-ano", "-p", "TCP"]);
  } catch (error) {
    return {
      supported: false,
      reason: `neither Get-NetTCPConnection (${why}) nor netstat -ano could be run: ${(error as Error).message.split("\n")[0]}`,
    };
  }
  return fromNetstat(text, `Get-NetTCPConnection unavailable (${why}); read netstat -ano instead`);
}

export function fromConnections(json: string): WindowsHoldersReport {
  const sockets = parseNetTcpConnection(json);
  const byPid = new Map<number, { pid: number; comm: string | null; attempts: Attempt[] }>();
  const bound = new Map<number, { pid: number; processName: string | null; sockets: number }>();
  for (const s of sockets) {
    if (s.state === "SynSent") {
      const h = byPid.get(s.pid) ?? { pid: s.pid, comm: s.processName, attempts: [] };
      h.attempts.push({
        local: { host: s.localAddress, port: s.localPort },
        remote: { host: s.remoteAddress, port: s.remotePort },
        state: s.state,
        createdAt: s.createdAt,
      });
      byPid.set(s.pid, h);
    } else if (s.state === "Bound") {
      const b = bound.get(s.pid) ?? { pid: s.pid, processName: s.processName, sockets: 0 };
      b.sockets++;
      bound.set(s.pid, b);
    }
  }
  const holders = [...byPid.values()]
    .map((h) => ({ pid: h.pid, exe: null, comm: h.comm, attempts: h.attempts }))
    .sort((a, b) => b.attempts.length - a.attempts.length || a.pid - b.pid);
  return {
    supported: true,
    holders,
    unattributed: [],
    source: "Get-NetTCPConnection",
    bound: [...bound.values()].sort((a, b) => b.sockets - a.sockets || a.pid - b.pid),
    notes: [],
  };
}

export function fromNetstat(text: string, note: string): WindowsHoldersReport {
  const pending = netstatSynSent(text);
  const byPid = new Map<number, Attempt[]>();
  const guessed = new Set<string>();
  for (const p of pending) {
    if (p.stateGuessed) guessed.add(p.stateText);
    byPid.set(p.pid, [
      ...(byPid.get(p.pid) ?? []),
      { local: p.local, remote: p.remote, state: p.stateText, createdAt: null },
    ]);
  }
  const holders = [...byPid]
    .map(([pid, attempts]) => ({ pid, exe: null, comm: null, attempts }))
    .sort((a, b) => b.attempts.length - a.attempts.length || a.pid - b.pid);
  return {
    supported: true,
    holders,
    unattributed: [],
    source: "netstat -ano",
    notes: [
      note,
      ...(guessed.size > 0
        ? [
            `unknown state name(s) ${[...guessed].join(", ")} taken as SYN_SENT (SYN_* on a port that does not listen)`,
          ]
        : []),
    ],
  };
}

interface Attempt {
  readonly local: { host: string; port: number };
  readonly remote: { host: string; port: number };
  readonly state: string;
  readonly createdAt: number | null;
}

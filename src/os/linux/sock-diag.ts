import { createRequire } from "node:module";

interface Native {
  lookupTcp(
    family: 4 | 6,
    localAddress: Buffer,
    localPort: number,
    remoteAddress: Buffer,
    remotePort: number,
  ): { inode: number; uid: number } | null;
}

export interface SocketEnd {
  /** Address bytes in network order: 4 for IPv4, 16 for IPv6. */
  readonly address: Uint8Array;
  readonly port: number;
}

let native: Native | null | undefined;

// The optional package synlimit-sockdiag (packages/sockdiag), built by node-gyp
// where it is installed; without it, callers fall back to /proc/net/tcp, so a
// library user's install never needs a compiler.
function load(): Native | null {
  if (native !== undefined) return native;
  native = null;
  if (process.platform !== "linux") return native;
  try {
    const require = createRequire(import.meta.url);
    native = require("synlimit-sockdiag") as Native;
  } catch {
    native = null;
  }
  return native;
}

/** True where the exact lookup is available (Linux, native part built). */
export function sockDiagAvailable(): boolean {
  return load() !== null;
}

/**
 * The inode of the TCP socket whose own end is `local` and whose peer is
 * `remote`, by one NETLINK_SOCK_DIAG query: a hash lookup in the kernel,
 * where /proc/net/tcp lists every socket (TIME_WAIT too). Null when no such
 * socket exists; undefined when the lookup is not available here.
 */
export function tcpSocketInode(local: SocketEnd, remote: SocketEnd): number | null | undefined {
  const n = load();
  if (!n) return undefined;
  const family = local.address.length === 4 ? 4 : 6;
  const r = n.lookupTcp(
    family,
    Buffer.from(local.address),
    local.port,
    Buffer.from(remote.address),
    remote.port,
  );
  return r ? r.inode : null;
}

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { fileURLToPath } from "node:url";

/** The built CLI, as an operator would run it. */
export const cliPath = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves once something accepts on the port (a started proxy is ready). */
export async function waitForPort(port: number, child?: ChildProcess): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (child && child.exitCode !== null)
      throw new Error(`${child.spawnfile} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** Spawns a program with a raised open-files limit (root may raise its hard limit). */
export function spawnWithFiles(
  file: string,
  args: string[],
  options: { files?: number; ipc?: boolean } = {},
): ChildProcess {
  const quoted = [file, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const files = options.files ?? 65_536;
  // Fall back to the current limit where raising is not allowed.
  const script = `ulimit -n ${files} 2>/dev/null || ulimit -n $(ulimit -Hn); exec ${quoted}`;
  return spawn("sh", ["-c", script], {
    stdio: options.ipc ? ["ignore", "inherit", "inherit", "ipc"] : ["ignore", "ignore", "pipe"],
  });
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
  await exited;
  clearTimeout(timer);
}

/** Reads exactly `n` bytes (or fails if the socket ends first). */
export function readExactly(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (buf.length >= n) {
        cleanup();
        // Paused first: bytes put back must wait for the next reader, not flow away.
        socket.pause();
        if (buf.length > n) socket.unshift(buf.subarray(n));
        resolve(buf.subarray(0, n));
      }
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`socket ended after ${buf.length} of ${n} bytes`));
    };
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onEnd);
      socket.off("close", onEnd);
    };
    socket.on("data", onData);
    socket.resume();
    socket.once("end", onEnd);
    socket.once("error", onEnd);
    socket.once("close", onEnd);
  });
}

/**
 * A SOCKS5 CONNECT by the book (greeting, then request, each answered before
 * the next is sent, which every server accepts). Resolves with the tunnel.
 */
export async function socks5Tunnel(
  proxyPort: number,
  target: { host: string; port: number },
  user?: string,
): Promise<net.Socket> {
  const socket = net.connect(proxyPort, "127.0.0.1");
  socket.setNoDelay(true);
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  socket.write(Buffer.from(user ? [5, 1, 2] : [5, 1, 0]));
  const method = await readExactly(socket, 2);
  if (user) {
    if (method[1] !== 2) throw new Error("proxy did not select username/password");
    const u = Buffer.from(user);
    socket.write(Buffer.from([1, u.length, ...u, 1, 0x2d]));
    const status = await readExactly(socket, 2);
    if (status[1] !== 0) throw new Error("authentication failed");
  } else if (method[1] !== 0) {
    throw new Error(`proxy selected method ${method[1]}`);
  }
  const a = target.host.split(".").map(Number);
  socket.write(Buffer.from([5, 1, 0, 1, ...a, target.port >> 8, target.port & 255]));
  const reply = await readExactly(socket, 10);
  if (reply[1] !== 0) {
    socket.destroy();
    throw Object.assign(new Error(`SOCKS reply ${reply[1]}`), { rep: reply[1] });
  }
  return socket;
}

export async function directTunnel(target: { host: string; port: number }): Promise<net.Socket> {
  const socket = net.connect(target.port, target.host);
  socket.setNoDelay(true);
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  return socket;
}

export const mib = 1024 * 1024;

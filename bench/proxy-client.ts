// The load generator of bench/proxy-setups.ts, a process of its own (as a
// user's client would be): told over IPC to run N SOCKS5 setups through a
// proxy with C in parallel, it answers with the rate and its own CPU time.
// Plain `net`, a by-the-book SOCKS5 exchange, nothing shared with the proxy.
import net from "node:net";
import { performance } from "node:perf_hooks";

interface Job {
  readonly proxyPort: number | null;
  readonly targetPort: number;
  readonly setups: number;
  readonly concurrency: number;
}

function once(socket: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (buf.length >= n) {
        socket.off("data", onData);
        socket.off("close", onClose);
        resolve(buf);
      }
    };
    const onClose = () => reject(new Error(`closed after ${buf.length} of ${n} bytes`));
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}

const greeting = Buffer.from([5, 1, 0]);

// One setup: connect, greeting, CONNECT, the target's first byte, close.
async function setup(job: Job): Promise<void> {
  const port = job.proxyPort ?? job.targetPort;
  const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
  socket.on("error", () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    if (job.proxyPort !== null) {
      socket.write(greeting);
      const method = await once(socket, 2);
      if (method[1] !== 0) throw new Error(`method ${method[1]}`);
      const p = job.targetPort;
      socket.write(Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, p >> 8, p & 255]));
      // The reply (10 bytes) and the target's byte may come in one read.
      const reply = await once(socket, 11);
      if (reply[1] !== 0) throw new Error(`SOCKS reply ${reply[1]}`);
    } else {
      await once(socket, 1);
    }
  } finally {
    socket.destroy();
  }
}

async function run(
  job: Job,
): Promise<{ perSecond: number; seconds: number; cpuMicros: number; failed: number }> {
  let started = 0;
  let failed = 0;
  const worker = async () => {
    while (started < job.setups) {
      started++;
      await setup(job).catch(() => {
        failed++;
      });
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    perSecond: job.setups / seconds,
    seconds,
    cpuMicros: (cpu.user + cpu.system) / job.setups,
    failed,
  };
}

process.on("message", (job: Job) => {
  run(job).then(
    (r) => process.send?.(r),
    (e: Error) => process.send?.({ error: e.message }),
  );
});

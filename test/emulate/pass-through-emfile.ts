// Child of pass-through.test.ts, run with a low descriptor limit: a connect
// that fails inside connect(2)'s socket(2), untracked and tracked; prints the
// gate's counts for each as one JSON line.
import diagnostics from "node:diagnostics_channel";
import { once } from "node:events";
import fs from "node:fs";
import net from "node:net";
import { install, uninstall } from "../../src/emulate/install.js";
import { channelNames } from "../../src/gate/channels.js";

const server = net.createServer();
server.listen(0, "127.0.0.1");
await once(server, "listening");
const { port } = server.address() as net.AddressInfo;

async function refusedAtOnce(observed: boolean) {
  const listener = () => {};
  if (observed) diagnostics.subscribe(channelNames.start, listener);
  const { gate } = install({ profile: "windows", timing: "none" });
  const fds: number[] = [];
  try {
    for (;;) fds.push(fs.openSync("/dev/null", "r"));
  } catch (error) {
    if ((error as { code?: string }).code !== "EMFILE") throw error;
  }
  const socket = net.connect(port, "127.0.0.1");
  const [error] = (await once(socket, "error").catch((e) => [e])) as [Error & { code: string }];
  for (const fd of fds) fs.closeSync(fd);
  uninstall();
  if (observed) diagnostics.unsubscribe(channelNames.start, listener);
  const { inFlight, totals } = gate.stats();
  return { code: error.code, inFlight, pending: totals.pending, failed: totals.failed };
}

const untracked = await refusedAtOnce(false);
const tracked = await refusedAtOnce(true);
server.close();
process.stdout.write(`${JSON.stringify({ untracked, tracked })}\n`);

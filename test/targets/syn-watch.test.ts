import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import { type SenderStopped, type SynArrival, SynWatch } from "../../src/index.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { tcpdumpsOn } from "./tcpdump-processes.js";

const notRoot = process.getuid?.() !== 0 && "capturing with tcpdump needs root (CI runs as root)";

test("SynWatch (library): a tarpit's dropped SYNs arrive as events; close() ends open senders and tcpdump", {
  skip: notRoot,
}, async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const watch = await SynWatch.start({ host: tarpit.host, port: tarpit.port });
  t.after(() => watch.close());
  const syns: SynArrival[] = [];
  const stops: SenderStopped[] = [];
  watch.on("stopped", (e) => stops.push(e));
  const second = new Promise<void>((resolve) =>
    watch.on("syn", (e) => {
      syns.push(e);
      if (e.n === 2) resolve();
    }),
  );
  const socket = net.connect(tarpit.port, "127.0.0.1");
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  await second;
  assert.deepEqual(
    syns.map((e) => e.n),
    [1, 2],
  );
  assert.equal(syns[0]?.to, tarpit.address);
  assert.ok((syns[1]?.offsetMs ?? 0) > 500, "the resend came after the initial RTO, not at once");

  assert.equal(tcpdumpsOn(tarpit.port).length, 1);
  await watch.close();
  assert.deepEqual(tcpdumpsOn(tarpit.port), [], "close() stopped tcpdump");
  assert.equal(stops.length, 1);
  assert.equal(stops[0]?.reason, "watch-stopped");
  assert.deepEqual(
    stops[0]?.offsetsMs,
    syns.map((e) => e.offsetMs),
  );
  // Still retransmitting: nothing gave up, only a next SYN was due.
  assert.equal(stops[0]?.gaveUpByMs, null);
  assert.ok((stops[0]?.nextSynDueMs ?? 0) > (syns[1]?.offsetMs ?? Number.POSITIVE_INFINITY));
  await watch.close(); // idempotent
});

test("SynWatch: a new connect from the same port (a new sequence number) ends the old sender's summary", {
  skip: notRoot,
}, async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const watch = await SynWatch.start({ host: tarpit.host, port: tarpit.port });
  t.after(() => watch.close());
  const free = net.createServer().listen(0, "127.0.0.1");
  await once(free, "listening");
  const localPort = (free.address() as net.AddressInfo).port;
  free.close();
  const syns: SynArrival[] = [];
  const stops: SenderStopped[] = [];
  watch.on("stopped", (e) => stops.push(e));
  const firstSyn = (count: number) =>
    new Promise<void>((resolve) => {
      const on = (e: SynArrival) => {
        syns.push(e);
        if (syns.filter((s) => s.n === 1).length === count) {
          watch.off("syn", on);
          resolve();
        }
      };
      watch.on("syn", on);
    });
  const connect = () => {
    const socket = net.connect({ host: "127.0.0.1", port: tarpit.port, localPort });
    socket.on("error", () => {});
    t.after(() => socket.destroy());
    return socket;
  };
  const seenFirst = firstSyn(1);
  const a = connect();
  await seenFirst;
  a.destroy(); // SYN_SENT closes without a packet and without TIME_WAIT: the port is free at once
  await once(a, "close");
  const seenSecond = firstSyn(2);
  connect();
  await seenSecond;
  assert.equal(stops.length, 1);
  assert.equal(stops[0]?.reason, "new-attempt");
  assert.equal(stops[0]?.from, `127.0.0.1:${localPort}`);
  assert.equal(syns.at(-1)?.from, `127.0.0.1:${localPort}`);
  assert.equal(syns.at(-1)?.n, 1, "the new attempt counts its SYNs from 1");
});

test("SynWatch: a process that exits without close() takes its tcpdump with it", {
  skip: notRoot,
}, async () => {
  const port = 9; // only watched, never listened on or dialled
  const program = `
    import { SynWatch } from ${JSON.stringify(new URL("../../src/index.js", import.meta.url).href)};
    await SynWatch.start({ host: "127.0.0.1", port: ${port} });
    process.exit(0);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", program], {
    stdio: "inherit",
  });
  const [code] = await once(child, "exit");
  assert.equal(code, 0);
  // SIGTERM was sent synchronously at exit; tcpdump needs a moment to act on it.
  for (let i = 0; i < 100 && tcpdumpsOn(port).length > 0; i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(tcpdumpsOn(port), []);
});

test("SynWatch.start rejects with one line when the capture tool is missing", async () => {
  await assert.rejects(
    SynWatch.start({ host: "127.0.0.1", port: 9, tcpdump: "/nonexistent/tcpdump" }),
    (e: Error & { code?: string }) =>
      e.code === "SYNLIMIT_CHILD_FAILED" &&
      /tcpdump: \/nonexistent\/tcpdump not found/.test(e.message) &&
      !e.message.includes("\n"),
  );
});

test("SynWatch.start refuses a host that is not an IP address", async () => {
  await assert.rejects(SynWatch.start({ host: "localhost", port: 9 }), /host/);
});

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { Tarpit } from "../../src/targets/tarpit.js";
import { firstLine, startForTest } from "../helpers/run-cli.js";

// A client program of its own: `n` SOCKS5 connects through the gate to one
// port, held open until it is killed. Each such process is one XP "process".
const clientProgram = `
const net = require("node:net");
const [proxyPort, port, n] = process.argv.slice(1).map(Number);
for (let i = 0; i < n; i++) {
  const s = net.connect(proxyPort, "127.0.0.1");
  s.on("error", () => {});
  s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255]));
}
setInterval(() => {}, 1 << 30);
`;

function clientProcess(t: TestContext, proxyPort: number, port: number, n: number): ChildProcess {
  const child = spawn(
    process.execPath,
    ["-e", clientProgram, String(proxyPort), String(port), String(n)],
    {
      stdio: "ignore",
    },
  );
  t.after(() => child.kill("SIGKILL"));
  return child;
}

interface AttemptRow {
  readonly port: number;
  readonly state: "queued" | "pending";
}

function attempts(adminPort: number): Promise<AttemptRow[]> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port: adminPort, path: "/attempts" }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve((JSON.parse(body) as { attempts: AttemptRow[] }).attempts));
      })
      .on("error", reject);
  });
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test("winxp-sp2 through the gate (identity global): two client processes' queued attempts are served in turn, not in one FIFO", async (t) => {
  // One tarpit per party, so an attempt's port says whose it is.
  const tarpits = await Promise.all([Tarpit.listen(), Tarpit.listen(), Tarpit.listen()]);
  t.after(() => Promise.all(tarpits.map((tp) => tp.close())));
  const [holdersTarpit, aTarpit, bTarpit] = tarpits as [Tarpit, Tarpit, Tarpit];
  const { child: gate } = startForTest(t, [
    "gate",
    "--profile",
    "winxp-sp2",
    "--identity",
    "global",
    "--port",
    "0",
    "--admin-port",
    "0",
    "--json",
  ]);
  const info = JSON.parse(await firstLine(gate)) as { port: number; admin: { port: number } };
  const admin = info.admin.port;
  const count = async (port: number, state: AttemptRow["state"]) =>
    (await attempts(admin)).filter((a) => a.port === port && a.state === state).length;

  // The test process takes the machine's 10 slots (its attempts never connect).
  const holders: net.Socket[] = [];
  for (let i = 0; i < 10; i++) {
    const s = net.connect(info.port, "127.0.0.1");
    s.on("error", () => {});
    s.write(
      Buffer.from([
        5,
        1,
        0,
        5,
        1,
        0,
        1,
        127,
        0,
        0,
        1,
        holdersTarpit.port >> 8,
        holdersTarpit.port & 255,
      ]),
    );
    holders.push(s);
  }
  t.after(() => {
    for (const s of holders) s.destroy();
  });
  await until(
    "10 attempts pending",
    async () => (await count(holdersTarpit.port, "pending")) === 10,
  );
  // Process A queues 4 attempts, then process B queues 4.
  clientProcess(t, info.port, aTarpit.port, 4);
  await until("A's 4 queued", async () => (await count(aTarpit.port, "queued")) === 4);
  clientProcess(t, info.port, bTarpit.port, 4);
  await until("B's 4 queued", async () => (await count(bTarpit.port, "queued")) === 4);

  // Each holder that goes away frees one slot: whose attempt takes it?
  const served: string[] = [];
  for (let i = 0; i < 8; i++) {
    (holders[i] as net.Socket).destroy();
    let rows: AttemptRow[] = [];
    await until(`slot ${i + 1} taken`, async () => {
      rows = await attempts(admin);
      return (
        rows.filter((a) => a.state === "pending" && a.port !== holdersTarpit.port).length === i + 1
      );
    });
    const pendingA = rows.filter((a) => a.port === aTarpit.port && a.state === "pending").length;
    served.push(pendingA > served.filter((s) => s === "A").length ? "A" : "B");
  }
  // Round-robin between the two processes' buckets; one FIFO would give AAAABBBB.
  assert.deepEqual(served, ["A", "B", "A", "B", "A", "B", "A", "B"]);
  gate.kill("SIGTERM");
  await once(gate, "exit");
});

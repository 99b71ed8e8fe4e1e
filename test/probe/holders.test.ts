import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { test } from "node:test";
import { type Holder, listHolders } from "../../src/probe/holders.js";
import { Tarpit } from "../../src/targets/tarpit.js";

test("lists the processes with attempts in SYN_SENT, with their executable and destinations", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const mine = net.connect(tarpit.port, "127.0.0.1");
  mine.on("error", () => {});
  t.after(() => mine.destroy());
  // Another process holding two attempts, announced once both are issued.
  const child = spawn(
    process.execPath,
    [
      "-e",
      `const net = require("node:net");
       for (let i = 0; i < 2; i++) net.connect(${tarpit.port}, "127.0.0.1").on("error", () => {});
       setImmediate(() => console.log("sent"));
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  t.after(() => child.kill("SIGKILL"));
  await new Promise((resolve) => child.stdout.once("data", resolve));

  const report = await listHolders();
  assert.ok(report.supported);
  const byPid = (pid: number | undefined): Holder | undefined =>
    report.holders.find((h) => h.pid === pid);
  const other = byPid(child.pid);
  assert.ok(other, `the child is listed: ${JSON.stringify(report)}`);
  assert.equal(other.exe, process.execPath);
  assert.equal(other.comm, "node");
  assert.deepEqual(
    other.attempts.map((a) => a.remote),
    [
      { host: "127.0.0.1", port: tarpit.port },
      { host: "127.0.0.1", port: tarpit.port },
    ],
  );
  assert.deepEqual(
    byPid(process.pid)?.attempts.map((a) => a.remote.port),
    [tarpit.port],
  );
  // Most attempts first.
  assert.ok(report.holders.indexOf(other) < report.holders.indexOf(byPid(process.pid) as Holder));
});

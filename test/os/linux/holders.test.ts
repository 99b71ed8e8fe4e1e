import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net from "node:net";
import { test } from "node:test";
import { type Holder, listHolders } from "../../../src/os/linux/holders.js";
import { Tarpit } from "../../../src/targets/tarpit.js";

test("lists the processes with attempts in SYN_SENT, with their executable and destinations", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const mine = net.connect(tarpit.port, "127.0.0.1");
  mine.on("error", () => {});
  t.after(() => mine.destroy());
  // Another process holding two attempts; once both are issued it prints its
  // kernel name (Node 24 names its main thread "MainThread", older lines "node").
  const child = spawn(
    process.execPath,
    [
      "-e",
      `const net = require("node:net");
       for (let i = 0; i < 2; i++) net.connect(${tarpit.port}, "127.0.0.1").on("error", () => {});
       setImmediate(() => console.log(require("node:fs").readFileSync("/proc/self/comm", "utf8").trim()));
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  t.after(() => child.kill("SIGKILL"));
  const childComm = await new Promise<string>((resolve) =>
    child.stdout.setEncoding("utf8").once("data", (line: string) => resolve(line.trim())),
  );

  const report = await listHolders();
  assert.ok(report.supported);
  const byPid = (pid: number | undefined): Holder | undefined =>
    report.holders.find((h) => h.pid === pid);
  const other = byPid(child.pid);
  assert.ok(other, `the child is listed: ${JSON.stringify(report)}`);
  assert.equal(other.exe, process.execPath);
  assert.ok(childComm.length > 0);
  assert.equal(other.comm, childComm);
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

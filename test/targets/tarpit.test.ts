import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import { readTcpTable, socketInode, synSentOf } from "../../src/os/linux/tcp-table.js";
import { Tarpit } from "../../src/targets/tarpit.js";

test("a connect to the tarpit stays in SYN_SENT, as the kernel's TCP table shows", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  assert.equal(tarpit.verified, true);
  assert.equal(tarpit.host, "127.0.0.1");
  const socket = net.connect(tarpit.port, "127.0.0.1");
  socket.on("error", () => {});
  t.after(() => socket.destroy());
  let connected = false;
  socket.once("connect", () => {
    connected = true;
  });
  const inode = await socketInode(socket);
  assert.ok(inode !== null);
  const row = (await readTcpTable()).find((e) => e.inode === inode);
  assert.equal(row?.state, "SYN_SENT");
  assert.equal(row?.remote.port, tarpit.port);
  const mine = await synSentOf();
  assert.ok(
    mine.some((e) => e.inode === inode),
    "synSentOf() lists this process's pending attempt",
  );
  assert.equal(connected, false);
});

test("destroying the pending socket ends the SYN_SENT; close() leaves nothing behind", async () => {
  const tarpit = await Tarpit.listen();
  const socket = net.connect(tarpit.port, "127.0.0.1");
  socket.on("error", () => {});
  const inode = await socketInode(socket);
  socket.destroy();
  await once(socket, "close");
  assert.equal(
    (await readTcpTable()).some((e) => e.inode === inode),
    false,
  );
  await tarpit.close();
  await tarpit.close(); // idempotent
  const left = (await readTcpTable()).filter(
    (e) => e.local.port === tarpit.port || e.remote.port === tarpit.port,
  );
  assert.deepEqual(
    left.filter((e) => e.state !== "TIME_WAIT"),
    [],
    "no listener, filler or probe socket survives close()",
  );
  assert.deepEqual(await synSentOf(), []);
});

test("many attempts can be pending on one tarpit at once", async (t) => {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const sockets = Array.from({ length: 20 }, () => {
    const s = net.connect(tarpit.port, "127.0.0.1");
    s.on("error", () => {});
    t.after(() => s.destroy());
    return s;
  });
  const inodes = new Set(await Promise.all(sockets.map((s) => socketInode(s))));
  const pending = (await synSentOf()).filter((e) => inodes.has(e.inode));
  assert.equal(pending.length, 20);
});

test("bad options are rejected with the option's name", async () => {
  await assert.rejects(
    Tarpit.listen({ host: "localhost" }),
    /option host must be an IP address, got "localhost"/,
  );
  await assert.rejects(
    Tarpit.listen({ port: 70000 }),
    /option port must be an integer from 0 to 65535/,
  );
});

test("a port already in use is a clear error, not a crash", async (t) => {
  const first = await Tarpit.listen();
  t.after(() => first.close());
  await assert.rejects(Tarpit.listen({ port: first.port }), (e: Error & { code?: string }) => {
    return (
      e.code === "SYNLIMIT_ADDRESS_IN_USE" &&
      /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/.test(e.message)
    );
  });
});

test("a tarpit starts from `node --input-type=module -e`, with per-process flags too", async () => {
  const { spawnSync } = await import("node:child_process");
  const url = new URL("../../src/targets/tarpit.js", import.meta.url).href;
  const script = `import { Tarpit } from ${JSON.stringify(url)}; const t = await Tarpit.listen(); console.log(t.port > 0); await t.close();`;
  // --input-type makes an eval'd worker source ESM; --expose-gc and
  // --max-old-space-size are refused in a worker's explicit execArgv.
  for (const flags of [[], ["--expose-gc", "--max-old-space-size=256"]]) {
    const r = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(r.stderr, "", flags.join(" "));
    assert.equal(r.stdout.trim(), "true");
    assert.equal(r.status, 0);
  }
});

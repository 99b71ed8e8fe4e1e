import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { realpathSync } from "node:fs";
import net from "node:net";
import { test } from "node:test";
import { sockDiagAvailable } from "../../src/os/linux/sock-diag.js";
import { ProcessResolver } from "../../src/proxy/identity.js";
import { endpointsOf, loopbackPair } from "../helpers/loopback-pair.js";

const linux = process.platform === "linux";

for (const sockDiag of [true, false]) {
  const how = sockDiag ? "sock_diag" : "/proc/net/tcp";
  test(`process identity by ${how}: a client program's connections resolve to its pid and executable`, {
    skip: (!linux && "Linux only") || (sockDiag && !sockDiagAvailable() && "native part not built"),
  }, async (t) => {
    const server = net.createServer().listen(0, "127.0.0.1");
    t.after(() => server.close());
    await once(server, "listening");
    const { port } = server.address() as net.AddressInfo;
    const accepted: net.Socket[] = [];
    server.on("connection", (s) => accepted.push(s));
    t.after(() => {
      for (const s of accepted) s.destroy();
    });
    // Three connections from one child, kept open until stdin closes.
    const child = spawn(
      process.execPath,
      [
        "-e",
        `const net = require("node:net"); for (let i = 0; i < 3; i++) net.connect(${port}, "127.0.0.1"); process.stdin.resume(); process.stdin.on("end", () => process.exit(0));`,
      ],
      { stdio: ["pipe", "ignore", "inherit"] },
    );
    t.after(() => child.kill());
    while (accepted.length < 3) await once(server, "connection");

    const resolver = new ProcessResolver({ sockDiag });
    // One batch (same turn), then a second one served from the recent pids.
    const first = await Promise.all(accepted.map((s) => resolver.lookup(endpointsOf(s))));
    const again = await resolver.lookup(endpointsOf(accepted[0] as net.Socket));
    for (const info of [...first, again]) {
      assert.deepEqual(info, { pid: child.pid, exe: realpathSync(process.execPath) });
    }
    // A client that is gone by the time it is looked up: no guess.
    const gone = await resolver.lookup({
      remoteAddress: "127.0.0.1",
      remotePort: 1,
      localAddress: "127.0.0.1",
      localPort: port,
    });
    assert.equal(gone, null);
    child.stdin?.end();
    await once(child, "exit");
  });
}

for (const fault of ["answers no such socket", "refuses the query"] as const) {
  test(`process identity: a kernel whose sock_diag ${fault} falls back to /proc/net/tcp`, {
    skip: !linux && "Linux only",
  }, async (t) => {
    const { accepted } = await loopbackPair(t);
    // A kernel without tcp_diag answers ENOENT for every socket; a sandbox
    // refuses the netlink socket outright.
    const resolver = new ProcessResolver({
      sockDiag: true,
      socketInode: () => {
        if (fault === "refuses the query") throw new Error("EPERM");
        return null;
      },
    });
    assert.equal(resolver.method, "sock_diag");
    const info = await resolver.lookup(endpointsOf(accepted));
    assert.deepEqual(info, { pid: process.pid, exe: realpathSync(process.execPath) });
    assert.equal(resolver.method, "proc");
  });
}

test("process identity: once sock_diag has found a socket, a miss is a client gone, not a broken kernel", {
  skip: (!linux && "Linux only") || (!sockDiagAvailable() && "native part not built"),
}, async (t) => {
  const { accepted, port } = await loopbackPair(t);
  const resolver = new ProcessResolver();
  const found = await resolver.lookup(endpointsOf(accepted));
  assert.equal(found?.pid, process.pid);
  const gone = await resolver.lookup({
    remoteAddress: "127.0.0.1",
    remotePort: 1,
    localAddress: "127.0.0.1",
    localPort: port,
  });
  assert.equal(gone, null);
  assert.equal(resolver.method, "sock_diag");
});

test("process identity: a socket on the number of a file the client closed is still found (settled fds are a first guess, not a rule)", {
  skip: !linux && "Linux only",
}, async (t) => {
  const { openSync, closeSync } = await import("node:fs");
  const resolver = new ProcessResolver();
  const server = net.createServer().listen(0, "127.0.0.1");
  t.after(() => server.close());
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  const connectOne = async () => {
    const accepted = once(server, "connection");
    const client = net.connect(port, "127.0.0.1");
    client.on("error", () => {});
    t.after(() => client.destroy());
    await once(client, "connect");
    const [socket] = (await accepted) as [net.Socket];
    t.after(() => socket.destroy());
    return socket;
  };
  // This process is the client: a scan sees the open file and notes its fd
  // as not a socket…
  const file = openSync("/dev/null", "r");
  assert.equal((await resolver.lookup(endpointsOf(await connectOne())))?.pid, process.pid);
  // …then the file closes, and the next socket made takes its number (the lowest free).
  closeSync(file);
  assert.equal((await resolver.lookup(endpointsOf(await connectOne())))?.pid, process.pid);
});

import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { type TestContext, test } from "node:test";
import tls from "node:tls";
import { Client as LdapClient } from "ldapts";
import pg from "pg";
import { Agent, request as undiciRequest } from "undici";
import { install, uninstall } from "../../src/emulate/install.js";
import { Tarpit } from "../../src/targets/tarpit.js";
import { EventRecorder } from "../helpers/events.js";
import { get } from "../helpers/http.js";
import {
  HttpFixture,
  HttpsFixture,
  LdapBindFixture,
  PgStartupFixture,
  TlsFixture,
  testCert,
} from "../helpers/servers.js";

interface Server {
  port: number;
  accepted: number;
  listen(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Under a limit of 1 with a tarpit attempt pending, the client's connect must
 * wait in the gate (the server sees nothing), then go through the moment the
 * pending attempt ends, and the client's own protocol must then complete.
 */
async function assertGated(
  t: TestContext,
  server: Server,
  client: (port: number) => Promise<unknown>,
) {
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  await server.listen();
  t.after(() => server.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  install({ maxInFlight: 1, timing: "none" });
  t.after(uninstall);

  const blocker = net.connect(tarpit.port, "127.0.0.1");
  blocker.on("error", () => {});
  t.after(() => blocker.destroy());
  await recorder.next("start", (e) => e.port === tarpit.port);

  const done = client(server.port);
  await recorder.next("queued", (e) => e.port === server.port);
  assert.equal(server.accepted, 0, "the server saw no connection while the attempt waited");

  blocker.destroy();
  await done;
  assert.ok(server.accepted >= 1);
  const seq = recorder.sequence();
  const order = [
    `cancelled:${tarpit.port}`,
    `start:${server.port}`,
    `connected:${server.port}`,
  ].map((step) => seq.indexOf(step));
  assert.ok(
    order.every((i, k) => i >= 0 && (k === 0 || i > (order[k - 1] as number))),
    `expected the pending attempt to end, then the client's SYN, then its connect: ${seq.join(", ")}`,
  );
}

test("node:net connects are gated", async (t) => {
  await assertGated(t, new HttpFixture(), (port) => {
    return new Promise<void>((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve();
      });
      s.on("error", reject);
    });
  });
});

test("node:tls connects are gated", async (t) => {
  await assertGated(t, new TlsFixture(), (port) => {
    return new Promise<void>((resolve, reject) => {
      const s = tls.connect({
        port,
        host: "127.0.0.1",
        ca: testCert.cert,
        servername: "localhost",
      });
      let text = "";
      s.setEncoding("utf8").on("data", (d: string) => {
        text += d;
      });
      s.on("end", () => {
        assert.equal(text, "hello");
        resolve();
      });
      s.on("error", reject);
    });
  });
});

test("node:http requests are gated", async (t) => {
  await assertGated(t, new HttpFixture(), async (port) => {
    assert.equal((await get(http, { host: "127.0.0.1", port, agent: false })).body, "ok");
  });
});

test("node:https requests are gated", async (t) => {
  await assertGated(t, new HttpsFixture(), async (port) => {
    const { body } = await get(https, {
      host: "127.0.0.1",
      port,
      agent: false,
      ca: testCert.cert,
      servername: "localhost",
    });
    assert.equal(body, "ok");
  });
});

test("undici requests are gated", async (t) => {
  const agent = new Agent();
  t.after(() => agent.destroy());
  await assertGated(t, new HttpFixture(), async (port) => {
    const res = await undiciRequest(`http://127.0.0.1:${port}/`, { dispatcher: agent });
    assert.equal(await res.body.text(), "ok");
  });
});

test("fetch (Node's bundled undici) is gated", async (t) => {
  await assertGated(t, new HttpFixture(), async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } });
    assert.equal(await res.text(), "ok");
  });
});

test("pg connects are gated", async (t) => {
  const server = new PgStartupFixture();
  await assertGated(t, server, async (port) => {
    const client = new pg.Client({ host: "127.0.0.1", port, user: "login", database: "app" });
    await client.connect();
    await client.end();
  });
  assert.equal(server.startups, 1, "pg completed its startup handshake after the wait");
});

test("ldapts binds are gated", async (t) => {
  const server = new LdapBindFixture();
  await assertGated(t, server, async (port) => {
    const client = new LdapClient({ url: `ldap://127.0.0.1:${port}` });
    await client.bind("cn=login,dc=example", "secret");
    await client.unbind();
  });
  assert.equal(server.binds, 1, "the directory bind went through after the wait");
});

test("each address Happy Eyeballs tries is its own attempt", async (t) => {
  const server = new HttpFixture();
  await server.listen();
  t.after(() => server.close());
  const recorder = new EventRecorder();
  t.after(() => recorder.stop());
  install({ maxInFlight: 1, timing: "none" });
  t.after(uninstall);
  // ::1 first: nothing listens there on this port, so that attempt fails
  // and Node moves on to 127.0.0.1.
  const socket = net.connect({
    host: "dual.invalid",
    port: server.port,
    autoSelectFamily: true,
    lookup: (_host, _options, cb) =>
      (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        { address: "::1", family: 6 },
        { address: "127.0.0.1", family: 4 },
      ]),
  });
  t.after(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const starts = recorder.of("start").map((e) => e.host);
  assert.deepEqual(starts, ["::1", "127.0.0.1"]);
  assert.equal(recorder.of("failed")[0]?.host, "::1");
  assert.equal(recorder.of("connected")[0]?.host, "127.0.0.1");
});

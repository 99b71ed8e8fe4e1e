import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { inspect } from "node:util";
import {
  Client,
  InappropriateAuthError,
  InvalidCredentialsError,
  UnwillingToPerformError,
} from "ldapts";
import pg from "pg";
import { SynlimitError } from "../../src/errors.js";
import {
  EmbeddedLdap,
  type EmbeddedLdapOptions,
  EmbeddedPostgres,
  startPostgresServer,
  startSlapd,
} from "../../src/lab/services/index.js";
import { requireFile } from "../../src/lab/services/process.js";

const LOGIN = "cn=login,dc=synlimit,dc=test";

async function embeddedLdap(t: TestContext, options?: EmbeddedLdapOptions) {
  const ldap = await EmbeddedLdap.listen(options);
  t.after(() => ldap.close());
  return ldap;
}

function ldapClient(t: TestContext, url: string): Client {
  const client = new Client({ url, timeout: 5000, connectTimeout: 5000 });
  t.after(() => client.unbind().catch(() => {}));
  return client;
}

async function bindOnce(url: string, dn: string, password: string): Promise<void> {
  const client = new Client({ url, timeout: 5000, connectTimeout: 5000 });
  try {
    await client.bind(dn, password);
  } finally {
    await client.unbind().catch(() => {});
  }
}

function pool(t: TestContext, connectionString: string): pg.Pool {
  const p = new pg.Pool({ connectionString, max: 4, connectionTimeoutMillis: 5000 });
  p.on("error", () => {}); // an idle client's socket closing with the server
  t.after(() => p.end().catch(() => {}));
  return p;
}

/** Resolves once the server has closed this raw connection. */
async function rawConnection(t: TestContext, port: number) {
  const socket = net.connect(port, "127.0.0.1");
  t.after(() => socket.destroy());
  socket.on("error", () => {});
  await once(socket, "connect");
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  const closed = once(socket, "close");
  return { socket, received, closed };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** A BindRequest for message 1, as ldapts would send it. */
function bindRequest(dn: string, password: string): Buffer {
  const str = (tag: number, s: string) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([tag, b.length]), b]);
  };
  const body = Buffer.concat([Buffer.from([0x02, 0x01, 0x03]), str(0x04, dn), str(0x80, password)]);
  const op = Buffer.concat([Buffer.from([0x60, body.length]), body]);
  const msg = Buffer.concat([Buffer.from([0x02, 0x01, 0x01]), op]);
  return Buffer.concat([Buffer.from([0x30, msg.length]), msg]);
}

test("EmbeddedLdap: a good bind succeeds and is counted", async (t) => {
  const ldap = await embeddedLdap(t);
  assert.match(ldap.url, /^ldap:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(ldap.bindDN, LOGIN);
  await ldapClient(t, ldap.url).bind(ldap.bindDN, ldap.password);
  assert.equal(ldap.binds, 1);
  assert.equal(ldap.failedBinds, 0);
});

test("EmbeddedLdap: credentials are not enumerable", async (t) => {
  const ldap = await embeddedLdap(t, { users: { [LOGIN]: "s3cret-pw" } });
  assert.equal(ldap.password, "s3cret-pw");
  assert.doesNotMatch(JSON.stringify(ldap), /s3cret-pw/);
  assert.doesNotMatch(inspect(ldap, { showHidden: true, depth: 5 }), /s3cret-pw/);
  assert.equal(Object.keys(ldap).includes("password"), false);
});

test("EmbeddedLdap: a wrong password or unknown DN is invalidCredentials (49)", async (t) => {
  const ldap = await embeddedLdap(t, { users: { [LOGIN]: "secret", "cn=other,dc=x": "pw2" } });
  const client = ldapClient(t, ldap.url);
  await assert.rejects(client.bind(LOGIN, "wrong"), InvalidCredentialsError);
  await assert.rejects(client.bind("cn=nobody,dc=x", "secret"), InvalidCredentialsError);
  await assert.rejects(client.bind(LOGIN, "pw2"), InvalidCredentialsError);
  // DN matching ignores case and spaces around separators, as LDAP does.
  await client.bind("CN=Login, DC=synlimit, DC=test", "secret");
  await client.bind("cn=other,dc=x", "pw2");
  assert.equal(ldap.binds, 2);
  assert.equal(ldap.failedBinds, 3);
});

test("EmbeddedLdap: anonymous and unauthenticated binds are not logins", async (t) => {
  const ldap = await embeddedLdap(t);
  const client = ldapClient(t, ldap.url);
  await assert.rejects(client.bind("", ""), InappropriateAuthError);
  await assert.rejects(client.bind(LOGIN, ""), UnwillingToPerformError);
});

test("EmbeddedLdap: other operations get an error response, not a hang", async (t) => {
  const ldap = await embeddedLdap(t);
  const client = ldapClient(t, ldap.url);
  await client.bind(ldap.bindDN, ldap.password);
  await assert.rejects(client.search("dc=synlimit,dc=test"), UnwillingToPerformError);
  await assert.rejects(client.compare(LOGIN, "cn", "login"), UnwillingToPerformError);
  await client.bind(ldap.bindDN, ldap.password); // the connection is still usable
});

test("EmbeddedLdap: 50 concurrent binds, each on its own connection", async (t) => {
  const ldap = await embeddedLdap(t);
  await Promise.all(
    Array.from({ length: 50 }, () => bindOnce(ldap.url, ldap.bindDN, ldap.password)),
  );
  assert.equal(ldap.binds, 50);
});

test("EmbeddedLdap: garbage closes that connection; the server keeps serving", async (t) => {
  const ldap = await embeddedLdap(t);
  const garbage = [
    Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), // 4 GiB declared length
    Buffer.from([0x30, 0x80, 0x00, 0x00]), // indefinite length
    Buffer.from([0x30, 0x03, 0x04, 0x01, 0x00]), // no messageID
    Buffer.from([0x30, 0x05, 0x02, 0x01, 0x01, 0x7f, 0x00]), // unknown operation
    Buffer.from([0x30, 0x06, 0x02, 0x01, 0x01, 0x60, 0x10, 0x02]), // operation overruns the message
  ];
  for (const bytes of garbage) {
    const raw = await rawConnection(t, ldap.port);
    raw.socket.write(bytes);
    await raw.closed;
  }
  assert.equal(ldap.protocolErrors, garbage.length);
  // A well-framed bind with a malformed body is answered with protocolError (2).
  const raw = await rawConnection(t, ldap.port);
  raw.socket.write(Buffer.from([0x30, 0x07, 0x02, 0x01, 0x01, 0x60, 0x02, 0x02, 0x05]));
  const [reply] = (await once(raw.socket, "data")) as [Buffer];
  assert.equal(reply[9], 2);
  raw.socket.destroy();
  await bindOnce(ldap.url, ldap.bindDN, ldap.password);
  assert.equal(ldap.binds, 1);
});

test("EmbeddedLdap: a bind request arriving one byte at a time", async (t) => {
  const ldap = await embeddedLdap(t, { users: { [LOGIN]: "secret" } });
  const raw = await rawConnection(t, ldap.port);
  raw.socket.setNoDelay(true);
  const request = Buffer.concat([bindRequest(LOGIN, "secret"), bindRequest(LOGIN, "nope")]);
  for (const byte of request) {
    raw.socket.write(Buffer.from([byte]));
    await new Promise((resolve) => setImmediate(resolve));
  }
  const deadline = Date.now() + 5000;
  while (Buffer.concat(raw.received).length < 28 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const reply = Buffer.concat(raw.received);
  // Two BindResponses for message 1: success (0), then invalidCredentials (49).
  const success = Buffer.from([0x30, 0x0c, 0x02, 0x01, 0x01, 0x61, 0x07, 0x0a, 0x01, 0x00]);
  assert.deepEqual(reply.subarray(0, 10), success);
  assert.equal(reply[14 + 9], 49);
  assert.equal(ldap.binds, 1);
  assert.equal(ldap.failedBinds, 1);
  raw.socket.write(Buffer.from([0x30, 0x05, 0x02, 0x01, 0x02, 0x42, 0x00])); // unbind
  await raw.closed;
});

test("EmbeddedLdap: options are checked", async () => {
  await assert.rejects(EmbeddedLdap.listen({ host: "0.0.0.0" }), SynlimitError);
  await assert.rejects(EmbeddedLdap.listen({ port: 70000 }), SynlimitError);
  await assert.rejects(EmbeddedLdap.listen({ users: {} }), SynlimitError);
  await assert.rejects(
    EmbeddedLdap.listen({ users: { [LOGIN]: 42 as unknown as string } }),
    /SYNLIMIT|users/,
  );
});

test("EmbeddedPostgres: a pool of 4 runs 20 concurrent queries; close leaves no listener", async (t) => {
  const db = await EmbeddedPostgres.listen();
  t.after(() => db.close());
  t.diagnostic(`EmbeddedPostgres startup ${Math.round(db.startupMs)} ms`);
  assert.match(db.url, /^postgres:\/\/.*@127\.0\.0\.1:\d+\/postgres$/);
  const p = pool(t, db.url);
  const ones = await Promise.all(Array.from({ length: 20 }, () => p.query("SELECT 1 AS one")));
  assert.ok(ones.every((r) => r.rows[0]?.one === 1));
  assert.equal(p.totalCount, 4);
  // Distinct statements with parameters, interleaved across the pooled connections.
  const sums = await Promise.all(
    Array.from({ length: 20 }, (_, i) => p.query(`SELECT $1::int + ${i} AS n`, [i])),
  );
  assert.deepEqual(
    sums.map((r) => r.rows[0]?.n),
    Array.from({ length: 20 }, (_, i) => 2 * i),
  );
  await assert.rejects(p.query("SELECT no_such_column"), /does not exist/);
  assert.equal((await p.query("SELECT 2 AS two")).rows[0]?.two, 2);
  await p.end();
  await db.close();
  assert.equal(await refused(db.port), true);
});

test("EmbeddedPostgres: protocol garbage closes that connection; the database keeps serving", async (t) => {
  const db = await EmbeddedPostgres.listen({ maxConnections: 4 });
  t.after(() => db.close());
  const startup = () => {
    const params = Buffer.from("user\0postgres\0database\0postgres\0\0");
    const header = Buffer.alloc(8);
    header.writeInt32BE(8 + params.length);
    header.writeInt32BE(196608, 4);
    return Buffer.concat([header, params]);
  };
  const garbage: Array<Buffer[]> = [
    [Buffer.from("GET / HTTP/1.1\r\n\r\n")],
    [Buffer.from([0, 0, 0, 8, 0, 3, 0, 0])], // startup packet with no parameters
    [startup(), Buffer.from("z\0\0\0\x04")], // unknown message type (PGlite would spin)
    [startup(), Buffer.from("Q\0\0\0\x02")], // length shorter than itself
  ];
  for (const writes of garbage) {
    const raw = await rawConnection(t, db.port);
    for (const bytes of writes) raw.socket.write(bytes);
    await raw.closed;
    const reply = Buffer.concat(raw.received).toString("latin1");
    assert.match(reply, /C08P01/); // protocol_violation, as PostgreSQL answers
  }
  assert.equal(db.protocolErrors, garbage.length);
  const p = pool(t, db.url);
  const ones = await Promise.all(Array.from({ length: 8 }, () => p.query("SELECT 1 AS one")));
  assert.ok(ones.every((r) => r.rows[0]?.one === 1));
  // A fifth client beyond maxConnections gets PostgreSQL's own refusal.
  const extra = new pg.Client({ connectionString: db.url });
  extra.on("error", () => {});
  t.after(() => extra.end().catch(() => {}));
  await assert.rejects(extra.connect(), /too many clients/);
});

test("a missing server binary is a one-line usage error naming the Debian package", async () => {
  await assert.rejects(requireFile("/nonexistent/sbin/slapd", "slapd"), {
    code: "SYNLIMIT_USAGE",
    message: "/nonexistent/sbin/slapd not found: install the Debian package slapd",
  });
});

test("startSlapd: a real slapd, bound with ldapts, stopped", { timeout: 15_000 }, async (t) => {
  const started = performance.now();
  const slapd = await startSlapd();
  t.after(() => slapd.close());
  t.diagnostic(`slapd startup ${Math.round(performance.now() - started)} ms`);
  assert.match(slapd.url, /^ldap:\/\/127\.0\.0\.1:\d+$/);
  assert.doesNotMatch(JSON.stringify(slapd), new RegExp(slapd.password));
  await Promise.all(
    Array.from({ length: 10 }, () => bindOnce(slapd.url, slapd.bindDN, slapd.password)),
  );
  await assert.rejects(bindOnce(slapd.url, slapd.bindDN, "wrong"), InvalidCredentialsError);
  const port = Number(new URL(slapd.url).port);
  await slapd.close();
  assert.equal(processGone(slapd.pid), true);
  assert.equal(await refused(port), true);
});

test("startPostgresServer: a real PostgreSQL, pooled, stopped", { timeout: 15_000 }, async (t) => {
  const started = performance.now();
  const server = await startPostgresServer();
  t.after(() => server.close());
  t.diagnostic(`PostgreSQL startup ${Math.round(performance.now() - started)} ms`);
  const p = pool(t, server.url);
  const ones = await Promise.all(Array.from({ length: 20 }, () => p.query("SELECT 1 AS one")));
  assert.ok(ones.every((r) => r.rows[0]?.one === 1));
  assert.equal(p.totalCount, 4);
  await p.end();
  const port = Number(new URL(server.url).port);
  await server.close();
  assert.equal(processGone(server.pid), true);
  assert.equal(await refused(port), true);
});

import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import { EmbeddedLdap } from "../../src/lab/services/index.js";
import { runCli } from "../helpers/run-cli.js";

/** The lab's CLI names a broken service with ✘ and exits 1 before running any scenario. */

/** A loopback port with nothing listening: connects are refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("a wrong LDAP password: the CLI names the refused bind with ✘ and exits 1", async (t) => {
  const ldap = await EmbeddedLdap.listen();
  t.after(() => ldap.close());
  const r = await runCli(
    ["lab", "--scenario", "baseline", "--ldap", ldap.url, "--ldap-bind-dn", ldap.bindDN],
    { env: { LDAP_PASSWORD: `${ldap.password}-wrong` } },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stdout,
    /^✘ directory ldap:\/\/127\.0\.0\.1:\d+\/?: bind as cn=login,dc=synlimit,dc=test failed: InvalidCredentialsError/m,
  );
  assert.doesNotMatch(r.stdout, /✔/);
  assert.doesNotMatch(r.stdout + r.stderr, new RegExp(ldap.password), "no password printed");
  assert.equal(ldap.binds, 0);
});

test("an unreachable directory: ✘ naming it, exit 1", async () => {
  const port = await closedPort();
  const r = await runCli(["lab", "--ldap", `ldap://127.0.0.1:${port}`, "--ldap-bind-dn", "cn=x"], {
    env: { LDAP_PASSWORD: "x" },
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stdout,
    new RegExp(`^✘ directory ldap://127\\.0\\.0\\.1:${port}/?: .*ECONNREFUSED`, "m"),
  );
});

test("an unreachable database: ✘ naming it, exit 1, no password printed", async () => {
  const port = await closedPort();
  const r = await runCli(["lab", "--postgres", `postgres://app:s3cret@127.0.0.1:${port}/app`]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stdout,
    new RegExp(
      `^✘ database postgres://app:\\*\\*\\*@127\\.0\\.0\\.1:${port}/app: .*ECONNREFUSED`,
      "m",
    ),
  );
  assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
});

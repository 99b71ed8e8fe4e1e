import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { type TestContext, test } from "node:test";
import { type LabOptions, type LabServices, runLab } from "../../src/lab/run.js";
import { EmbeddedLdap, EmbeddedPostgres } from "../../src/lab/services/index.js";
import { findings } from "../../src/lab/table.js";
import { runCli } from "../helpers/run-cli.js";

/**
 * Every check of the lab seen failing on a broken run: a wrong password, a
 * directory or database that does not answer, a fix that is not applied, a
 * model that does not match. Short windows: each run is a few seconds.
 */

async function services(t: TestContext): Promise<{ ldap: EmbeddedLdap; services: LabServices }> {
  const ldap = await EmbeddedLdap.listen();
  t.after(() => ldap.close());
  const postgres = await EmbeddedPostgres.listen();
  t.after(() => postgres.close());
  return {
    ldap,
    services: {
      ldap: { url: ldap.url, bindDN: ldap.bindDN, password: ldap.password },
      postgresUrl: postgres.url,
    },
  };
}

/** A loopback port with nothing listening: connects are refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const short: Partial<LabOptions> = { fieldWindowMs: 63_000 };

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

test("failed logins exceed baseline's error budget: ✘ with the count and the reason", async (t) => {
  const { services: good } = await services(t);
  const wrong = { ...good, ldap: { ...good.ldap, password: "wrong" } };
  const result = await runLab({ ...short, services: wrong, scenarios: ["baseline"] });
  const login = result.scenarios[0]?.operations.login;
  assert.ok(login && login.count > 0 && login.errors === login.count, "every login failed");
  assert.equal(login.ok, 0);
  const failing = findings(result).filter((l) => l.startsWith("✘"));
  assert.ok(
    failing.some((l) =>
      new RegExp(
        `^✘ baseline: ${login.count} of ${login.count} logins failed \\(100 %, budget 0 %\\): InvalidCredentialsError`,
      ).test(l),
    ),
    failing.join("\n"),
  );
});

test("an unguarded agent in `fixed`: ✘ with its TCP attempts", async (t) => {
  const { services: good } = await services(t);
  const result = await runLab({
    ...short,
    services: good,
    scenarios: ["fixed"],
    overrides: { fixed: { agent: "naive" } },
  });
  const fixed = result.scenarios[0];
  assert.ok(fixed && fixed.attempts.agent > 0);
  const line = findings(result).find((l) => l.includes("fixed: the naive agent"));
  assert.match(line ?? "", /^✘ fixed: the naive agent made \d+ TCP attempts \(allowed 0\)/);
});

test("the incident's logins against the queue model: too long and too short both fail", async (t) => {
  const { services: good } = await services(t);
  // Two reconnect loops: every login waits one to two attempts.
  const two = await runLab({
    services: good,
    scenarios: ["incident"],
    agent: { channels: 2 },
  });
  const holds = (r: typeof two) =>
    findings(r)
      .find((l) => l.includes("incident: logins wait"))
      ?.startsWith("✔");
  assert.equal(holds(two), true, findings(two).join("\n"));
  // Read against a one-loop model, the waits are too long...
  assert.equal(holds({ ...two, agentModel: { channels: 1, retryPauseMs: 0 } }), false);
  // ...and a one-loop run read against the two-loop model is too short.
  const one = await runLab({ services: good, scenarios: ["incident"] });
  assert.equal(holds(one), true, findings(one).join("\n"));
  assert.equal(holds({ ...one, agentModel: { channels: 2, retryPauseMs: 0 } }), false);
});

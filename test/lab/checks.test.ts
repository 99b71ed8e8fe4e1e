import assert from "node:assert/strict";
import { after, type TestContext, test } from "node:test";
import { type LabOptions, type LabServices, runLab } from "../../src/lab/run.js";
import { EmbeddedLdap, EmbeddedPostgres } from "../../src/lab/services/index.js";
import { findings } from "../../src/lab/table.js";
import { testRun } from "./fixtures/facts.js";

/**
 * Every check of the lab seen failing on a broken run: a wrong password, a
 * directory or database that does not answer, a fix that is not applied, a
 * model that does not match. Short windows: each run is a few seconds.
 */

// One directory and database for every run of this file: PGlite takes seconds to start.
let shared: Promise<LabServices> | null = null;
const closers: Array<() => Promise<void>> = [];
async function services(_t: TestContext): Promise<{ services: LabServices }> {
  shared ??= (async () => {
    const ldap = await EmbeddedLdap.listen();
    closers.push(() => ldap.close());
    const postgres = await EmbeddedPostgres.listen();
    closers.push(() => postgres.close());
    return {
      ldap: { url: ldap.url, bindDN: ldap.bindDN, password: ldap.password },
      postgresUrl: postgres.url,
    };
  })();
  return { services: await shared };
}
after(async () => {
  for (const close of closers.reverse()) await close();
});

const short: Partial<LabOptions> = { ...testRun, fieldWindowMs: 63_000 };

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
    ...testRun,
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
  const one = await runLab({ ...testRun, services: good, scenarios: ["incident"] });
  assert.equal(holds(one), true, findings(one).join("\n"));
  assert.equal(holds({ ...one, agentModel: { channels: 2, retryPauseMs: 0 } }), false);
});

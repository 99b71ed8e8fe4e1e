import assert from "node:assert/strict";
import { test } from "node:test";
import { type LabServices, runLab } from "../../src/lab/run.js";
import { EmbeddedLdap, EmbeddedPostgres } from "../../src/lab/services/index.js";
import { assertIncidentFacts, testRun } from "./fixtures/facts.js";

// The scenarios in two files, so each stays well inside the 120 s test timeout.
const scenarios = ["baseline", "incident", "fixed"] as const;

test("the lab against its embedded services: baseline, the incident against its model, the fix", async (t) => {
  const ldap = await EmbeddedLdap.listen();
  t.after(() => ldap.close());
  const postgres = await EmbeddedPostgres.listen();
  t.after(() => postgres.close());
  const services: LabServices = {
    ldap: { url: ldap.url, bindDN: ldap.bindDN, password: ldap.password },
    postgresUrl: postgres.url,
  };
  const result = await runLab({ ...testRun, services, scenarios });
  assertIncidentFacts(result, scenarios);
  assert.ok(ldap.binds > 0, "logins really bound to the directory");
});

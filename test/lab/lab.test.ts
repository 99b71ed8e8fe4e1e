import assert from "node:assert/strict";
import { test } from "node:test";
import { type LabServices, runLab } from "../../src/lab/run.js";
import { EmbeddedLdap, EmbeddedPostgres } from "../../src/lab/services/index.js";
import { assertIncidentFacts } from "./fixtures/facts.js";

test("the lab against its embedded services reproduces the incident, its escalations and their fixes", async (t) => {
  const ldap = await EmbeddedLdap.listen();
  t.after(() => ldap.close());
  const postgres = await EmbeddedPostgres.listen();
  t.after(() => postgres.close());
  const services: LabServices = {
    ldap: { url: ldap.url, bindDN: ldap.bindDN, password: ldap.password },
    postgresUrl: postgres.url,
  };
  const result = await runLab({ services });
  assertIncidentFacts(result);
  assert.ok(ldap.binds > 0, "logins really bound to the directory");
});

import { test } from "node:test";
import { type LabServices, runLab } from "../../src/lab/run.js";
import { EmbeddedLdap, EmbeddedPostgres } from "../../src/lab/services/index.js";
import { assertIncidentFacts, testRun } from "./fixtures/facts.js";

// The scenarios in two files, so each stays well inside the 120 s test timeout.
const scenarios = [
  "baseline",
  "escalation",
  "escalation-fixed",
  "restart",
  "restart-fixed",
] as const;

test("the lab against its embedded services: the escalation, the restart, and both with guarded API pools", async (t) => {
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
});

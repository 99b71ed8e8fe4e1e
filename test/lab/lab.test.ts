import assert from "node:assert/strict";
import { test } from "node:test";
import { type LabServices, runLab } from "../../src/lab/run.js";
import {
  EmbeddedLdap,
  EmbeddedPostgres,
  startPostgresServer,
  startSlapd,
} from "../../src/lab/services/index.js";
import { findings } from "../../src/lab/table.js";
import type { LabResult, ScenarioName, ScenarioResult } from "../../src/lab/types.js";

/** The incident's qualitative facts, asserted from the measured data. */
function assertIncidentFacts(result: LabResult): void {
  const t = result.attemptTimeoutMs;
  const by = (name: ScenarioName) =>
    result.scenarios.find((s) => s.name === name) as ScenarioResult;
  const [baseline, incident, fixed, escalation, restart] = (
    ["baseline", "incident", "fixed", "escalation", "restart"] as const
  ).map(by) as [ScenarioResult, ScenarioResult, ScenarioResult, ScenarioResult, ScenarioResult];
  const windowAttempts = (s: ScenarioResult, role: string) =>
    s.timeline.filter((a) => a.role === role);

  // Every operation ran and was recorded; none was lost.
  for (const s of result.scenarios) {
    for (const op of ["login", "db", "api"] as const)
      assert.ok(s.operations[op].count > 0, `${s.name} ${op}`);
    assert.equal(
      s.samples.length,
      s.operations.login.count + s.operations.db.count + s.operations.api.count,
    );
  }
  // Baseline: nothing waits.
  assert.equal(baseline.attempts.queued, 0);
  assert.ok(baseline.operations.login.p50Ms < t / 4);
  // Incident: logins wait for the agent; pooled calls need no attempt.
  assert.ok(
    incident.operations.login.p50Ms >= 0.8 * t,
    `login p50 ${incident.operations.login.p50Ms} vs ${t}`,
  );
  assert.ok(
    windowAttempts(incident, "login").every(
      (a) => a.startedAtMs !== null && a.startedAtMs - a.queuedAtMs > 0,
    ),
  );
  assert.equal(windowAttempts(incident, "db").length + windowAttempts(incident, "api").length, 0);
  assert.ok(incident.operations.db.p99Ms < t && incident.operations.api.p99Ms < t);
  assert.equal(incident.operations.login.errors, 0);
  // Fixed: the guarded agent makes no TCP attempt; logins are back to baseline.
  assert.equal(fixed.attempts.agent, 0);
  assert.ok(
    fixed.operations.login.p99Ms < t / 2,
    `fixed login p99 ${fixed.operations.login.p99Ms}`,
  );
  // Escalation is worse than the incident; restart worse than escalation.
  assert.ok(escalation.operations.login.p50Ms > incident.operations.login.p50Ms);
  assert.ok(windowAttempts(escalation, "api-dead").length > 0);
  assert.equal(windowAttempts(escalation, "db").length, 0, "escalation: the DB pool stays warm");
  assert.ok(windowAttempts(restart, "db").length > 0, "restart: the DB pool reconnects");
  assert.ok(restart.operations.db.p99Ms > escalation.operations.db.p99Ms);
  assert.ok(
    restart.operations.db.p99Ms >= t / 2,
    "restart: DB reconnects queue behind the dead upstreams",
  );
  assert.deepEqual(
    findings(result).filter((l) => !l.startsWith("✔")),
    [],
  );
}

test("the lab against its embedded services reproduces the incident and its escalations", async (t) => {
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

test("the lab against a real OpenLDAP slapd and PostgreSQL", async (t) => {
  const [slapd, pg] = await Promise.all([startSlapd(), startPostgresServer()]);
  t.after(() => Promise.all([slapd.close(), pg.close()]));
  const result = await runLab({
    services: {
      ldap: { url: slapd.url, bindDN: slapd.bindDN, password: slapd.password },
      postgresUrl: pg.url,
    },
  });
  assertIncidentFacts(result);
  assert.doesNotMatch(
    JSON.stringify(result.services),
    new RegExp(slapd.password),
    "no credential in the results",
  );
});

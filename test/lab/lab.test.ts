import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { type LabServices, runLab } from "../../src/lab/run.js";
import {
  EmbeddedLdap,
  EmbeddedPostgres,
  type PostgresServerService,
  type SlapdService,
  startPeers,
  startPostgresServer,
  startSlapd,
} from "../../src/lab/services/index.js";
import { findings } from "../../src/lab/table.js";
import type { LabResult, ScenarioName, ScenarioResult } from "../../src/lab/types.js";

/** The incident's facts, asserted from the measured data, beside the lab's own checks. */
function assertIncidentFacts(result: LabResult): void {
  const by = (name: ScenarioName) =>
    result.scenarios.find((s) => s.name === name) as ScenarioResult;
  const windowAttempts = (s: ScenarioResult, role: string) =>
    s.timeline.filter((a) => a.role === role);

  assert.equal(result.scenarios.length, 7);
  for (const s of result.scenarios) {
    // Every operation ran and was recorded; none was lost.
    for (const op of ["login", "db", "api"] as const)
      assert.ok(s.operations[op].count > 0, `${s.name} ${op}`);
    assert.equal(
      s.samples.length,
      s.operations.login.count + s.operations.db.count + s.operations.api.count,
    );
    // No attempt ends before it asked for a slot, pending or not.
    for (const a of s.timeline) {
      assert.ok(a.endedAtMs >= a.queuedAtMs, `${s.name} attempt ${a.id} ends before it queued`);
      if (a.startedAtMs !== null) assert.ok(a.startedAtMs >= a.queuedAtMs - 0.01);
    }
  }
  const incident = by("incident");
  assert.ok(
    windowAttempts(incident, "login").every(
      (a) => a.startedAtMs !== null && a.startedAtMs - a.queuedAtMs >= 0,
    ),
  );
  assert.equal(windowAttempts(incident, "db").length + windowAttempts(incident, "api").length, 0);
  assert.equal(by("fixed").attempts.agent, 0);
  assert.ok(windowAttempts(by("escalation"), "api-dead").length > 0);
  assert.equal(windowAttempts(by("escalation"), "db").length, 0, "the DB pool stays warm");
  assert.ok(windowAttempts(by("restart"), "db").length > 0, "restart: the DB pool reconnects");
  assert.ok(windowAttempts(by("restart-fixed"), "db").length > 0, "restart-fixed too");
  assert.deepEqual(
    findings(result).filter((l) => !l.startsWith("✔")),
    [],
  );
}

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

test("the lab against a real OpenLDAP slapd and PostgreSQL", async (t) => {
  const [slapd, pg] = (await startPeers<SlapdService | PostgresServerService>(
    [startSlapd, startPostgresServer],
    // Registered as each starts: a later failure cannot orphan an earlier server.
    (service) => t.after(() => service.close()),
  )) as [SlapdService, PostgresServerService];
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

const ours = async () =>
  new Set((await readdir(tmpdir())).filter((d) => /^synlimit-(slapd|postgres)-/.test(d)));

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

test("a peer that fails to start stops the one already running and leaves no temp dir", async () => {
  const before = await ours();
  let postgres: PostgresServerService | undefined;
  await assert.rejects(
    startPeers<SlapdService | PostgresServerService>(
      [
        startPostgresServer,
        // A slapd that exits at once: its start fails after its temp dir exists.
        () => startSlapd({ binary: "/bin/false" }),
      ],
      (service) => {
        postgres = service as PostgresServerService;
      },
    ),
    /slapd/,
  );
  assert.ok(postgres, "PostgreSQL had started");
  assert.ok(gone(postgres.pid), `postmaster ${postgres.pid} still running`);
  const left = [...(await ours())].filter((d) => !before.has(d));
  assert.deepEqual(left, [], "temp dirs left behind");
});

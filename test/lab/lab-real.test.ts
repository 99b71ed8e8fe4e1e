import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { test } from "node:test";
import { runLab } from "../../src/lab/run.js";
import {
  type PostgresServerService,
  type SlapdService,
  startPeers,
  startPostgresServer,
  startSlapd,
} from "../../src/lab/services/index.js";
import { assertIncidentFacts, testRun } from "./fixtures/facts.js";

test("the lab against a real OpenLDAP slapd and PostgreSQL", async (t) => {
  const [slapd, pg] = (await startPeers<SlapdService | PostgresServerService>(
    [startSlapd, startPostgresServer],
    // Registered as each starts: a later failure cannot orphan an earlier server.
    (service) => t.after(() => service.close()),
  )) as [SlapdService, PostgresServerService];
  const scenarios = ["baseline", "incident", "fixed", "restart-fixed"] as const;
  const result = await runLab({
    ...testRun,
    scenarios,
    services: {
      ldap: { url: slapd.url, bindDN: slapd.bindDN, password: slapd.password },
      postgresUrl: pg.url,
    },
  });
  assertIncidentFacts(result, scenarios);
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

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../helpers/run-cli.js";

test("lab --scenario baseline,incident --report DIR --json: results, report, exit 0 when the facts hold", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "synlimit-lab-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await runCli([
    "lab",
    "--scenario",
    "baseline,incident",
    "--window",
    "63",
    "--time-scale",
    "0.05",
    "--report",
    dir,
    "--json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.deepEqual(
    result.scenarios.map((s: { name: string }) => s.name),
    ["baseline", "incident"],
  );
  const written = JSON.parse(await readFile(join(dir, "results.json"), "utf8"));
  assert.deepEqual(written, result);
  const html = await readFile(join(dir, "index.html"), "utf8");
  assert.match(html, /data-chart="timeline" data-scenario="incident"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
});

const usageErrors: Array<[string[], RegExp]> = [
  [
    ["lab", "--scenario", "outage"],
    /expected scenario names from baseline, incident, fixed, escalation, escalation-fixed, restart, restart-fixed/,
  ],
  [["lab", "--ldap", "http://127.0.0.1:1"], /expected a ldap: or ldaps:\/\/ URL/],
  [["lab", "--ldap", "ldap://127.0.0.1:1"], /^synlimit: --ldap needs --ldap-bind-dn$/],
  [
    [
      "lab",
      "--ldap",
      "ldap://127.0.0.1:1",
      "--ldap-bind-dn",
      "cn=x",
      "--ldap-password-env",
      "SYNLIMIT_TEST_UNSET",
    ],
    /needs the bind password in \$SYNLIMIT_TEST_UNSET/,
  ],
  [["lab", "--time-scale", "-1"], /expected a positive finite number/],
  [["lab", "--time-scale", "1e400"], /expected a positive finite number/],
  // Below the bound the app died with a stack frame for its reason, or the checks failed.
  [["lab", "--time-scale", "1e-4"], /'1e-4' is invalid\. expected at least 0\.005: /],
  [["lab", "--time-scale", "1e-6"], /expected at least 0\.005: /],
  [["lab", "--time-scale", "1e-9"], /expected at least 0\.005: /],
  [["lab", "--time-scale", "0.001"], /expected at least 0\.005: /],
  [["lab", "--time-scale", "1e3"], /'1e3' is invalid\. expected at most 1 \(real time/],
  [
    ["lab", "--time-scale", "0.05", "--real-time"],
    /^synlimit: --time-scale and --real-time are alternatives/,
  ],
  [["lab", "--real-time", "--time-scale", "1"], /--time-scale and --real-time are alternatives/],
  [["lab", "--window", "0"], /expected a positive finite number/],
  [["lab", "--agent-channels", "0"], /expected an integer from 1 to 8/],
  [["lab", "--agent-retry-pause", "-2"], /expected a non-negative number of seconds/],
];

for (const [args, message] of usageErrors) {
  test(`usage error ${args.join(" ")}: one line, exit 2`, async () => {
    const r = await runCli(args);
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? "", message);
  });
}

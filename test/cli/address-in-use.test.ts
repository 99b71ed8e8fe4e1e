import assert from "node:assert/strict";
import { test } from "node:test";
import { Tarpit } from "../../src/targets/tarpit.js";
import { runCli } from "../helpers/run-cli.js";

test("tarpit on a port in use: one line naming it with SYNLIMIT_ADDRESS_IN_USE, exit 2", async (t) => {
  const busy = await Tarpit.listen();
  t.after(() => busy.close());
  const r = await runCli(["tarpit", "--port", String(busy.port)]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    new RegExp(
      `^synlimit: tarpit cannot listen on 127\\.0\\.0\\.1:${busy.port}: .*EADDRINUSE.* \\(SYNLIMIT_ADDRESS_IN_USE\\)\\n$`,
    ),
  );
});

test("a typo stays a plain one-line usage error, without a code", async () => {
  const r = await runCli(["tarpit", "--port", "99999"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^synlimit: [^\n]*99999[^\n]*\n$/);
  assert.doesNotMatch(r.stderr, /SYNLIMIT_/);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProbeResult } from "../../src/probe/report.js";
import { GlobalSocksGate } from "../helpers/global-socks-gate.js";
import { runCli } from "../helpers/run-cli.js";

// One gate for every client of the proxy, whichever process: the probe and
// its helper process both go through it, so a limit there is machine-wide.
for (const policy of ["queue", "reject"] as const) {
  test(`through a proxy with one global limit (${policy}): k = 2, machine-wide`, async (t) => {
    const proxy = await new GlobalSocksGate({ maxInFlight: 2, policy, timing: "none" }).listen();
    t.after(() => proxy.close());
    const r = await runCli(["probe", "--via", proxy.url, "--json", "--quiet"]);
    const json = JSON.parse(r.stdout) as ProbeResult;
    const summary = `${json.verdict.text}\n${json.timeline.map((e) => e.text).join("\n")}\n${json.notes.join("\n")}`;
    assert.equal(r.code, 3, summary);
    assert.equal(json.limit?.maxInFlight, 2, summary);
    assert.equal(json.limit?.scope, "machine", summary);
    assert.equal(json.limit?.appliesTo, "all-destinations");
    assert.equal(json.limit?.behaviour, policy === "queue" ? "queued" : "refused", summary);
    if (policy === "reject") assert.equal(json.limit?.errorCode, "ECONNREFUSED");
    assert.deepEqual(json.targets.via, { protocol: "socks5", host: "127.0.0.1", port: proxy.port });
    assert.equal(
      json.targets.blackhole?.verified,
      true,
      "the proxy's upstream attempt seen in SYN_SENT",
    );
    await proxy.idle();
    const stats = proxy.gate.stats();
    assert.deepEqual(
      [stats.inFlight, stats.queued],
      [0, 0],
      "the probe left nothing pending at the proxy",
    );
  });
}

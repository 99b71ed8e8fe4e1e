import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import { readdir, readFile } from "node:fs/promises";
import { test } from "node:test";
import { install, uninstall } from "../../src/emulate/install.js";
import { SynlimitError } from "../../src/errors.js";
import { synSentOf } from "../../src/os/linux/tcp-table.js";
import { type ProbeStepEvent, probeChannelNames } from "../../src/probe/channels.js";
import { probe } from "../../src/probe/probe.js";
import type { ProbeResult } from "../../src/probe/report.js";
import { LiveListener } from "../../src/targets/live.js";
import { Tarpit } from "../../src/targets/tarpit.js";

const summary = (r: ProbeResult) =>
  `${r.verdict.text}\n${r.timeline.map((e) => e.text).join("\n")}\n${r.notes.join("\n")}`;

test("no limiter: 50 runs, not one false positive, and each leaves no attempt pending", async (t) => {
  // Most runs share one set of targets so each stays fast; the first ones
  // start their own, as the CLI does.
  const tarpit = await Tarpit.listen();
  t.after(() => tarpit.close());
  const v4 = await LiveListener.listen({ host: "127.0.0.1" });
  t.after(() => v4.close());
  const v6 = await LiveListener.listen({ host: "::1" });
  t.after(() => v6.close());
  const shared = {
    blackhole: { host: "127.0.0.1", port: tarpit.port },
    live: [
      { host: "127.0.0.1", port: v4.port },
      { host: "::1", port: v6.port },
      { host: "::ffff:127.0.0.1", port: v4.port },
    ],
  };
  for (let run = 0; run < 50; run++) {
    const r = await probe(run < 3 ? {} : shared);
    assert.equal(r.verdict.kind, "no-limit", `run ${run}: ${summary(r)}`);
    assert.equal(r.limit, null);
    assert.deepEqual(r.notes, [], `run ${run}: every question was tested`);
    assert.deepEqual(await synSentOf(), [], `run ${run}: nothing left in SYN_SENT`);
  }
});

/** Child processes of this one running the probe's helper script. */
async function helperChildren(): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid !== process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes("probe/helper.js")) found.push(Number(name));
  }
  return found;
}

function abortWhen(match: (e: ProbeStepEvent) => boolean): AbortController {
  const abort = new AbortController();
  const onStep = (message: unknown) => {
    if (match(message as ProbeStepEvent)) abort.abort();
  };
  diagnostics.subscribe(probeChannelNames.step, onStep);
  abort.signal.addEventListener("abort", () =>
    diagnostics.unsubscribe(probeChannelNames.step, onStep),
  );
  return abort;
}

test("aborted while holding 16 attempts: rejects with SYNLIMIT_ABORTED, no SYN_SENT socket remains", async () => {
  const abort = abortWhen((e) => e.entry.step === "trial" && e.entry.held >= 16);
  await assert.rejects(
    probe({ signal: abort.signal }),
    (e: unknown) => e instanceof SynlimitError && e.code === "SYNLIMIT_ABORTED",
  );
  assert.deepEqual(await synSentOf(), []);
});

test("aborted while the helper process starts: it is ended too", async (t) => {
  install({ maxInFlight: 2, timing: "none" });
  t.after(uninstall);
  // The first blocked trial starts the helper; the release comes after it.
  const abort = abortWhen((e) => e.entry.step === "release");
  await assert.rejects(probe({ signal: abort.signal }), /probe aborted/);
  uninstall();
  assert.deepEqual(await synSentOf(), []);
  assert.deepEqual(await helperChildren(), [], "no helper process outlives the probe");
});

import { writeFile } from "node:fs/promises";
import os from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { currentEmulation } from "../src/emulate/install.js";
import { type OverheadOptions, runConnectOverhead } from "./connect-overhead.js";
import { runFieldBench } from "./guard-field.js";
import { runGuardBench } from "./guard-incident.js";
import { type HandoffOptions, runHandoff } from "./handoff.js";
import { runHookOverhead } from "./hook-overhead.js";
import { runIdentityLookupBench } from "./identity-lookup.js";
import { runProbeBench } from "./probe-speed.js";
import { runProxyBench as runProxyLoad } from "./proxy-load.js";
import { runProxySetups } from "./proxy-setups.js";
import { runProxyBench as runProxyThroughput } from "./proxy-throughput.js";
import { handoffTable, machine, markdown, overheadTable, verdicts } from "./report.js";

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    // The proxy benchmarks take minutes and need microsocks and dante-server.
    "no-proxy": { type: "boolean", default: false },
    // Both sides plain: whatever "overhead" this reports is the noise floor.
    aa: { type: "boolean", default: false },
  },
  strict: true,
});

// Sized so the full run stays well under two minutes on a 2-core machine.
const settings: { overhead: OverheadOptions; handoff: HandoffOptions } = args.quick
  ? {
      overhead: { rounds: 2, sequential: 200, concurrent: 400, concurrency: 16 },
      handoff: { iterations: 50, warmup: 10 },
    }
  : {
      overhead: { rounds: 40, sequential: 1_000, concurrent: 2_000, concurrency: 16 },
      handoff: { iterations: 2_000, warmup: 200 },
    };

settings.overhead.control = args.aa;
const docs = new URL("../../docs/benchmarks.md", import.meta.url);
const log = (line: string) => process.stderr.write(`${line}\n`);

const loadAverage = os.loadavg();
const started = performance.now();
log("connect overhead: hooked vs plain, interleaved rounds …");
const overhead = await runConnectOverhead(settings.overhead);
log("handoff: pending attempt destroyed → queued attempt's SYN …");
const handoff = await runHandoff(settings.handoff);
await leakCheck();
// The other verbs' benchmarks, each a section of the same document.
const sections: Array<{ title: string; markdown: string }> = [];
log("guard: the incident fixed — logins with no agent, a naive agent, a guarded agent …");
sections.push({
  title: "The incident, fixed",
  markdown: (await runGuardBench({ quick: args.quick })).markdown,
});
await leakCheck();
log("guard: the field case — collector switched off while connected, every client side by side …");
sections.push({
  title: "Guard: the field case",
  markdown: (await runFieldBench({ quick: args.quick })).markdown,
});
await leakCheck();
log("probe: time to verdict for k = 1, 4, 16 …");
sections.push({
  title: "Probe: time to verdict",
  // The probe's markdown brings its own heading; the section supplies one.
  markdown: (await runProbeBench({ quick: args.quick })).markdown.replace(/^## .*\n+/, ""),
});
await leakCheck();
if (!args["no-proxy"]) {
  log("gate proxy: setups/s and throughput vs direct, microsocks and dante …");
  sections.push({
    title: "Gate proxy throughput",
    markdown: (await runProxyThroughput({ quick: args.quick })).markdown,
  });
  log("gate proxy: setups as a user measures them (separate processes) …");
  sections.push({
    title: "Gate proxy setups, measured as a user would",
    markdown: (
      await runProxySetups(
        args.quick
          ? { rounds: 3, setups: 300, concurrency: 32, profDir: null }
          : { rounds: 30, setups: 1000, concurrency: 32, profDir: null },
      )
    ).markdown,
  });
  log("gate proxy: 10,000 clients, 1,000 pending attempts …");
  sections.push({
    title: "Gate proxy under load",
    markdown: (await runProxyLoad({ quick: args.quick })).markdown,
  });
  await leakCheck();
}
log("hook: overhead as separate processes, plain vs --import synlimit/register …");
sections.push({
  title: "Hook overhead as separate processes",
  markdown: (
    await runHookOverhead(
      // The sizes of docs/benchmarks.md's quiet-machine runs: at 2,000 / 4,000
      // connects a run is mostly the JIT warming up, not the hook.
      args.quick ? { rounds: 2, seq: 300, par: 600 } : { rounds: 16, seq: 10_000, par: 20_000 },
    )
  ).markdown,
});
// After the proxy benchmarks: the TIME_WAIT sockets they leave are the busy host this is about.
log("gate proxy: finding a client's socket, sock_diag vs /proc/net/tcp …");
sections.push({
  title: "Gate proxy: finding a client's socket (identity process)",
  markdown: (await runIdentityLookupBench({ quick: args.quick })).markdown,
});

const report = {
  loadAverage,
  command: args.quick ? "npm run bench -- --quick" : "npm run bench",
  date: new Date(),
  durationS: (performance.now() - started) / 1000,
  overhead,
  handoff,
  sections,
};
console.log(
  [
    ...machine(loadAverage),
    "",
    ...overheadTable(overhead),
    "",
    ...handoffTable(handoff),
    "",
    ...sections.flatMap((section) => [`## ${section.title}`, "", section.markdown, ""]),
    ...verdicts(report),
  ].join("\n"),
);
if (args.aa) log("A/A control: the hooked column ran without the hook; docs not written.");
if (!args["no-write"] && !args.aa) {
  await writeFile(docs, markdown(report));
  log(`wrote ${docs.pathname}`);
}

/** Both benchmarks must leave no hook, socket, server or worker behind. */
async function leakCheck(): Promise<void> {
  // Destroyed handles close on the next turns of the loop.
  await new Promise((resolve) => setTimeout(resolve, 50));
  if (currentEmulation() !== null) throw new Error("bench left an emulation installed");
  const open = process
    .getActiveResourcesInfo()
    .filter((r) => /^(TCP|ConnectWrap|Worker|MessagePort)/.test(r));
  if (open.length > 0) throw new Error(`bench left open: ${open.join(", ")}`);
}

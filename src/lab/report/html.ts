import { narrowChartWidth, responsive } from "../../report/dom.js";
import type { LabResult, ScenarioResult } from "../types.js";
import { duration, fieldAndLab } from "../units.js";
import { comparisonChart } from "./comparison.js";
import { esc } from "./format.js";
import { defaultMaxLatencyDots, latencyChart, latencyFloorS } from "./latency.js";
import {
  giveUpColor,
  opColors,
  operations,
  outcomeLabels,
  percentileStats,
  roleColors,
  statColors,
  waitColors,
} from "./palette.js";
import { css } from "./style.js";
import {
  attemptsTable,
  checksList,
  metadataTable,
  operationsTable,
  scenarioFacts,
} from "./tables.js";
import { defaultMaxTimelineBars, timelineChart } from "./timeline.js";
import { waitDistributionChart } from "./waits.js";

export interface ReportOptions {
  /** Attempts drawn per timeline (the earliest by queuedAtMs). */
  maxTimelineBars?: number;
  /** Samples drawn per latency chart (evenly thinned beyond this). */
  maxLatencyDots?: number;
}

/** The whole report: one self-contained HTML document, no scripts, no network. */
export function renderReport(result: LabResult, options: ReportOptions = {}): string {
  const maxBars = options.maxTimelineBars ?? defaultMaxTimelineBars;
  const maxDots = options.maxLatencyDots ?? defaultMaxLatencyDots;
  const comparison = comparisonChart(result);
  const comparisonNarrow = comparisonChart(result, narrowChartWidth);
  const nav = result.scenarios
    .map((s) => `<li><a href="#scenario-${esc(s.name)}">${esc(s.name)}</a></li>`)
    .join("");
  const anyFailed = comparison.failures.length > 0;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>synlimit lab report — ${esc(result.startedAt)}</title>
<style>${css}</style>
</head>
<body>
<header>
<h1>synlimit lab: the incident, rerun on one machine</h1>
<p class="muted">Run started ${esc(result.startedAt)} · results schema v${esc(result.version)} · raw data: <a href="results.json">results.json</a></p>
<nav aria-label="Scenarios"><ul><li><a href="#checks">checks</a></li><li><a href="#comparison">comparison</a></li>${nav}</ul></nav>
</header>
<main>
${intro(result)}
<section id="checks">
<h2>Checks</h2>
${checksList(result)}
</section>
${metadataTable(result)}
<section id="comparison">
<h2>Scenarios compared</h2>
<figure data-chart="comparison">
${swatches([
  ...percentileStats.map(
    (s): Swatch => [`${s.replace("Ms", "")} of successful`, statColors[s], "dot"],
  ),
  ...(anyFailed ? [["✘ share of operations that failed", "#b00", "text"] as Swatch] : []),
])}
${comparison.svgs
  .map(
    (c, i) =>
      `<div class="panel" data-op="${c.op}">${responsive(c.svg, comparisonNarrow.svgs[i]?.svg ?? "")}</div>`,
  )
  .join("\n")}
<figcaption>Latency of the successful operations per scenario, one chart per operation, field
seconds on a shared log scale: p50, p95 and p99 joined by a line. Failed operations are not in the
percentiles; their share is written in red at the right. The numbers are in the table below.</figcaption>
</figure>
${operationsTable(result)}
${attemptsTable(result)}
</section>
${result.scenarios.map((s) => scenarioSection(result, s, maxBars, maxDots)).join("\n")}
</main>
<footer>
<p>Times are field time: what the lab measured divided by the time scale (${esc(result.timeScale)}),
written as “21 s”, “2.1 s”, “640 ms”; “—” where there is no value (a latency with no successful
operation, a wait in a scenario with no attempts, or null in results.json). The lab's own
milliseconds are in results.json. Charts rendered with Observable Plot; this page loads nothing
from the network.</p>
</footer>
</body>
</html>
`;
}

function intro(result: LabResult): string {
  return `<section aria-labelledby="what">
<h2 id="what">What this is</h2>
<p>A Windows server ran a security product that allowed <strong>one concurrent TCP connect attempt
per process</strong> and queued the rest. When the APM agent's collector was switched off, the
agent's reconnects sat in SYN_SENT for about 21 s each, holding the only slot — and every login,
which opens a fresh connection to Active Directory, waited in line behind it. Pooled database and
HTTP calls opened no new connections, so only logins were slow.</p>
<p>The lab replays this in one process on one machine with every duration multiplied by
${esc(result.timeScale)}: the 21 s attempt runs in ${esc(duration(result.attemptTimeoutMs))}. Every
time on this page is given back in field time (lab time ÷ ${esc(result.timeScale)}), so it reads
as on the customer's server: the attempt timeout is ${esc(fieldAndLab(result.attemptTimeoutMs, result.timeScale))}.</p>
<h3>How to read the charts</h3>
<ul>
<li><strong>Attempt timeline</strong>: one lane per role (who made the attempt); each bar is a
connect attempt, light while it waits for a slot, dark while in SYN_SENT. Overlapping attempts of
a role stack in rows. The circled bar holds the slot at the busiest moment; the label says how many
wait behind it. On an attempt that stays in SYN_SENT, white ticks mark the emulated OS's SYN and
its retransmissions and an orange line the moment it gives up (the field host's 0, 3, 9 s and 21 s
under the incident's timing). Hover a bar for its details. Above it, the number of attempts
waiting, by role.</li>
<li><strong>Latency over time</strong>: every operation as a dot at its start time, one panel
per operation, log scale; × is a failed operation; the dotted line is the attempt timeout.</li>
<li>Dashed vertical lines mark events: upstreams dying, pools flushed.</li>
</ul>
</section>`;
}

function scenarioSection(
  result: LabResult,
  s: ScenarioResult,
  maxBars: number,
  maxDots: number,
): string {
  const scale = result.timeScale;
  const tl = timelineChart(s, maxBars, scale);
  const tlN = timelineChart(s, maxBars, scale, narrowChartWidth);
  const lat = latencyChart(s, result.attemptTimeoutMs, maxDots, scale);
  const latN = latencyChart(s, result.attemptTimeoutMs, maxDots, scale, narrowChartWidth);
  const name = esc(s.name);
  const capped =
    tl.drawn < tl.total
      ? ` Only the first ${tl.drawn} of ${tl.total} attempts (by the time they asked for a slot) are drawn.`
      : "";
  const empty = tl.total === 0 ? " No connect attempts were recorded in this scenario." : "";
  const thinned =
    lat.stride > 1
      ? ` Every ${lat.stride}th of ${lat.total} operations is drawn (${lat.drawn}).`
      : "";
  const clamped =
    lat.clamped > 0
      ? ` ${lat.clamped} operations faster than ${latencyFloorS * 1000} ms are drawn at ${latencyFloorS * 1000} ms.`
      : "";
  const outcomes = [
    ...new Set(tl.outcomesDrawn.map((o) => outcomeLabels[o as keyof typeof outcomeLabels])),
  ];
  const waits =
    s.name === "incident"
      ? responsive(
          waitDistributionChart(result) ?? "",
          waitDistributionChart(result, narrowChartWidth) ?? "",
        )
      : null;
  const roleSwatches: Swatch[] = tl.rolesDrawn.flatMap((r): Swatch[] => [
    ...(tl.waitingDrawn.includes(r) ? [[`${r} waiting`, waitColors[r], "box"] as Swatch] : []),
    ...(tl.synDrawn.includes(r) ? [[`${r} SYN_SENT`, roleColors[r], "box"] as Swatch] : []),
  ]);
  return `<section id="scenario-${name}" data-scenario="${name}">
<h2>${name}</h2>
<p>${esc(s.description)}</p>
${scenarioFacts(s, scale)}
<figure data-chart="timeline" data-scenario="${name}">
${tl.total ? swatches([...roleSwatches, ...synSwatches(tl), ...outcomes.map((o): Swatch => [o ?? "", "#000", "text"])]) : ""}
${responsive(tl.depthSvg, tlN.depthSvg)}
${responsive(tl.svg, tlN.svg)}
<figcaption>Attempt timeline, ${name}: above, attempts waiting for a slot; below, one lane per role,
light = waiting for a slot, dark = SYN_SENT (drawn at least 2 px wide).${
    tl.synTicksDrawn > 0
      ? ` On an attempt pending past its first retransmission, white ticks mark when the emulated OS sends the SYN and resends it${tl.giveUpsDrawn > 0 ? ", and an orange line when it gives up" : ""} (${esc(tl.schedule ?? "")}).`
      : ""
  }${
    tl.peak?.holder
      ? ` At the busiest moment (${esc(duration(tl.peak.atMs / scale))}) ${esc(tl.peak.holder.role)} attempt #${tl.peak.holder.id} held the slot and ${tl.peak.waiting} attempts waited.`
      : ""
  }${capped}${empty}</figcaption>
</figure>
${
  waits
    ? `<figure data-chart="waits" data-scenario="${name}">
${swatches([
  ["measured login connects", roleColors.login, "box"],
  ["queue model", "#555", "box"],
  ["model ± tolerance", "#ccc", "box"],
])}
${waits}
<figcaption>How long the incident's login connects waited for a slot (as the app's limiter
recorded it), against the queue model's prediction for the
run's limit, attempt timeout and agent (src/lab/model.ts): the check holds when the measured
quartiles and maximum lie in the grey band.</figcaption>
</figure>`
    : ""
}
<figure data-chart="latency" data-scenario="${name}">
${swatches([
  ...operations.map((o): Swatch => [o, opColors[o], "dot"]),
  ...(lat.failed ? [["× failed", "#000", "text"] as Swatch] : []),
])}
${responsive(lat.svg, latN.svg)}
<figcaption>Latency over time, ${name}: duration of each operation by start time, field seconds,
log scale${lat.failed ? "; × failed" : ""}. Dotted line: the attempt timeout (${esc(
    fieldAndLab(result.attemptTimeoutMs, scale),
  )}).${thinned}${clamped}</figcaption>
</figure>
</section>`;
}

type Swatch = [label: string, color: string, kind: "box" | "dot" | "text"];

/** The SYN ticks and give-up lines, when the timeline draws them. */
function synSwatches(tl: { synTicksDrawn: number; giveUpsDrawn: number }): Swatch[] {
  return [
    ...(tl.synTicksDrawn > 0 ? [["┃ SYN sent or resent (white)", "#555", "text"] as Swatch] : []),
    ...(tl.giveUpsDrawn > 0 ? [["┃ the OS gives up", giveUpColor, "text"] as Swatch] : []),
  ];
}

function swatches(items: Swatch[]): string {
  return `<div class="legend" aria-hidden="true">${items
    .map(([label, color, kind]) =>
      kind === "text"
        ? `<span style="color:${color}">${esc(label)}</span>`
        : `<span><span class="swatch ${kind}" style="background:${color}"></span>${esc(label)}</span>`,
    )
    .join("")}</div>`;
}

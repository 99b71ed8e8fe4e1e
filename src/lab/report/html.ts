import type { LabResult, ScenarioResult } from "../types.js";
import { comparisonChart } from "./comparison.js";
import { esc } from "./format.js";
import { defaultMaxLatencyDots, latencyChart, latencyFloorMs } from "./latency.js";
import { opColors, operations, percentileStats, roleColors, roles, statColors } from "./palette.js";
import { css } from "./style.js";
import { attemptsTable, metadataTable, operationsTable, scenarioFacts } from "./tables.js";
import { defaultMaxTimelineBars, timelineChart } from "./timeline.js";

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
  const nav = result.scenarios
    .map((s) => `<li><a href="#scenario-${esc(s.name)}">${esc(s.name)}</a></li>`)
    .join("");
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
<nav aria-label="Scenarios"><ul><li><a href="#comparison">comparison</a></li>${nav}</ul></nav>
</header>
<main>
${intro(result)}
${metadataTable(result)}
<section id="comparison">
<h2>Scenarios compared</h2>
<figure data-chart="comparison">
${swatches(percentileStats.map((s) => [s.replace("Ms", ""), statColors[s], false]))}
${comparison.svg}
<figcaption>p50, p95 and p99 latency of each operation in each scenario (one row per operation,
one group per scenario${comparison.log ? "; log scale, bars start at the axis floor" : ""}).
An operation with no samples in a scenario has no bars. The numbers are in the table below.</figcaption>
</figure>
${operationsTable(result)}
${attemptsTable(result)}
</section>
${result.scenarios.map((s) => scenarioSection(result, s, maxBars, maxDots)).join("\n")}
</main>
<footer>
<p>Numbers: milliseconds with one decimal (<code>toFixed(1)</code>), counts and other values as
recorded; “—” where there is no value (a latency of an operation with no samples, a wait in a
scenario with no attempts, or null in results.json).
Charts rendered with Observable Plot; this page loads nothing from the network.</p>
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
${esc(result.timeScale)} (the 21 s attempt becomes ${esc(result.attemptTimeoutMs)} ms):
<em>baseline</em> (no limit), <em>incident</em> (limit and a naive agent), <em>fixed</em> (the
shipped UDP-echo preflight), <em>escalation</em> (dead HTTP API upstreams whose pools retry) and
<em>restart</em> (an <code>iisreset</code> that makes every pool reconnect behind them).</p>
<h3>How to read the charts</h3>
<ul>
<li><strong>Attempt timeline</strong>: one row per connect attempt, in the order attempts asked
for a slot. The pale part of a row is time spent waiting for a slot; the solid part is time in
SYN_SENT. Color is who made the attempt; × marks a failed or timed-out attempt, □ one cancelled
while still waiting. A staircase of pale bars ending together is the incident.</li>
<li><strong>Latency over time</strong>: every operation as a dot at its start time, one panel
per operation, log scale; × is a failed operation; the dotted line is the attempt timeout.</li>
<li>Dashed vertical lines mark events: the agent starting, upstreams dying, pools flushed.</li>
</ul>
</section>`;
}

function scenarioSection(
  result: LabResult,
  s: ScenarioResult,
  maxBars: number,
  maxDots: number,
): string {
  const tl = timelineChart(s, maxBars);
  const lat = latencyChart(s, result.attemptTimeoutMs, maxDots);
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
      ? ` ${lat.clamped} operations faster than ${latencyFloorMs} ms are drawn at ${latencyFloorMs} ms.`
      : "";
  return `<section id="scenario-${name}" data-scenario="${name}">
<h2>${name}</h2>
<p>${esc(s.description)}</p>
${scenarioFacts(s)}
<figure data-chart="timeline" data-scenario="${name}">
${swatches(roles.map((r) => [r, roleColors[r], false]))}
${tl.svg}
<figcaption>Attempt timeline, ${name}: each row one connect attempt; pale = waiting for a slot,
solid = SYN_SENT (drawn at least 1.5 px wide); × failed or timed out, □ cancelled or rejected
before it started.${capped}${empty}</figcaption>
</figure>
<figure data-chart="latency" data-scenario="${name}">
${swatches(operations.map((o) => [o, opColors[o], false]))}
${lat.svg}
<figcaption>Latency over time, ${name}: duration of each operation by start time, log scale;
× failed. Dotted line: the attempt timeout (${esc(result.attemptTimeoutMs)} ms).${thinned}${clamped}</figcaption>
</figure>
</section>`;
}

function swatches(items: Array<[string, string, boolean]>): string {
  return `<div class="legend" aria-hidden="true">${items
    .map(
      ([label, color, light]) =>
        `<span><span class="swatch${light ? " light" : ""}" style="background:${color}"></span>${esc(label)}</span>`,
    )
    .join("")}</div>`;
}

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseHTML } from "linkedom";
import { chromium } from "playwright-core";
import { comparisonPoints } from "../../src/lab/report/comparison.js";
import { renderReport, writeReport } from "../../src/lab/report/index.js";
import { findings } from "../../src/lab/table.js";
import type {
  AttemptRecord,
  LabEvent,
  LabResult,
  ScenarioName,
  ScenarioResult,
} from "../../src/lab/types.js";
import { duration } from "../../src/lab/units.js";
import { sampleResult } from "./fixtures/sample-result.js";

/** CI installs Debian's chromium (apt-get install chromium); without it this test fails. */
const chromiumPath = "/usr/bin/chromium";
/** The report's default cap on timeline rows (src/lab/report/timeline.ts). */
const maxTimelineBars = 300;

/**
 * The report's documented number rule, restated here so a change to it fails
 * this test: missing → "—", fields named *Ms → field time (duration(value ÷
 * time scale)), errorRate → a whole percentage, anything else → String.
 * `measured` is false for the *Ms fields of no success or zero attempts.
 */
function expectedText(field: string, value: unknown, timeScale: number, measured = true): string {
  if (!measured && field.endsWith("Ms")) return "—";
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  if (field.endsWith("Ms")) return duration(value / timeScale);
  if (field === "errorRate")
    return value > 0 && value < 0.005 ? "<1 %" : `${Math.round(value * 100)} %`;
  return String(value);
}

function at(root: unknown, dotted: string): unknown {
  return dotted
    .split(".")
    .reduce<unknown>((v, k) => (v as Record<string, unknown> | null)?.[k], root);
}

/** The attempts the report draws: the first N to ask for a slot. */
function drawnAttempts(timeline: readonly AttemptRecord[]): AttemptRecord[] {
  return [...timeline]
    .sort((a, b) => a.queuedAtMs - b.queuedAtMs || a.id - b.id)
    .slice(0, maxTimelineBars);
}

/** Counts console.warn calls while fn runs: Plot warns there, and libraries must not log. */
function warningsDuring(fn: () => void): unknown[][] {
  const warnings: unknown[][] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args);
  try {
    fn();
  } finally {
    console.warn = original;
  }
  return warnings;
}

test("text from the results is escaped, never markup", () => {
  const result = sampleResult();
  const evil = `<script>alert("x")</script><img src=x onerror=alert(1)>`;
  const first = result.scenarios[0] as ScenarioResult;
  first.description = evil;
  first.events.push({ atMs: 10, kind: evil as LabEvent["kind"], detail: evil });
  first.profile = evil;
  // A name from a hand-edited results.json lands in attributes and chart labels.
  (result.scenarios[1] as ScenarioResult).name = `x" onload="alert(1)` as ScenarioName;
  result.services.ldap = evil;
  result.machine.os = evil;
  result.startedAt = evil;

  const html = renderReport(result);
  assert.doesNotMatch(html, /<script/i);
  // Parsed back, the hostile text is text again, and no element gained a handler.
  const { document } = parseHTML(html);
  assert.equal(document.querySelectorAll("script, img").length, 0);
  for (const el of document.querySelectorAll("*")) {
    for (const name of el.getAttributeNames()) assert.doesNotMatch(name, /^on/i);
  }
  assert.equal(document.querySelector("#scenario-baseline > p")?.textContent, evil);
  assert.equal(
    document.querySelector('figure[data-chart="timeline"]')?.getAttribute("data-scenario"),
    "baseline",
  );
  const names = [...document.querySelectorAll("section[data-scenario]")].map((e) =>
    e.getAttribute("data-scenario"),
  );
  assert.equal(names[1], `x" onload="alert(1)`);
});

test("a scenario with no attempts and no samples still gets its charts", () => {
  const result = sampleResult();
  const nan = Number.NaN;
  const none = {
    count: 0,
    errors: 0,
    errorRate: 0,
    topError: null,
    ok: 0,
    p50Ms: nan,
    p95Ms: nan,
    p99Ms: nan,
    maxMs: nan,
  };
  const empty: ScenarioResult = {
    ...(result.scenarios[0] as ScenarioResult),
    operations: { login: none, db: none, api: none },
    attempts: {
      total: 0,
      queued: 0,
      waitP50Ms: nan,
      waitP99Ms: nan,
      maxWaitMs: nan,
      agent: 0,
      pending: 0,
    },
    samples: [],
    timeline: [],
    events: [],
  };
  for (const scenarios of [
    [empty],
    [...result.scenarios, { ...empty, name: "restart" as const }],
  ]) {
    let html = "";
    const warnings = warningsDuring(() => {
      html = renderReport({ ...result, scenarios });
    });
    assert.deepEqual(warnings, []);
    for (const chart of ["timeline", "latency"]) {
      assert.match(
        html,
        new RegExp(
          `<figure data-chart="${chart}" data-scenario="baseline">[^]*?<svg[^>]* role="img"`,
        ),
      );
    }
    assert.match(html, /<figure data-chart="comparison">/);
    assert.match(html, /No connect attempts were recorded in this scenario\./);
    assert.match(html, /data-op="login" data-stat="p99Ms">—</);
    assert.match(html, /data-stat="attempts\.waitP50Ms">—</);
  }
});

test("a huge scenario is drawn capped, and the captions say so", () => {
  const result = sampleResult();
  const s = result.scenarios[1] as ScenarioResult;
  const n = 20_000;
  s.timeline = Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    role: i % 50 === 0 ? ("agent" as const) : ("login" as const),
    host: "127.0.0.1",
    port: 389,
    queuedAtMs: n - i, // reversed, so "first by queuedAtMs" is not "first in the array"
    startedAtMs: n - i + 1,
    endedAtMs: n - i + 2,
    outcome: "connected" as const,
  }));
  s.samples = Array.from({ length: n }, (_, i) => ({
    op: "login" as const,
    startMs: i / 4,
    durationMs: 1 + (i % 7),
    ok: i % 3 !== 0,
  }));
  const html = renderReport(result);
  const { document } = parseHTML(html);
  const figure = (chart: string) =>
    document.querySelector(`figure[data-chart="${chart}"][data-scenario="${s.name}"]`);
  const timeline = figure("timeline");
  assert.equal(timeline?.querySelectorAll(".chart-wide .sl-syn rect").length, maxTimelineBars);
  assert.match(timeline?.querySelector("figcaption")?.textContent ?? "", /first 300 of 20000/);
  const latency = figure("latency");
  const dots =
    latency?.querySelectorAll(".chart-wide .sl-ok circle, .chart-wide .sl-failed path").length ?? 0;
  assert.equal(dots, n / 4);
  assert.match(latency?.querySelector("figcaption")?.textContent ?? "", /Every 4th of 20000/);
  assert.ok(html.length < 3_000_000, `page is ${html.length} bytes`);
});

test("rendering the sample result makes Plot warn about nothing", () => {
  assert.deepEqual(
    warningsDuring(() => renderReport(sampleResult())),
    [],
  );
});

/** Where the browser test leaves its screenshots: dist/test-artifacts/lab/. */
const artifacts = fileURLToPath(new URL("../../test-artifacts/lab/", import.meta.url));

test("the report in a browser: every chart, every number, hover text, no overflow at 390 and 1280 px", async (t) => {
  assert.ok(
    existsSync(chromiumPath),
    `${chromiumPath} is missing: apt-get install chromium (CI must install it)`,
  );
  const dir = await mkdtemp(path.join(tmpdir(), "synlimit-report-"));
  t.after(() => rm(dir, { recursive: true, force: true }));

  const written = await writeReport(path.join(dir, "report"), sampleResult());
  assert.equal(written.html, path.join(dir, "report", "index.html"));
  // What the page must show is what results.json says, read back as a consumer would.
  const result = JSON.parse(await readFile(written.json, "utf8")) as LabResult;
  assert.deepEqual(result, JSON.parse(JSON.stringify(sampleResult())));
  assert.equal(result.scenarios.length, 5);
  const scale = result.timeScale;

  const context = await chromium.launchPersistentContext(path.join(dir, "profile"), {
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
  t.after(() => context.close());
  const requests: string[] = [];
  context.on("request", (r) => requests.push(r.url()));
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  const url = pathToFileURL(written.html).href;
  const response = await page.goto(url, { waitUntil: "load" });
  assert.ok(response?.ok() ?? true, "the page loads");
  assert.equal(await page.locator("script").count(), 0, "no scripts on the page");

  await mkdir(artifacts, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: 900 });
    const version = width < 600 ? ".chart-narrow" : ".chart-wide";
    // The page never scrolls sideways; a wide table scrolls in its own box.
    const overflow = await page.evaluate<number>(
      "document.documentElement.scrollWidth - window.innerWidth",
    );
    assert.ok(overflow <= 0, `${overflow} px of horizontal overflow at ${width} px`);
    for (const s of result.scenarios) {
      const figure = (chart: string) =>
        page.locator(`figure[data-chart="${chart}"][data-scenario="${s.name}"]`);
      for (const chart of ["timeline", "latency"]) {
        const f = figure(chart);
        assert.equal(await f.count(), 1, `${chart} figure for ${s.name}`);
        assert.equal(await f.locator("figcaption").count(), 1);
        const svg = f.locator(`${version} svg[role=img]`).last();
        assert.match((await svg.getAttribute("aria-label")) ?? "", new RegExp(s.name));
        const box = await svg.boundingBox();
        assert.ok(
          box && box.width > width / 2 && box.height > 60,
          `${chart} ${s.name} at ${width}`,
        );
        assert.ok(box.x >= 0 && box.x + box.width <= width, `${chart} ${s.name} fits ${width} px`);
      }
      const drawn = drawnAttempts(s.timeline);
      const started = drawn.filter((a) => a.startedAtMs !== null);
      const waited = drawn.filter((a) => (a.startedAtMs ?? a.endedAtMs) > a.queuedAtMs);
      const timeline = figure("timeline").locator(version);
      assert.equal(await timeline.locator(".sl-syn rect").count(), started.length, s.name);
      assert.equal(await timeline.locator(".sl-wait rect").count(), waited.length, s.name);
      assert.equal(
        await timeline.locator(".sl-outcome path").count(),
        drawn.filter((a) => a.outcome !== "connected").length,
      );
      // Every drawn attempt has hover text, on every bar of it, naming it and its ending.
      const titles = await timeline
        .locator(".sl-wait rect, .sl-syn rect")
        .evaluateAll((els) => els.map((e) => e.querySelector("title")?.textContent ?? ""));
      assert.ok(
        titles.every((x) => /^#\d+ \S+ → /.test(x)),
        `${s.name}: a bar without hover text`,
      );
      const titled = new Set(titles.map((x) => Number(/^#(\d+)/.exec(x)?.[1])));
      assert.deepEqual(
        [...titled].sort((a, b) => a - b),
        drawn.map((a) => a.id).sort((a, b) => a - b),
        `${s.name}: every drawn attempt has hover text`,
      );
      assert.equal(await timeline.locator(".sl-event line").count(), 2 * s.events.length);
      const caption = (await figure("timeline").locator("figcaption").textContent()) ?? "";
      if (s.timeline.length > maxTimelineBars) {
        assert.match(
          caption,
          new RegExp(`first ${maxTimelineBars} of ${s.timeline.length} attempts`),
        );
      }
      if (s.timeline.length === 0) assert.match(caption, /No connect attempts were recorded/);
      if (
        s.profile === "incident" &&
        drawn.some((a) => a.startedAtMs === null || a.startedAtMs > a.queuedAtMs)
      ) {
        // The slot holder is circled and the waiting behind it counted.
        assert.equal(await timeline.locator(".sl-holder circle").count(), 1, s.name);
        assert.match(caption, /held the slot and \d+ attempts waited/);
      }

      const latency = figure("latency").locator(version);
      const failed = s.samples.filter((x) => !x.ok).length;
      assert.equal(await latency.locator(".sl-ok circle").count(), s.samples.length - failed);
      assert.equal(await latency.locator(".sl-failed path").count(), failed);
      // The legend names × only when a failure is drawn.
      const legend = (await figure("latency").locator(".legend").textContent()) ?? "";
      assert.equal(legend.includes("× failed"), failed > 0, `${s.name} latency legend`);
    }
    const incident = page.locator('figure[data-chart="timeline"][data-scenario="incident"]');
    await incident.screenshot({ path: path.join(artifacts, `incident-timeline-${width}.png`) });
  }
  t.diagnostic(`screenshots: ${artifacts}incident-timeline-{1280,390}.png`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // The comparison: p50/p95/p99 of successful operations, failures as an error rate.
  const finite = result.scenarios.flatMap((s) =>
    Object.entries(s.operations).flatMap(([op, st]) =>
      (["p50Ms", "p95Ms", "p99Ms"] as const)
        .filter((k) => st.ok > 0 && Number.isFinite(st[k]))
        .map(
          (k) =>
            `${s.name} · ${op} · ${k.replace("Ms", "")} of successful: ${expectedText(k, st[k], scale)}`,
        ),
    ),
  );
  const comparison = page.locator('figure[data-chart="comparison"] .chart-wide');
  const titles = await comparison.locator(".sl-stat circle title").allTextContents();
  assert.deepEqual([...titles].sort(), [...finite].sort());
  const rates = await comparison.locator(".sl-failed-rate text").allTextContents();
  const failing = result.scenarios.flatMap((s) =>
    Object.values(s.operations).filter((o) => o.errors > 0),
  );
  assert.equal(rates.length, failing.length);

  // The checks are on the page, as the terminal prints them.
  const checks = await page.locator("#checks li").allTextContents();
  assert.deepEqual(checks, findings(result));

  // Every number cell shows its JSON value by the documented rule...
  type Cell = { scenario: string | null; op: string | null; stat: string; text: string };
  const cells: Cell[] = await page.locator("[data-stat]").evaluateAll((els) =>
    els.map((e) => ({
      scenario: e.getAttribute("data-scenario"),
      op: e.getAttribute("data-op"),
      stat: e.getAttribute("data-stat") ?? "",
      text: e.textContent ?? "",
    })),
  );
  for (const c of cells) {
    const s = result.scenarios.find((x) => x.name === c.scenario);
    assert.ok(s, `cell for unknown scenario ${c.scenario}`);
    const value = c.op ? at(s.operations, `${c.op}.${c.stat}`) : at(s, c.stat);
    const field = c.stat.split(".").pop() ?? "";
    const measured = c.op
      ? at(s.operations, `${c.op}.ok`) !== 0
      : !c.stat.startsWith("attempts.") || s.attempts.total !== 0;
    assert.equal(
      c.text,
      expectedText(field, value, scale, measured),
      `${c.scenario} ${c.op} ${c.stat}`,
    );
  }
  // ...and every number the tables promise is there, once.
  const keys = cells.map((c) => `${c.scenario}/${c.op ?? ""}/${c.stat}`);
  const expected = result.scenarios.flatMap((s) => [
    ...["login", "db", "api"].flatMap((op) =>
      ["count", "errors", "errorRate", "p50Ms", "p95Ms", "p99Ms", "maxMs"].map(
        (k) => `${s.name}/${op}/${k}`,
      ),
    ),
    ...["total", "queued", "pending", "waitP50Ms", "waitP99Ms", "maxWaitMs", "agent"].map(
      (k) => `${s.name}//attempts.${k}`,
    ),
    `${s.name}//durationMs`,
  ]);
  assert.deepEqual([...keys].sort(), [...expected].sort());

  const meta = await page
    .locator("[data-meta]")
    .evaluateAll((els) =>
      els.map((e) => [e.getAttribute("data-meta") ?? "", e.textContent ?? ""] as const),
    );
  assert.deepEqual(meta.map(([k]) => k).sort(), [
    "attemptTimeoutMs",
    "machine.cores",
    "machine.memoryGiB",
    "timeScale",
  ]);
  for (const [k, text] of meta) {
    assert.equal(text, expectedText(k.split(".").pop() ?? "", at(result, k), scale), k);
  }

  assert.deepEqual(consoleErrors, [], "no console errors");
  // Only the page itself was loaded: no CDN, fonts, scripts or favicon over the network.
  assert.deepEqual(requests, [url]);
});

test("log axes end on a labelled tick above the data, at both widths", () => {
  const result = sampleResult();
  // A spread of four decades, as a real run has: a narrow axis then labels only some of them.
  const incident = result.scenarios[1] as ScenarioResult;
  incident.operations.login = { ...incident.operations.login, p99Ms: 3_000, maxMs: 3_000 };
  (result.scenarios[0] as ScenarioResult).operations.db.p50Ms = 0.01;
  const { document } = parseHTML(renderReport(result));
  const points = comparisonPoints(result).map((p) => p.value);
  const top = Math.max(...points);
  const svgs = document.querySelectorAll('figure[data-chart="comparison"] svg');
  assert.equal(svgs.length, 6, "three operations, wide and narrow");
  for (const svg of svgs) {
    const ticks = [...svg.querySelectorAll('g[aria-label="x-axis tick label"] text')].map((t) =>
      Number(t.textContent),
    );
    assert.ok(ticks.length > 0);
    assert.ok(Math.max(...ticks) > top, `top tick ${Math.max(...ticks)} vs data ${top}`);
  }
  for (const svg of document.querySelectorAll('figure[data-chart="latency"] svg')) {
    const ticks = [...svg.querySelectorAll('g[aria-label="y-axis tick label"] text')].map((t) =>
      Number(t.textContent),
    );
    const scenario = svg.closest("figure")?.getAttribute("data-scenario");
    const s = result.scenarios.find((x) => x.name === scenario);
    assert.ok(s);
    const highest = Math.max(
      ...s.samples.map((x) => x.durationMs / result.timeScale / 1000),
      result.attemptTimeoutMs / result.timeScale / 1000,
    );
    assert.ok(
      Math.max(...ticks) > highest,
      `${scenario}: top tick ${Math.max(...ticks)} vs ${highest}`,
    );
  }
});

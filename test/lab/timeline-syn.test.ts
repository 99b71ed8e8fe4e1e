import assert from "node:assert/strict";
import { test } from "node:test";
import { parseHTML } from "linkedom";
import { renderReport } from "../../src/lab/report/index.js";
import { timelineChart } from "../../src/lab/report/timeline.js";
import type { AttemptRecord, LabResult, ScenarioResult } from "../../src/lab/types.js";
import { sampleResult } from "./fixtures/sample-result.js";

/**
 * The lab's timeline draws the emulated OS's SYN schedule on every attempt
 * that stays in SYN_SENT: under the incident's timing (windows-2008) the SYN
 * at 0, 3 and 9 s and the give-up at 21 s, at those field times on the bar.
 */

const timeScale = 0.05;
const lab = (fieldMs: number) => fieldMs * timeScale;
const schedule = { synAtMs: [0, 3_000, 9_000].map(lab), giveUpMs: lab(21_000) };

function attempt(a: Partial<AttemptRecord> & Pick<AttemptRecord, "id" | "role">): AttemptRecord {
  return {
    host: "127.0.0.1",
    port: a.role === "agent" ? 9 : 389,
    queuedAtMs: 0,
    startedAtMs: 0,
    endedAtMs: 0,
    outcome: "connected",
    ...a,
  };
}

function incident(): { result: LabResult; scenario: ScenarioResult } {
  const result = sampleResult();
  result.timeScale = timeScale;
  result.attemptTimeoutMs = lab(21_000);
  const scenario = result.scenarios.find((s) => s.name === "incident") as ScenarioResult;
  scenario.timeline = [
    // The agent's attempt to the dead collector: SYN at 0, 3, 9 s, the OS gives up at 21 s.
    attempt({
      id: 1,
      role: "agent",
      startedAtMs: 0,
      endedAtMs: lab(21_000),
      outcome: "timed-out",
      ...schedule,
    }),
    // A login behind it: waits, then connects at once — no retransmission, no tick.
    attempt({
      id: 2,
      role: "login",
      queuedAtMs: lab(5_000),
      startedAtMs: lab(21_000),
      endedAtMs: lab(21_004),
      ...schedule,
    }),
    // The agent's retry, cut off after 10 s when the app stopped: 0, 3, 9 s and no give-up.
    attempt({
      id: 3,
      role: "agent",
      queuedAtMs: lab(21_004),
      startedAtMs: lab(21_004),
      endedAtMs: lab(31_004),
      outcome: "pending",
      ...schedule,
    }),
  ];
  scenario.durationMs = lab(31_004);
  scenario.stoppedAtMs = lab(31_004);
  scenario.events = [];
  return { result, scenario };
}

interface Line {
  x: number;
  title: string;
}

function lines(svg: string, className: string): Line[] {
  const { document } = parseHTML(`<html><body>${svg}</body></html>`);
  return [...document.querySelectorAll(`g.${className} line`)].map((l) => ({
    x: Number(l.getAttribute("x1")),
    title: l.querySelector("title")?.textContent ?? "",
  }));
}

/** Each SYN_SENT bar: its attempt (from the hover text) and where it lies in px. */
function bars(svg: string): Map<number, { x: number; width: number }> {
  const { document } = parseHTML(`<html><body>${svg}</body></html>`);
  const out = new Map<number, { x: number; width: number }>();
  for (const r of document.querySelectorAll("g.sl-syn rect")) {
    const id = Number(/^#(\d+)/.exec(r.querySelector("title")?.textContent ?? "")?.[1]);
    out.set(id, { x: Number(r.getAttribute("x")), width: Number(r.getAttribute("width")) });
  }
  return out;
}

test("the incident's pending attempt shows its SYNs at 0, 3, 9 s and the give-up at 21 s", () => {
  const { scenario } = incident();
  const chart = timelineChart(scenario, 300, timeScale);
  const bar = bars(chart.svg).get(1);
  assert.ok(bar, "the agent's SYN_SENT bar is drawn");
  // The bar spans 0–21 s of the axis: a field second is bar.width / 21 px.
  const pxPerS = bar.width / 21;
  const syn = lines(chart.svg, "sl-syn-tick").filter((l) => l.title.startsWith("#1 "));
  assert.deepEqual(
    syn.map((l) => Math.round((l.x - bar.x) / pxPerS)),
    [0, 3, 9],
  );
  assert.deepEqual(
    syn.map((l) => l.title),
    [
      "#1 agent: first SYN at 0.0 ms in SYN_SENT",
      "#1 agent: SYN retransmission 1 at 3.0 s in SYN_SENT",
      "#1 agent: SYN retransmission 2 at 9.0 s in SYN_SENT",
    ],
  );
  const giveUp = lines(chart.svg, "sl-giveup");
  assert.equal(giveUp.length, 1, "only the attempt that reached 21 s gave up");
  assert.equal(Math.round(((giveUp[0] as Line).x - bar.x) / pxPerS), 21);
  assert.equal((giveUp[0] as Line).title, "#1 agent: the OS gives up at 21 s in SYN_SENT");

  // The retry, stopped at 10 s: its 0, 3 and 9 s, on its own bar.
  const retry = bars(chart.svg).get(3) as { x: number; width: number };
  const retryTicks = lines(chart.svg, "sl-syn-tick").filter((l) => l.title.startsWith("#3 "));
  assert.deepEqual(
    retryTicks.map((l) => Math.round((l.x - retry.x) / (retry.width / 10))),
    [0, 3, 9],
  );
  // The login connected at once: no tick on it.
  assert.equal(lines(chart.svg, "sl-syn-tick").filter((l) => l.title.startsWith("#2 ")).length, 0);
  assert.equal(chart.synTicksDrawn, 6);
  assert.equal(chart.giveUpsDrawn, 1);
  assert.equal(chart.schedule, "SYN at 0, 3, 9 s; gives up at 21 s");
  // The phone version draws them too.
  assert.equal(lines(timelineChart(scenario, 300, timeScale, 370).svg, "sl-syn-tick").length, 6);
});

test("the report's incident timeline carries the SYN ticks, the give-up, a legend and the schedule in words", () => {
  const { result } = incident();
  const html = renderReport(result);
  const { document } = parseHTML(html);
  const figure = document.querySelector('figure[data-chart="timeline"][data-scenario="incident"]');
  assert.ok(figure);
  assert.equal(figure.querySelectorAll(".chart-wide g.sl-syn-tick line").length, 6);
  assert.equal(figure.querySelectorAll(".chart-wide g.sl-giveup line").length, 1);
  assert.match(
    figure.querySelector("figcaption")?.textContent ?? "",
    /SYN at 0, 3, 9 s; gives up at 21 s/,
  );
  assert.match(
    figure.querySelector(".legend")?.textContent ?? "",
    /SYN sent or resent.*the OS gives up/,
  );
  // Hover text of the bar says the schedule too.
  const agentBar = [...figure.querySelectorAll(".chart-wide g.sl-syn rect title")].find((t) =>
    (t.textContent ?? "").startsWith("#1 "),
  );
  assert.match(agentBar?.textContent ?? "", /SYN at 0, 3, 9 s; gives up at 21 s/);
});

test("attempts without a schedule (no emulated timing recorded) draw no ticks", () => {
  const { scenario } = incident();
  for (const a of scenario.timeline) {
    delete a.synAtMs;
    delete a.giveUpMs;
  }
  const chart = timelineChart(scenario, 300, timeScale);
  assert.equal(lines(chart.svg, "sl-syn-tick").length + lines(chart.svg, "sl-giveup").length, 0);
  assert.equal(chart.schedule, null);
});

test("an attempt that ended before its schedule did says which SYNs were sent", async () => {
  const { attemptTitle } = await import("../../src/lab/report/timeline.js");
  const cancelled = attempt({
    id: 9,
    role: "agent",
    startedAtMs: 0,
    endedAtMs: lab(4_000),
    outcome: "cancelled",
    ...schedule,
  });
  const title = attemptTitle(cancelled, timeScale);
  assert.match(title, /SYN sent at 0, 3 s, then ended \(SYN at 0, 3, 9 s; gives up at 21 s\)/);
  const full = attemptTitle(
    { ...cancelled, endedAtMs: lab(21_000), outcome: "timed-out" },
    timeScale,
  );
  assert.match(full, /\nSYN at 0, 3, 9 s; gives up at 21 s\n/);
});

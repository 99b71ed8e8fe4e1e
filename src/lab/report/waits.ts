import * as Plot from "@observablehq/plot";
import { chartWidth, renderSvg } from "../../report/dom.js";
import { compareWithModel, slotWaits } from "../table.js";
import type { LabResult } from "../types.js";
import { roleColors } from "./palette.js";

/**
 * The incident check as a picture: the measured login durations and the
 * queue model's prediction as cumulative distributions, the model with its
 * tolerance band. Null when the run has no incident scenario.
 */
export function waitDistributionChart(result: LabResult, width = chartWidth): string | null {
  const m = compareWithModel(result);
  const incident = result.scenarios.find((s) => s.name === "incident");
  if (!m || !incident) return null;
  const sec = (ms: number) => ms / result.timeScale / 1000;
  const measured = slotWaits(incident, "login")
    .map(sec)
    .sort((a, b) => a - b);
  const n = measured.length;
  const tol = sec(m.toleranceMs);
  const step = Math.max(1, Math.floor(m.prediction.waits.length / 200));
  const model = m.prediction.waits
    .filter((_, i) => i % step === 0)
    .map((w, i, all) => ({ x: sec(w + m.overheadMs), f: (i + 1) / all.length }));
  // A few hundred points draw the curve; more only weigh the page down.
  const every = Math.max(1, Math.ceil(n / 400));
  const curve = measured
    .map((x, i) => ({ x, f: (i + 1) / n }))
    .filter((_, i) => i % every === 0 || i === n - 1);
  const top = Math.max(sec(m.predictedMaxMs) + tol, ...measured, 1);
  return renderSvg(
    {
      width,
      height: 260,
      marginLeft: width < 600 ? 50 : 70,
      marginRight: 20,
      marginTop: 16,
      x: { domain: [0, top], label: "a login's connect waited for a slot, field seconds →" },
      y: { domain: [0, 1], label: "↑ share of logins done", tickFormat: "%" },
      marks: [
        Plot.frame({ stroke: "#ddd" }),
        Plot.areaX(model, {
          y: "f",
          x1: (d: { x: number }) => Math.max(0, d.x - tol),
          x2: (d: { x: number }) => d.x + tol,
          fill: "#999",
          fillOpacity: 0.25,
          className: "sl-model-band",
        }),
        Plot.line(model, {
          x: "x",
          y: "f",
          stroke: "#555",
          strokeDasharray: "5,3",
          className: "sl-model",
        }),
        Plot.line(curve, {
          x: "x",
          y: "f",
          stroke: roleColors.login,
          strokeWidth: 2,
          curve: "step-after",
          className: "sl-measured",
        }),
        Plot.dot(n <= 400 ? curve : [], {
          x: "x",
          y: "f",
          fill: roleColors.login,
          r: 2,
          title: (d: { x: number; f: number }) =>
            `${d.x.toFixed(1)} s: ${Math.round(d.f * 100)} % of logins done`,
        }),
      ],
    },
    `Login connect waits in the incident (n = ${n}) against the queue model's prediction with its ± ${tol.toFixed(1)} s tolerance.`,
  );
}

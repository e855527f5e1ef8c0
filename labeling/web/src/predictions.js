// A window's predictions (from GET /tiles/:wid, one per inference run that covered it): pick a
// run, toggle its tiles on the map, set their opacity, read the legend (class colours, or the
// colour ramp with its range), and turn the predicted classes into pre-labels.

import { api } from "./api.js";
import { guard, h, notice } from "./ui.js";

const RAMPS = {
  viridis: ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"],
};

export function predictionLegend(p) {
  if (p.kind === "classes") {
    return h(
      "ul.legend",
      { testid: "prediction-legend" },
      (p.legend || []).map((c) =>
        h("li", {}, h("span.swatch", { style: `background:${c.color}` }), c.label ?? c.value),
      ),
    );
  }
  const stops = RAMPS[p.ramp] || RAMPS.viridis;
  const [lo, hi] = p.range || [0, 1];
  return h(
    "div.ramp",
    { testid: "prediction-legend" },
    h("span", {}, lo.toFixed(2)),
    h("span.ramp-bar", { style: `background:linear-gradient(to right, ${stops.join(",")})` }),
    h("span", {}, hi.toFixed(2)),
  );
}

/** The predictions panel for `info.predictions`; `onPrelabels` reloads the annotations. */
export function predictionsPanel({ wid, info, winMap, canLabel, onPrelabels }) {
  const runs = info.predictions || [];
  if (!runs.length) {
    return h(
      "p.hint",
      { testid: "no-predictions" },
      "No prediction for this window yet: run inference from the project page.",
    );
  }
  const state = { run: runs[0], on: true };
  const choose = h(
    "select",
    { testid: "prediction-select", "aria-label": "prediction" },
    runs.map((p) =>
      h("option", { value: p.job_id }, `job ${p.job_id}: ${p.model_name || `model ${p.model_id}`}`),
    ),
  );
  const toggle = h("input", { type: "checkbox", checked: true, testid: "prediction-toggle" });
  const opacity = h("input", {
    type: "range",
    min: 0,
    max: 100,
    value: 60,
    testid: "prediction-opacity",
    "aria-label": "prediction opacity",
  });
  const legend = h("div");
  const show = () => {
    winMap.setPrediction(state.on ? state.run.tiles : null);
    winMap.predictionLayer.setOpacity(Number(opacity.value) / 100);
    legend.replaceChildren(predictionLegend(state.run));
    prelabel.hidden = !canLabel || state.run.kind !== "classes";
  };
  choose.addEventListener("change", () => {
    state.run = runs.find((p) => String(p.job_id) === choose.value) || runs[0];
    show();
  });
  toggle.addEventListener("change", () => {
    state.on = toggle.checked;
    show();
  });
  opacity.addEventListener("input", show);
  const prelabel = h(
    "button",
    {
      testid: "use-prediction",
      onclick: () =>
        guard(async () => {
          const r = await api(`/windows/${wid}/prelabels`, {
            method: "POST",
            body: { job_id: state.run.job_id },
          });
          notice(
            `${r.created.length} pre-label(s) from the model` +
              (r.replaced ? ` (replaced ${r.replaced} unedited earlier ones)` : "") +
              ": edit, accept or delete them.",
          );
          await onPrelabels();
        }),
    },
    "Use prediction as labels",
  );
  const panel = h(
    "div.predictions",
    { testid: "predictions" },
    h("label", {}, "Run ", choose),
    h("label", {}, toggle, " show on the map"),
    h("label", {}, "Opacity ", opacity),
    legend,
    prelabel,
  );
  show();
  return panel;
}

// Imagery controls of a window map: which materialised layer, which time step (slider) and
// which composite preset; all three come from the API's tile metadata (GET /tiles/{window}).

import { h } from "./ui.js";

function firstPresent(layer) {
  const t = layer.periods.findIndex((_, i) => !layer.missing_periods.includes(i));
  return t < 0 ? 0 : t;
}

/** Controls bound to `winMap` (from createWindowMap) for the metadata `info`. */
export function imageryControls(info, winMap) {
  if (!info.layers.length) {
    winMap.setImagery(null);
    return h(
      "p.hint",
      { testid: "no-imagery" },
      "No imagery yet for this window: materialise its layers with a materialize job.",
    );
  }
  const state = { layer: info.layers[0], t: 0, preset: "" };
  const layerSelect = h("select", { testid: "layer-select", "aria-label": "layer" });
  const presetSelect = h("select", { testid: "preset-select", "aria-label": "preset" });
  const slider = h("input", { type: "range", min: 0, step: 1, testid: "time-slider" });
  const timeLabel = h("span.time-label", { testid: "time-label" });
  for (const l of info.layers) layerSelect.append(h("option", { value: l.name }, l.name));

  function update() {
    const { layer, t } = state;
    const [start, end] = layer.periods[t] || ["", ""];
    const missing = layer.missing_periods.includes(t) ? " (no data)" : "";
    timeLabel.textContent = `t=${t}: ${start.slice(0, 10)} to ${end.slice(0, 10)}${missing}`;
    const query = state.preset ? `?preset=${encodeURIComponent(state.preset)}` : "";
    winMap.setImagery(layer.tiles.replace("{t}", String(t)) + query);
  }

  function selectLayer(name) {
    state.layer = info.layers.find((l) => l.name === name) || info.layers[0];
    state.t = firstPresent(state.layer);
    state.preset = state.layer.presets[0] || "";
    presetSelect.replaceChildren(
      ...state.layer.presets.map((p) => h("option", { value: p }, p)),
    );
    presetSelect.value = state.preset;
    slider.max = Math.max(0, state.layer.periods.length - 1);
    slider.value = state.t;
    slider.disabled = state.layer.periods.length < 2;
    update();
  }

  layerSelect.addEventListener("change", () => selectLayer(layerSelect.value));
  presetSelect.addEventListener("change", () => {
    state.preset = presetSelect.value;
    update();
  });
  slider.addEventListener("input", () => {
    state.t = Number(slider.value);
    update();
  });
  // open on imagery, never on a label map (labels and predictions are overlays)
  const first = info.layers.find((l) => l.modality !== "label") || info.layers[0];
  layerSelect.value = first.name;
  selectLayer(first.name);

  return h(
    "div.imagery",
    {},
    h("label", {}, "Layer ", layerSelect),
    h("label", {}, "Preset ", presetSelect),
    h("label.time", {}, "Time ", slider, timeLabel),
  );
}

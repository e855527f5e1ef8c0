// Imagery controls of a window map: which materialised imagery layer, which time step (slider;
// ← and → too) and which composite preset, all from the API's tile metadata (GET /tiles/
// {window}). Each step says what it shows: its period, the acquisition date(s) of its scenes
// and the share of valid (cloud-free, covered) pixels. A second step can be compared with a
// swipe line. Class maps (label layers, land cover) are overlays with an opacity, never the
// layer a window opens on.
// Small windows are shown one image per step; frames or tiles, the neighbouring steps are
// fetched ahead.

import { h } from "./ui.js";

function firstPresent(layer) {
  const t = layer.periods.findIndex((_, i) => !layer.missing_periods.includes(i));
  return t < 0 ? 0 : t;
}

/** `url` with query parameters added (it may carry some already, e.g. `?v=`). */
function withQuery(url, params) {
  const q = Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join("&");
  if (!q) return url;
  return url + (url.includes("?") ? "&" : "?") + q;
}

/** Whether to show one image per step where the API offers it (the default), or always XYZ
 * tiles (`localStorage["earthplat.imagery"] = "tiles"`: e.g. to compare, as bench/ui_slider.py
 * does). */
function framesWanted() {
  try {
    return localStorage.getItem("earthplat.imagery") !== "tiles";
  } catch {
    return true;
  }
}

/** Whether to fetch the neighbouring steps ahead (the default; `localStorage[
 * "earthplat.prefetch"] = "off"` turns it off, as bench/ui_slider.py's baseline does). */
function prefetchWanted() {
  try {
    return localStorage.getItem("earthplat.prefetch") !== "off";
  } catch {
    return true;
  }
}

/** The nearest period before (`dir` -1) or after (+1) `t` that has data, or null. */
function nearestPresent(layer, t, dir) {
  for (let k = t + dir; k >= 0 && k < layer.periods.length; k += dir) {
    if (!layer.missing_periods.includes(k)) return k;
  }
  return null;
}

/** The map step (see imagerylayer.js) of period `t` of `layer` with `preset`. */
export function stepOf(layer, t, preset) {
  const key = `${layer.name}/${t}/${preset || ""}`;
  if (layer.frame && layer.frame_bounds_3857 && framesWanted()) {
    return {
      key,
      frame: withQuery(layer.frame.replace("{t}", String(t)), { preset }),
      extent: layer.frame_bounds_3857,
    };
  }
  return { key, tiles: withQuery(layer.tiles.replace("{t}", String(t)), { preset }) };
}

/** "acquired 2020-06-12, 2020-06-17 · 87 % valid" for period t, from what the API knows. */
export function stepFacts(layer, t) {
  const parts = [];
  const acquired = layer.acquired?.[t];
  if (acquired?.length) {
    const days = [...new Set(acquired.map((d) => d.slice(0, 10)))];
    parts.push(`acquired ${days.join(", ")}`);
  }
  const valid = layer.valid_fraction?.[t];
  if (valid !== undefined && valid !== null) parts.push(`${Math.round(valid * 100)} % valid`);
  return parts.join(" · ");
}

/** Controls bound to `winMap` (from createWindowMap) for the metadata `info`. Returns the
 * element; `el.step(delta)` moves in time (the ← / → shortcuts). */
export function imageryControls(info, winMap) {
  if (!info.layers.length) {
    winMap.setImagery(null);
    const el = h(
      "p.hint",
      { testid: "no-imagery" },
      "No imagery yet for this window: materialise its layers with a materialize job.",
    );
    el.step = () => {};
    return el;
  }
  // class maps are overlays, unless the window has nothing else to show
  const imageryLayers = info.layers.filter((l) => !l.categorical);
  const base = imageryLayers.length ? imageryLayers : info.layers;
  const overlays = imageryLayers.length ? info.layers.filter((l) => l.categorical) : [];
  const state = { layer: base[0], t: 0, preset: "", compare: false, tb: 0, overlay: null };
  const layerSelect = h("select", { testid: "layer-select", "aria-label": "layer" });
  const presetSelect = h("select", { testid: "preset-select", "aria-label": "preset" });
  const slider = h("input", { type: "range", min: 0, step: 1, testid: "time-slider", "aria-label": "time step" });
  const timeLabel = h("span.time-label", { testid: "time-label" });
  const facts = h("span.time-facts", { testid: "time-facts" });
  const compareBox = h("input", { type: "checkbox", testid: "compare-toggle" });
  const compareSelect = h("select", { testid: "compare-select", "aria-label": "compare with" });
  const swipe = h("input", { type: "range", min: 0, max: 100, value: 50, testid: "swipe", "aria-label": "swipe" });
  for (const l of base) layerSelect.append(h("option", { value: l.name }, l.name));
  const overlaySelect = h(
    "select",
    { testid: "overlay-select", "aria-label": "overlay" },
    h("option", { value: "" }, "none"),
    overlays.map((l) => h("option", { value: l.name }, l.name)),
  );
  const overlayOpacity = h("input", {
    type: "range",
    min: 0,
    max: 100,
    value: 60,
    testid: "overlay-opacity",
    "aria-label": "overlay opacity",
  });

  const periodText = (layer, t) => {
    const [start, end] = layer.periods[t] || ["", ""];
    const missing = layer.missing_periods.includes(t) ? " (no data)" : "";
    return `t=${t}: ${start.slice(0, 10)} to ${end.slice(0, 10)}${missing}`;
  };

  function update() {
    const { layer, t } = state;
    timeLabel.textContent = periodText(layer, t);
    facts.textContent = stepFacts(layer, t);
    const ahead = prefetchWanted()
      ? [nearestPresent(layer, t, -1), nearestPresent(layer, t, 1)]
          .filter((k) => k !== null)
          .map((k) => {
            const step = stepOf(layer, k, state.preset);
            return step.frame || step.tiles;
          })
      : [];
    winMap.setImagery(stepOf(layer, t, state.preset), ahead);
    updateCompare();
    updateOverlay();
  }

  /** The overlay's step: the imagery's t where it has one, else its own only period. */
  function updateOverlay() {
    const o = state.overlay;
    overlayOpacity.disabled = !o;
    if (!o) {
      winMap.setOverlay(null);
      return;
    }
    const t = Math.min(state.t, o.periods.length - 1);
    winMap.setOverlay(stepOf(o, t, ""), Number(overlayOpacity.value) / 100);
  }

  function updateCompare() {
    compareSelect.disabled = swipe.disabled = !state.compare;
    winMap.setCompare(state.compare ? stepOf(state.layer, state.tb, state.preset) : null);
  }

  function selectLayer(name) {
    state.layer = base.find((l) => l.name === name) || base[0];
    state.t = firstPresent(state.layer);
    state.preset = state.layer.presets[0] || "";
    presetSelect.replaceChildren(...state.layer.presets.map((p) => h("option", { value: p }, p)));
    presetSelect.value = state.preset;
    const n = state.layer.periods.length;
    slider.max = Math.max(0, n - 1);
    slider.value = state.t;
    slider.disabled = n < 2;
    compareSelect.replaceChildren(
      ...state.layer.periods.map((_, k) => h("option", { value: k }, periodText(state.layer, k))),
    );
    state.tb = n > 1 ? (state.t + 1) % n : state.t;
    compareSelect.value = String(state.tb);
    compareBox.disabled = n < 2;
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
  compareBox.addEventListener("change", () => {
    state.compare = compareBox.checked;
    updateCompare();
  });
  compareSelect.addEventListener("change", () => {
    state.tb = Number(compareSelect.value);
    updateCompare();
  });
  swipe.addEventListener("input", () => winMap.setSwipe(Number(swipe.value) / 100));
  overlaySelect.addEventListener("change", () => {
    state.overlay = overlays.find((l) => l.name === overlaySelect.value) || null;
    updateOverlay();
  });
  overlayOpacity.addEventListener("input", updateOverlay);
  // open on imagery, never on a label map (labels and predictions are overlays)
  layerSelect.value = base[0].name;
  selectLayer(base[0].name);

  const el = h(
    "div.imagery",
    {},
    h("label", {}, "Layer ", layerSelect),
    h("label", {}, "Preset ", presetSelect),
    h("label.time", {}, "Time ", slider, timeLabel),
    h("div.hint", {}, facts),
    h("label", {}, compareBox, " Compare with ", compareSelect),
    h("label", {}, "Swipe ", swipe),
    overlays.length
      ? h("label", {}, "Overlay ", overlaySelect, " opacity ", overlayOpacity)
      : null,
  );
  el.step = (delta) => {
    const n = state.layer.periods.length;
    const t = Math.max(0, Math.min(n - 1, state.t + delta));
    if (t === state.t) return;
    state.t = t;
    slider.value = t;
    update();
  };
  return el;
}

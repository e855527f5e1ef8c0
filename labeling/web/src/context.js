// Context around a window: the low-resolution overview of the project's imagery around it
// (built when the window is materialised; GET /windows/{id}/context) and, where the deployment
// sets one, an XYZ basemap (GET /ui-config). Both sit under the window's imagery.

import { api } from "./api.js";
import { h } from "./ui.js";

let uiConfig = null;
/** The deployment's UI settings (fetched once). */
function config() {
  uiConfig ||= api("/ui-config").catch(() => ({ basemap: null }));
  return uiConfig;
}

/** The "Context" controls for the window map `winMap`; fills in once the API answers. */
export function contextControls({ wid, winMap }) {
  const toggle = h("input", { type: "checkbox", checked: true, testid: "context-toggle" });
  const basemapToggle = h("input", { type: "checkbox", checked: true, testid: "basemap-toggle" });
  const info = h("span.hint", { testid: "context-info" }, "Looking for context imagery...");
  const basemapLabel = h("label", { hidden: true }, basemapToggle, " Basemap");
  const el = h("div.context", {}, h("label", {}, toggle, " Context around the window "), info, basemapLabel);
  const state = { context: null, basemap: null };

  function apply() {
    winMap.setContext(toggle.checked ? state.context : null);
    winMap.setBasemap(basemapToggle.checked ? state.basemap : null);
  }
  toggle.addEventListener("change", apply);
  basemapToggle.addEventListener("change", apply);

  Promise.all([api(`/windows/${wid}/context`).catch(() => null), config()]).then(([ctx, cfg]) => {
    const first = ctx?.layers?.[0];
    if (first) {
      state.context = first.tiles;
      info.textContent = first.period ? `(${first.layer}, ${String(first.period[0]).slice(0, 10)})` : `(${first.layer})`;
    } else {
      info.textContent = "(none yet: materialising the window builds it)";
      toggle.disabled = true;
    }
    if (cfg?.basemap?.url) {
      state.basemap = cfg.basemap;
      basemapLabel.hidden = false;
    }
    apply();
  });
  return el;
}

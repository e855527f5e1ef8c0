// The annotation list of a window: one row per drawn annotation and per painted class mask,
// with its class (changeable), kind, provenance, a visibility toggle and zoom-to; and a switch
// that hides every annotation while looking at the imagery.

import { boundingExtent } from "ol/extent.js";
import { h } from "./ui.js";

function kindOf(f) {
  const type = f.getGeometry().getType();
  if (type === "Polygon") {
    const holes = f.getGeometry().getLinearRingCount() - 1;
    return holes ? `polygon, ${holes} hole(s)` : "polygon";
  }
  return type.toLowerCase();
}

function provenanceText(p) {
  if (p.origin !== "model") return "";
  return p.edited ? "model, edited" : "model";
}

/**
 * The list for the window map `wm`, its edits and painted masks (`paint` may be null).
 * `onEdit()` commits a change made here (class changes). Returns {el, refresh, toggleAll}.
 */
export function annotationList({ wm, paint, edits, classes, onEdit, canEdit }) {
  const rows = h("tbody");
  const hideAll = h("input", {
    type: "checkbox",
    testid: "hide-annotations",
    onchange: () => setAllHidden(hideAll.checked),
  });
  const el = h(
    "div.annlist",
    { testid: "ann-list" },
    h("label.hint", {}, hideAll, " Hide all annotations (L)"),
    h("table.compact", {}, rows),
  );

  function setAllHidden(hidden) {
    hideAll.checked = hidden;
    wm.annotationLayer.setVisible(!hidden);
    paint?.setVisible(!hidden);
  }

  function classSelect(value, onchange) {
    const select = h(
      "select",
      { "aria-label": "class", disabled: !canEdit(), onchange: () => onchange(Number(select.value)) },
      classes.map((c) => h("option", { value: c.value, selected: c.value === value }, c.label)),
    );
    return select;
  }

  function zoomTo(extent) {
    wm.map.getView().fit(extent, { padding: [48, 48, 48, 48], maxZoom: 19, duration: 0 });
  }

  function featureRow(f, i) {
    const hidden = Boolean(f.get("hidden"));
    return h(
      "tr",
      { testid: `ann-row-${i}` },
      h("td", {}, classSelect(f.get("class_value"), (v) => {
        f.set("class_value", v);
        onEdit();
      })),
      h("td", {}, kindOf(f), " ", h("span.muted", {}, provenanceText(f.getProperties()))),
      h(
        "td",
        {},
        h("input", {
          type: "checkbox",
          title: "visible",
          checked: !hidden,
          testid: `ann-visible-${i}`,
          onchange: (e) => {
            f.set("hidden", !e.target.checked);
            f.changed();
          },
        }),
      ),
      h("td", {}, h("button.small", { testid: `ann-zoom-${i}`, onclick: () => zoomTo(f.getGeometry().getExtent()) }, "Zoom")),
    );
  }

  function maskRow(cls) {
    const g = paint.grid;
    return h(
      "tr",
      { testid: `mask-row-${cls}` },
      h("td", {}, classSelect(cls, (v) => {
        if (v === cls) return;
        for (let i = 0; i < paint.labels.length; i++) if (paint.labels[i] === cls) paint.labels[i] = v;
        paint.restore(paint.labels);
        onEdit();
      })),
      h("td", {}, `mask, ${paint.count(cls)} px `, h("span.muted", {}, provenanceText(edits.provenance(cls)))),
      h(
        "td",
        {},
        h("input", {
          type: "checkbox",
          title: "visible",
          checked: !paint.isHidden(cls),
          testid: `mask-visible-${cls}`,
          onchange: (e) => paint.setHidden(cls, !e.target.checked),
        }),
      ),
      h(
        "td",
        {},
        h("button.small", {
          onclick: () => {
            const b = paint.bounds(cls);
            if (b) zoomTo(boundingExtent([g.toMap([b[0], b[1]]), g.toMap([b[2], b[3]]), g.toMap([b[0], b[3]]), g.toMap([b[2], b[1]])]));
          },
        }, "Zoom"),
      ),
    );
  }

  function refresh() {
    const feats = wm.annotations.getFeatures();
    const masks = paint ? paint.classes() : [];
    rows.replaceChildren(
      ...feats.map(featureRow),
      ...masks.map(maskRow),
      feats.length || masks.length ? null : h("tr", {}, h("td.muted", {}, "No annotations yet.")),
    );
  }

  return { el, refresh, toggleAll: () => setAllHidden(!hideAll.checked) };
}

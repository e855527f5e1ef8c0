// The labelling tools on a window map: select + modify, polygon, hole (cut into a polygon),
// split (a line across a polygon; the server cuts it, `onSplit(line, feature)`), point, and the
// painting tools (brush, eraser, fill; paint.js). Drawing snaps to existing
// vertices and edges and to the window's outline. Every finished edit calls `onEdit()` (the
// edit history's commit).

import Draw from "ol/interaction/Draw.js";
import Modify from "ol/interaction/Modify.js";
import Select from "ol/interaction/Select.js";
import Snap from "ol/interaction/Snap.js";
import LinearRing from "ol/geom/LinearRing.js";

export const PAINT_TOOLS = ["brush", "eraser", "fill"];

/** Tools bound to the window map `wm`, its painted masks (`paint`, may be null). */
export function createTools({ wm, paint, getClass, onEdit, onNotice, onSplit }) {
  const select = new Select({ layers: [wm.annotationLayer], style: (f, r) => wm.styleFn(f, r, true) });
  const modify = new Modify({ features: select.getFeatures() });
  const snaps = [new Snap({ source: wm.annotations }), new Snap({ source: wm.outline })];
  wm.map.addInteraction(select);
  wm.map.addInteraction(modify);
  modify.on("modifyend", () => onEdit());
  let draw = null;
  let sketching = false;
  const state = { tool: "select" };

  function addSnaps() {
    // snapping must come after the interactions it serves
    for (const s of snaps) {
      wm.map.removeInteraction(s);
      wm.map.addInteraction(s);
    }
  }

  /** Cut the ring drawn as a hole into the polygon that holds its first vertex. */
  function cutHole(ring) {
    const first = ring.getFirstCoordinate();
    const target = wm.annotations
      .getFeatures()
      .find((f) => f.getGeometry().getType() === "Polygon" && f.getGeometry().intersectsCoordinate(first));
    if (!target) {
      onNotice("Draw the hole inside a polygon (start it inside the polygon's area).");
      return;
    }
    target.getGeometry().appendLinearRing(new LinearRing(ring.getCoordinates()[0]));
    target.changed();
    onEdit();
  }

  /** The first polygon a line passes through (sampled along each segment). */
  function polygonCrossedBy(line) {
    const coords = line.getCoordinates();
    const samples = [];
    for (let i = 1; i < coords.length; i++) {
      const [a, b] = [coords[i - 1], coords[i]];
      for (let k = 0; k <= 64; k++) samples.push([a[0] + ((b[0] - a[0]) * k) / 64, a[1] + ((b[1] - a[1]) * k) / 64]);
    }
    return wm.annotations
      .getFeatures()
      .find((f) => f.getGeometry().getType() === "Polygon" && samples.some((p) => f.getGeometry().intersectsCoordinate(p)));
  }

  function setTool(tool) {
    if (PAINT_TOOLS.includes(tool) && !paint) {
      onNotice("Painting needs a per-pixel class task (segmentation) and the window's grid.");
      return false;
    }
    state.tool = tool;
    if (draw) wm.map.removeInteraction(draw);
    draw = null;
    sketching = false;
    select.getFeatures().clear();
    select.setActive(tool === "select");
    modify.setActive(tool === "select");
    paint?.setTool(PAINT_TOOLS.includes(tool) ? tool : null);
    if (tool === "polygon" || tool === "point" || tool === "hole" || tool === "split") {
      const type = { point: "Point", split: "LineString" }[tool] || "Polygon";
      draw = new Draw({ type });
      draw.on("drawstart", () => (sketching = true));
      draw.on("drawabort", () => (sketching = false));
      draw.on("drawend", (e) => {
        sketching = false;
        if (tool === "hole") {
          cutHole(e.feature.getGeometry());
          return;
        }
        if (tool === "split") {
          const line = e.feature.getGeometry();
          const target = polygonCrossedBy(line);
          if (!target) onNotice("Draw the line across a polygon, from outside it to outside it.");
          else onSplit(e.feature, target);
          return;
        }
        e.feature.setProperties({ class_value: getClass(), origin: "human", edited: false });
        wm.annotations.addFeature(e.feature);
        onEdit();
      });
      wm.map.addInteraction(draw);
    }
    addSnaps();
    return true;
  }

  return {
    select,
    modify,
    get tool() {
      return state.tool;
    },
    setTool,
    /** Esc: drop the shape being drawn. */
    cancel() {
      if (draw && sketching) {
        draw.abortDrawing();
        sketching = false;
        return true;
      }
      return false;
    },
    /** Backspace while drawing: take back the last vertex. */
    removeLastPoint() {
      if (draw && sketching) {
        draw.removeLastPoint();
        return true;
      }
      return false;
    },
    /** Remove the selected annotations from the working copy. */
    deleteSelected() {
      const chosen = select.getFeatures().getArray().slice();
      select.getFeatures().clear();
      for (const f of chosen) wm.annotations.removeFeature(f);
      if (chosen.length) onEdit();
      return chosen.length;
    },
    setEditable(editable) {
      if (!editable) setTool("select");
      modify.setActive(editable && state.tool === "select");
    },
  };
}

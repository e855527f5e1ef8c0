// Class masks painted on the window's pixel grid (10 m): brush, eraser and fill.
//
// The grid comes from GET /windows/{id}/grid: its CRS (with a PROJ string, registered with
// proj4js so OpenLayers can project it), affine transform and size. The mask is drawn in the
// window's own CRS, axis-aligned, and OpenLayers reprojects it onto the Web-Mercator map
// (nearest neighbour); a pointer is projected back into the CRS and through the inverse
// transform, so a pixel painted is exactly the pixel stored. `labels` holds one class value per
// pixel (-1: none); each class with pixels is one mask annotation (`{encoding: "rle", shape:
// [h, w], counts}`, row-major runs starting with unset), which the export burns pixel for pixel.

import ImageLayer from "ol/layer/Image.js";
import PointerInteraction from "ol/interaction/Pointer.js";
import { get as getProjection, transform } from "ol/proj.js";
import { register } from "ol/proj/proj4.js";
import ImageCanvasSource from "ol/source/ImageCanvas.js";
import proj4 from "proj4";

const NONE = -1;

/** The grid's projection (registered once per CRS) and pixel <-> map coordinate conversions. */
export function gridGeometry(grid) {
  if (!getProjection(grid.crs)) {
    proj4.defs(grid.crs, grid.proj4);
    register(proj4);
  }
  const [a, , c, , e, f] = grid.transform;
  const crs = grid.crs;
  return {
    crs,
    width: grid.width,
    height: grid.height,
    transform: grid.transform,
    /** Map (EPSG:3857) coordinate -> fractional (col, row). */
    toPixel(coordinate) {
      const [x, y] = transform(coordinate, "EPSG:3857", crs);
      return [(x - c) / a, (y - f) / e];
    },
    /** (col, row) -> map coordinate. */
    toMap([col, row]) {
      return transform([c + col * a, f + row * e], crs, "EPSG:3857");
    },
  };
}

/** Run-length encode `labels == value` (row-major, first run unset). */
export function encodeMask(labels, value, shape) {
  const counts = [];
  let current = false;
  let run = 0;
  let any = false;
  for (let i = 0; i < labels.length; i++) {
    const on = labels[i] === value;
    if (on !== current) {
      counts.push(run);
      run = 0;
      current = on;
    }
    if (on) any = true;
    run++;
  }
  counts.push(run);
  return any ? { encoding: "rle", shape, counts } : null;
}

/** Set `labels` to `value` where an RLE mask is set. */
export function decodeMaskInto(labels, mask, value) {
  let i = 0;
  let on = false;
  for (const n of mask.counts) {
    if (on) labels.fill(value, i, i + n);
    i += n;
    on = !on;
  }
}

function hexRgb(hex) {
  const n = parseInt((hex || "#888888").slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * The painted masks of one window on `map`: a layer drawing them, and brush / eraser / fill
 * interactions. `onEdit()` runs after each finished stroke or fill (the edit history's commit).
 */
export function createPaint(map, grid, classes, { onEdit, zIndex = 5 }) {
  const g = gridGeometry(grid);
  const { width, height } = g;
  const labels = new Int16Array(width * height).fill(NONE);
  const colour = Object.fromEntries(classes.map((c) => [c.value, hexRgb(c.color)]));
  const hidden = new Set();
  const state = { tool: null, cls: null, size: 3 };

  const pixels = document.createElement("canvas");
  pixels.width = width;
  pixels.height = height;
  function redrawPixels() {
    const ctx = pixels.getContext("2d");
    const img = ctx.createImageData(width, height);
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i];
      if (v === NONE || hidden.has(v)) continue;
      const rgb = colour[v] || [136, 136, 136];
      img.data.set([rgb[0], rgb[1], rgb[2], 255], i * 4);
    }
    ctx.putImageData(img, 0, 0);
    source.changed();
  }

  const [ga, , gc, , ge, gf] = g.transform;
  const source = new ImageCanvasSource({
    ratio: 1,
    projection: g.crs, // drawn in the window's CRS; OpenLayers reprojects it onto the map
    interpolate: false,
    canvasFunction(extent, resolution, pixelRatio, size) {
      const canvas = document.createElement("canvas");
      canvas.width = size[0];
      canvas.height = size[1];
      const ctx = canvas.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      const k = pixelRatio / resolution;
      // grid (col, row) -> canvas pixel: x right, y down from the extent's top-left
      ctx.setTransform(ga * k, 0, 0, -ge * k, (gc - extent[0]) * k, (extent[3] - gf) * k);
      ctx.drawImage(pixels, 0, 0);
      return canvas;
    },
  });
  const layer = new ImageLayer({ source, opacity: 0.55, zIndex });

  function stamp(col, row, value) {
    const r = (state.size - 1) / 2;
    const c0 = Math.round(col - r);
    const r0 = Math.round(row - r);
    for (let dr = 0; dr < state.size; dr++) {
      for (let dc = 0; dc < state.size; dc++) {
        // a round brush: corners of the square outside radius + 0.5 stay untouched
        if (state.size > 2 && (dc - r) ** 2 + (dr - r) ** 2 > (r + 0.5) ** 2) continue;
        const c = c0 + dc;
        const rr = r0 + dr;
        if (c >= 0 && c < width && rr >= 0 && rr < height) labels[rr * width + c] = value;
      }
    }
  }

  function strokeTo(from, to, value) {
    const steps = Math.max(1, Math.ceil(Math.hypot(to[0] - from[0], to[1] - from[1]) * 2));
    for (let s = 0; s <= steps; s++) {
      const f = s / steps;
      stamp(from[0] + (to[0] - from[0]) * f, from[1] + (to[1] - from[1]) * f, value);
    }
  }

  /** Flood fill (4-connected) from a pixel over pixels of its value; true if anything changed. */
  function fill(col, row, value) {
    const start = row * width + col;
    const old = labels[start];
    if (old === value) return false;
    const stack = [start];
    labels[start] = value;
    while (stack.length) {
      const i = stack.pop();
      const c = i % width;
      for (const j of [i - width, i + width, c > 0 ? i - 1 : -1, c < width - 1 ? i + 1 : -1]) {
        if (j >= 0 && j < labels.length && labels[j] === old) {
          labels[j] = value;
          stack.push(j);
        }
      }
    }
    return true;
  }

  function pixelAt(coordinate) {
    const [c, r] = g.toPixel(coordinate);
    return [c - 0.5, r - 0.5]; // pixel centres at integer + 0.5
  }

  let last = null;
  const interaction = new PointerInteraction({
    handleDownEvent(e) {
      if (!state.tool) return false;
      const p = pixelAt(e.coordinate);
      if (state.tool === "fill") {
        const col = Math.floor(p[0] + 0.5);
        const row = Math.floor(p[1] + 0.5);
        if (col < 0 || row < 0 || col >= width || row >= height || state.cls === null) return false;
        if (fill(col, row, state.cls)) {
          redrawPixels();
          onEdit();
        }
        return false;
      }
      if (state.tool === "brush" && state.cls === null) return false;
      last = p;
      strokeTo(p, p, value());
      redrawPixels();
      return true; // a drag paints, it does not pan
    },
    handleDragEvent(e) {
      const p = pixelAt(e.coordinate);
      strokeTo(last, p, value());
      last = p;
      redrawPixels();
    },
    handleUpEvent() {
      last = null;
      onEdit();
      return false;
    },
  });
  interaction.setActive(false);
  const value = () => (state.tool === "eraser" ? NONE : state.cls);

  map.addLayer(layer);
  map.addInteraction(interaction);

  return {
    layer,
    grid: g,
    labels,
    /** `brush`, `eraser`, `fill` or null (another tool). */
    setTool(tool) {
      state.tool = tool;
      interaction.setActive(Boolean(tool));
    },
    setClass(cls) {
      state.cls = cls;
    },
    get size() {
      return state.size;
    },
    setSize(n) {
      state.size = Math.max(1, Math.min(64, Math.round(n)));
    },
    /** Class values with painted pixels, ascending. */
    classes() {
      const seen = new Set(labels);
      seen.delete(NONE);
      return [...seen].sort((a, b) => a - b);
    },
    count(value) {
      let n = 0;
      for (const v of labels) if (v === value) n++;
      return n;
    },
    /** The mask annotation payload of one class (null: no pixels). */
    mask(value) {
      return encodeMask(labels, value, [height, width]);
    },
    /** [minCol, minRow, maxCol+1, maxRow+1] of a class's pixels, or null. */
    bounds(value) {
      let b = null;
      for (let i = 0; i < labels.length; i++) {
        if (labels[i] !== value) continue;
        const c = i % width;
        const r = (i - c) / width;
        b = b ? [Math.min(b[0], c), Math.min(b[1], r), Math.max(b[2], c + 1), Math.max(b[3], r + 1)] : [c, r, c + 1, r + 1];
      }
      return b;
    },
    snapshot: () => labels.slice(),
    restore(copy) {
      labels.set(copy);
      redrawPixels();
    },
    /** Replace everything with these mask annotations (AnnotationPublic with `mask`). */
    load(annotations) {
      labels.fill(NONE);
      for (const a of annotations) decodeMaskInto(labels, a.mask, a.class_value);
      redrawPixels();
    },
    setHidden(value, hide) {
      if (hide) hidden.add(value);
      else hidden.delete(value);
      redrawPixels();
    },
    isHidden: (value) => hidden.has(value),
    setVisible(v) {
      layer.setVisible(v);
    },
    /** The class at a pixel (tests and the annotation list). */
    at: (col, row) => labels[row * width + col],
  };
}

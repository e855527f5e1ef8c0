// The OpenLayers map of one window: context under it (a deployment's XYZ basemap, the low-
// resolution overview of the imagery around the window), the window's imagery of one time step
// (and a second step to compare with a swipe), a model's prediction as a tile layer (toggle,
// opacity), painted class masks, the window's outline, and its annotations in class colours
// (model-made pre-labels dashed until a person edits them). The view is Web Mercator
// (EPSG:3857); the API speaks WGS84 GeoJSON, converted here on the way in and out.

import "ol/ol.css";
import Map from "ol/Map.js";
import View from "ol/View.js";
import TileState from "ol/TileState.js";
import GeoJSON from "ol/format/GeoJSON.js";
import TileLayer from "ol/layer/Tile.js";
import VectorLayer from "ol/layer/Vector.js";
import VectorSource from "ol/source/Vector.js";
import XYZ from "ol/source/XYZ.js";
import { getRenderPixel } from "ol/render.js";
import { Circle as CircleStyle, Fill, Stroke, Style } from "ol/style.js";
import { fromLonLat } from "ol/proj.js";
import { createImageryLayer, loadAuthorized } from "./imagerylayer.js";

const GEOJSON = new GeoJSON({ dataProjection: "EPSG:4326", featureProjection: "EPSG:3857" });

/** Map layers from the bottom up. */
export const Z = {
  basemap: 0,
  context: 1,
  imagery: 2,
  compare: 3,
  overlay: 4,
  prediction: 5,
  masks: 6,
  outline: 7,
  annotations: 8,
};

function loadTile(tile, src) {
  loadAuthorized(tile, src, () => tile.setState(TileState.ERROR));
}

/** An XYZ source of API tiles (with the key) for a `{z}/{x}/{y}` URL template. */
export function predictionSource(template) {
  return new XYZ({ url: template, tileLoadFunction: loadTile, maxZoom: 20, transition: 0 });
}

function hexToRgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** A style function colouring features by their `class_value` from the class schema. */
export function classStyle(classes) {
  const colour = Object.fromEntries(classes.map((c) => [c.value, c.color]));
  const cache = {};
  return (feature, _resolution, selected = false) => {
    if (feature.get("hidden")) return null;
    const hex = colour[feature.get("class_value")] || "#888888";
    const model = feature.get("origin") === "model" && !feature.get("edited");
    const key = `${hex}:${selected}:${model}`;
    if (!cache[key]) {
      const stroke = new Stroke({
        color: selected ? "#ffffff" : hex,
        width: selected ? 3 : 2,
        lineDash: model ? [5, 4] : undefined,
      });
      const fill = new Fill({ color: hexToRgba(hex, selected ? 0.55 : 0.35) });
      cache[key] = new Style({
        stroke,
        fill,
        image: new CircleStyle({ radius: 6, fill: new Fill({ color: hex }), stroke }),
      });
    }
    return cache[key];
  };
}

/** Clip a layer's drawing to the part of the map right of `fraction()` of its width. */
function clipRightOf(layer, map, fraction) {
  layer.on("prerender", (event) => {
    const ctx = event.context;
    const [w, hgt] = map.getSize();
    const x = w * fraction();
    const corners = [
      [x, 0],
      [w, 0],
      [w, hgt],
      [x, hgt],
    ].map((p) => getRenderPixel(event, p));
    ctx.save();
    ctx.beginPath();
    ctx.moveTo(...corners[0]);
    for (const c of corners.slice(1)) ctx.lineTo(...c);
    ctx.closePath();
    ctx.clip();
  });
  layer.on("postrender", (event) => event.context.restore());
}

/** Build the map in `target` for a window (WindowPublic) and a project's classes.
 * `onImagery(state, step)` hears the imagery's loading state (see imagerylayer.js). */
export function createWindowMap(target, { window, classes, onImagery }) {
  const swipe = { fraction: 0.5 };
  const outline = new VectorSource({ features: [GEOJSON.readFeature(window.geometry)] });
  const annotations = new VectorSource();
  const styleFn = classStyle(classes);
  const basemap = new TileLayer({ zIndex: Z.basemap, visible: false });
  const context = new TileLayer({ zIndex: Z.context, visible: false, className: "context" });
  const imagery = createImageryLayer({
    onState: (state, step) => {
      // the map's veil ("loading imagery...") and what tests wait for
      target.dataset.imagery = state;
      target.dataset.imageryStep = step ?? "";
      onImagery?.(state, step);
    },
    zIndex: Z.imagery,
    className: "imagery", // a canvas of its own, so its pixels can be read back alone
  });
  const compare = createImageryLayer({
    zIndex: Z.compare,
    className: "compare",
    onLayer: (layer) => clipRightOf(layer, map, () => swipe.fraction),
  });
  const overlay = createImageryLayer({ zIndex: Z.overlay, className: "overlay" });
  const prediction = new TileLayer({ visible: false, opacity: 0.6, zIndex: Z.prediction });
  const annotationLayer = new VectorLayer({ source: annotations, style: styleFn, zIndex: Z.annotations });
  const map = new Map({
    target,
    layers: [
      basemap,
      context,
      ...imagery.layers,
      ...compare.layers,
      ...overlay.layers,
      prediction,
      new VectorLayer({
        source: outline,
        zIndex: Z.outline,
        style: new Style({ stroke: new Stroke({ color: "#ffd400", width: 2, lineDash: [6, 4] }) }),
      }),
      annotationLayer,
    ],
    view: new View({ projection: "EPSG:3857", maxZoom: 22 }),
  });
  map.on("rendercomplete", () => {
    imagery.settle();
    compare.settle();
    overlay.settle();
  });
  map.getView().fit(outline.getExtent(), { padding: [24, 24, 24, 24] });
  // a handle for scripts and end-to-end tests: where a lon/lat is drawn, the imagery's state
  // and the requests of its step, and the imagery's pixel at a map pixel
  globalThis.earthplat = {
    map,
    pixelOf: (lonlat) => map.getPixelFromCoordinate(fromLonLat(lonlat)),
    imagery: () => ({ ...imagery.status, requested: [...imagery.status.requested] }),
    compare: () => ({ ...compare.status, requested: [...compare.status.requested] }),
    overlay: () => ({ ...overlay.status, requested: [...overlay.status.requested] }),
    imageryPixel: (pixel) => {
      const data = imagery.active()?.getData(pixel);
      return data ? Array.from(data) : null;
    },
  };

  return {
    map,
    annotations,
    annotationLayer,
    outline,
    styleFn,
    imagery,
    /** Show one imagery step ({key, tiles} or {key, frame, extent}) or nothing (null);
     * `ahead`: the neighbouring steps' frame URLs or tile templates, fetched in advance. */
    setImagery(step, ahead) {
      imagery.show(step, ahead);
    },
    /** A second step shown right of the swipe line, or none (null). */
    setCompare(step) {
      compare.show(step);
      compare.setVisible(Boolean(step));
    },
    /** A class-map layer's step over the imagery (labels, land cover), or none (null). */
    setOverlay(step, opacity = 0.6) {
      overlay.show(step);
      overlay.setVisible(Boolean(step));
      overlay.setOpacity(opacity);
    },
    /** Where the swipe line is, as a fraction of the map's width. */
    setSwipe(fraction) {
      swipe.fraction = fraction;
      map.render();
    },
    /** The imagery around the window (an API XYZ template) or none. */
    setContext(template) {
      if (template) context.setSource(predictionSource(template));
      context.setVisible(Boolean(template));
    },
    /** A deployment's basemap ({url, attribution}: a plain XYZ service) or none. */
    setBasemap(basemap_) {
      if (basemap_?.url) {
        basemap.setSource(
          new XYZ({ url: basemap_.url, attributions: basemap_.attribution || undefined, crossOrigin: "anonymous" }),
        );
      }
      basemap.setVisible(Boolean(basemap_?.url));
    },
    predictionLayer: prediction,
    /** Show a prediction's tiles (URL template), or hide it (null). */
    setPrediction(template) {
      if (template) prediction.setSource(predictionSource(template));
      prediction.setVisible(Boolean(template));
    },
    /** Replace the drawn annotations with the API's (AnnotationPublic list). */
    setAnnotations(list) {
      annotations.clear();
      annotations.addFeatures(list.map(readAnnotation));
    },
    dispose() {
      map.setTarget(undefined);
    },
  };
}

export function readAnnotation(a) {
  const f = GEOJSON.readFeature(a.geometry);
  f.setProperties({
    ann_id: a.id,
    version: a.version,
    class_value: a.class_value,
    origin: a.origin || "human",
    edited: Boolean(a.edited),
    dirty: false,
  });
  return f;
}

/** A feature's geometry as WGS84 GeoJSON for the API. */
export function writeGeometry(feature) {
  return GEOJSON.writeGeometryObject(feature.getGeometry(), { decimals: 8 });
}

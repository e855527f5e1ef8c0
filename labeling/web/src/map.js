// The OpenLayers map of one window: imagery tiles (fetched with the API key), a model's
// prediction as a tile layer (toggle, opacity), the window's outline, and its annotations in
// class colours (model-made pre-labels dashed until a person edits them). The view is Web Mercator (EPSG:3857); the
// API speaks WGS84 GeoJSON, converted here on the way in and out.

import "ol/ol.css";
import Map from "ol/Map.js";
import View from "ol/View.js";
import TileState from "ol/TileState.js";
import GeoJSON from "ol/format/GeoJSON.js";
import TileLayer from "ol/layer/Tile.js";
import VectorLayer from "ol/layer/Vector.js";
import VectorSource from "ol/source/Vector.js";
import XYZ from "ol/source/XYZ.js";
import { Circle as CircleStyle, Fill, Stroke, Style } from "ol/style.js";
import { fromLonLat } from "ol/proj.js";
import { authHeaders } from "./api.js";

const GEOJSON = new GeoJSON({ dataProjection: "EPSG:4326", featureProjection: "EPSG:3857" });

/** Tiles need the Authorization header, which an <img> cannot send: fetch, then a blob URL. */
function loadTile(tile, src) {
  const image = tile.getImage();
  fetch(src, { headers: authHeaders() })
    .then((r) => {
      if (!r.ok) throw new Error(`tile ${r.status}`);
      return r.blob();
    })
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      image.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
      image.src = url;
    })
    .catch(() => tile.setState(TileState.ERROR));
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

/** Build the map in `target` for a window (WindowPublic) and a project's classes. */
export function createWindowMap(target, { window, classes }) {
  const imagery = new XYZ({ tileLoadFunction: loadTile, maxZoom: 20, transition: 0 });
  const outline = new VectorSource({ features: [GEOJSON.readFeature(window.geometry)] });
  const annotations = new VectorSource();
  const styleFn = classStyle(classes);
  const prediction = new TileLayer({ visible: false, opacity: 0.6 });
  const map = new Map({
    target,
    layers: [
      new TileLayer({ source: imagery }),
      prediction,
      new VectorLayer({
        source: outline,
        style: new Style({ stroke: new Stroke({ color: "#ffd400", width: 2, lineDash: [6, 4] }) }),
      }),
      new VectorLayer({ source: annotations, style: styleFn }),
    ],
    view: new View({ projection: "EPSG:3857", maxZoom: 22 }),
  });
  map.getView().fit(outline.getExtent(), { padding: [24, 24, 24, 24] });
  const annotationLayer = map.getLayers().item(3);
  // a handle for scripts and end-to-end tests: where on the map a lon/lat is drawn
  globalThis.earthplat = { map, pixelOf: (lonlat) => map.getPixelFromCoordinate(fromLonLat(lonlat)) };

  return {
    map,
    annotations,
    annotationLayer,
    styleFn,
    /** Show `template` ({z}/{x}/{y} left to fill), or nothing. */
    setImagery(template) {
      if (template) imagery.setUrl(template);
      else imagery.clear();
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

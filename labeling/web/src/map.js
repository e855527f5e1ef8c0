// The OpenLayers map of one window: imagery tiles (fetched with the API key), the window's
// outline, and its annotations in class colours. The view is Web Mercator (EPSG:3857); the
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
    const key = `${hex}:${selected}`;
    if (!cache[key]) {
      const stroke = new Stroke({ color: selected ? "#ffffff" : hex, width: selected ? 3 : 2 });
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
  const map = new Map({
    target,
    layers: [
      new TileLayer({ source: imagery }),
      new VectorLayer({
        source: outline,
        style: new Style({ stroke: new Stroke({ color: "#ffd400", width: 2, lineDash: [6, 4] }) }),
      }),
      new VectorLayer({ source: annotations, style: styleFn }),
    ],
    view: new View({ projection: "EPSG:3857", maxZoom: 22 }),
  });
  map.getView().fit(outline.getExtent(), { padding: [24, 24, 24, 24] });
  const annotationLayer = map.getLayers().item(2);

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
  f.setProperties({ ann_id: a.id, version: a.version, class_value: a.class_value, dirty: false });
  return f;
}

/** A feature's geometry as WGS84 GeoJSON for the API. */
export function writeGeometry(feature) {
  return GEOJSON.writeGeometryObject(feature.getGeometry(), { decimals: 8 });
}

// The project's overview map: every window's footprint coloured by status (GET
// /projects/:id/windows/overview), a click opens the window, a box can be drawn as the AOI of
// an inference run, and an AOI run's prediction mosaic can be laid over it.

import Map from "ol/Map.js";
import View from "ol/View.js";
import { createBox } from "ol/interaction/Draw.js";
import Draw from "ol/interaction/Draw.js";
import GeoJSON from "ol/format/GeoJSON.js";
import TileLayer from "ol/layer/Tile.js";
import VectorLayer from "ol/layer/Vector.js";
import VectorSource from "ol/source/Vector.js";
import { transformExtent } from "ol/proj.js";
import { Fill, Stroke, Style } from "ol/style.js";
import { predictionSource } from "./map.js";

const GEOJSON = new GeoJSON({ dataProjection: "EPSG:4326", featureProjection: "EPSG:3857" });

/** Status colours of the overview and its legend (same hues as the status badges). */
export const STATUS_COLOURS = {
  unlabeled: "#9aa4b1",
  in_progress: "#3b7ddd",
  submitted: "#e0a800",
  accepted: "#2e9e44",
  rejected: "#c62828",
};

const styles = Object.fromEntries(
  Object.entries(STATUS_COLOURS).map(([s, c]) => [
    s,
    new Style({ stroke: new Stroke({ color: c, width: 1.5 }), fill: new Fill({ color: `${c}66` }) }),
  ]),
);

export function createOverviewMap(target, { onOpen }) {
  const windows = new VectorSource();
  const aoi = new VectorSource();
  const mosaic = new TileLayer({ visible: false, opacity: 0.8 });
  const map = new Map({
    target,
    layers: [
      mosaic,
      new VectorLayer({ source: windows, style: (f) => styles[f.get("status")] || styles.unlabeled }),
      new VectorLayer({
        source: aoi,
        style: new Style({ stroke: new Stroke({ color: "#ff00aa", width: 2, lineDash: [6, 4] }) }),
      }),
    ],
    view: new View({ projection: "EPSG:3857", maxZoom: 22, center: [0, 0], zoom: 2 }),
  });
  map.on("singleclick", (e) => {
    if (draw) return;
    const f = map.forEachFeatureAtPixel(e.pixel, (x) => x, {
      layerFilter: (l) => l.getSource() === windows,
    });
    if (f && onOpen) onOpen(f.get("id"));
  });
  let draw = null;

  return {
    map,
    windows,
    /** Show a FeatureCollection of windows ({id, name, status, valid_fraction}). */
    setWindows(fc, { fit = true } = {}) {
      windows.clear();
      windows.addFeatures(GEOJSON.readFeatures(fc));
      if (fit && windows.getFeatures().length) {
        map.getView().fit(windows.getExtent(), { padding: [16, 16, 16, 16], maxZoom: 16 });
      }
    },
    /** Let the user drag a box; resolves with its WGS84 bbox. */
    drawAoi() {
      aoi.clear();
      if (draw) map.removeInteraction(draw);
      draw = new Draw({ source: aoi, type: "Circle", geometryFunction: createBox() });
      map.addInteraction(draw);
      return new Promise((resolve) => {
        draw.on("drawend", (e) => {
          const ext = e.feature.getGeometry().getExtent();
          map.removeInteraction(draw);
          draw = null;
          resolve(transformExtent(ext, "EPSG:3857", "EPSG:4326").map((v) => +v.toFixed(6)));
        });
      });
    },
    clearAoi() {
      aoi.clear();
    },
    /** Lay an AOI prediction mosaic (tile URL template) over the map, or remove it. */
    setMosaic(template, opacity = 0.8) {
      if (!template) {
        mosaic.setVisible(false);
        return;
      }
      mosaic.setSource(predictionSource(template));
      mosaic.setOpacity(opacity);
      mosaic.setVisible(true);
    },
    mosaicLayer: mosaic,
    dispose() {
      map.setTarget(undefined);
    },
  };
}

// The imagery of one time step on the window map, as XYZ tiles or, where the API offers it for
// a small window, one image per step (fewer requests). Either way the neighbouring steps are
// fetched ahead: their frames at once, their tiles in view once this step is on screen.
//
// Each step gets a new layer and source (a layer's renderer keeps drawing its last image or
// tiles until new ones load, whatever the source), so the map never shows another step's
// pixels under the new step's label: until the new step is in, the layer is empty and `state` is "loading" (the map
// shows a loading veil). `onState(state, step)` reports "loading" / "ready" / "error"; "ready"
// comes with the map's next complete render once no request of the step is pending (`settle`,
// called on the map's rendercomplete), so it means the step's pixels are on screen.

import LayerGroup from "ol/layer/Group.js";
import ImageLayer from "ol/layer/Image.js";
import TileLayer from "ol/layer/Tile.js";
import ImageStatic from "ol/source/ImageStatic.js";
import XYZ from "ol/source/XYZ.js";
import { authHeaders } from "./api.js";

/** Blob URLs of fetched images by request URL (frames fetched ahead; few, small). */
const blobs = new Map();
const KEEP = 16;

/** Fetch `src` with the API key, as a blob URL (cached). */
export function fetchBlobUrl(src) {
  if (!blobs.has(src)) {
    const p = fetch(src, { headers: authHeaders() }).then((r) => {
      if (!r.ok) throw new Error(`${src}: ${r.status}`);
      return r.blob().then((b) => URL.createObjectURL(b));
    });
    p.catch(() => blobs.delete(src));
    blobs.set(src, p);
    while (blobs.size > KEEP) {
      const [oldest, promise] = blobs.entries().next().value;
      blobs.delete(oldest);
      promise.then((u) => URL.revokeObjectURL(u)).catch(() => {});
    }
  }
  return blobs.get(src);
}

/** Tiles of the neighbouring steps fetched ahead, as blobs by request URL (bounded). */
const aheadTiles = new Map();
const KEEP_TILES = 256;

function fetchBlob(src) {
  return fetch(src, { headers: authHeaders() }).then((r) => {
    if (!r.ok) throw new Error(`${src}: ${r.status}`);
    return r.blob();
  });
}

/** Fetch the tile `src` ahead of its step (kept until KEEP_TILES newer ones). */
function prefetchTile(src) {
  if (aheadTiles.has(src)) return;
  const p = fetchBlob(src);
  p.catch(() => aheadTiles.delete(src));
  aheadTiles.set(src, p);
  while (aheadTiles.size > KEEP_TILES) aheadTiles.delete(aheadTiles.keys().next().value);
}

/** Tiles need the Authorization header, which an <img> cannot send: fetch (or take the tile
 * fetched ahead), then a blob URL. */
export function loadAuthorized(tileOrImage, src, onError) {
  const image = tileOrImage.getImage();
  (aheadTiles.get(src) ?? fetchBlob(src))
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      image.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
      image.src = url;
    })
    .catch(onError);
}

/** A layer group showing one step at a time; see the module comment. `onLayer(layer)` hears
 * each new layer (e.g. to clip it). */
export function createImageryLayer({ onState, onLayer, zIndex = 0, className = "ol-layer" }) {
  const group = new LayerGroup({ zIndex });
  let current = null;
  const status = { state: "empty", step: null, requested: [] };
  let generation = 0;
  let pending = 0;
  let started = false;
  let failed = false;
  let coords = []; // tile coordinates the step's XYZ source asked for
  let aheadTemplates = []; // XYZ templates of the neighbouring steps, fetched once ready

  /** The neighbouring steps' tiles where this step's are, once this step is on screen (so
   * they never queue in front of its own). */
  function fetchAhead() {
    const seen = new Set(coords.map((c) => c.join("/")));
    for (const template of aheadTemplates) {
      for (const key of seen) {
        const [z, x, y] = key.split("/");
        prefetchTile(template.replace("{z}", z).replace("{x}", x).replace("{y}", y));
      }
    }
    aheadTemplates = [];
  }

  function report(state, gen) {
    if (gen !== generation) return; // a later step has started
    status.state = state;
    onState?.(state, status.step);
  }

  function tileSource(template, gen) {
    const source = new XYZ({
      url: template,
      maxZoom: 20,
      transition: 0,
      tileLoadFunction: (tile, src) => {
        status.requested.push(src);
        if (gen === generation) coords.push(tile.getTileCoord());
        loadAuthorized(tile, src, () => tile.setState(3 /* TileState.ERROR */));
      },
    });
    source.on("tileloadstart", () => gen === generation && (pending++, (started = true)));
    const done = (ok) => {
      if (gen !== generation) return;
      pending--;
      failed ||= !ok;
    };
    source.on("tileloadend", () => done(true));
    source.on("tileloaderror", () => done(false));
    return source;
  }

  function frameSource(url, extent, gen) {
    const source = new ImageStatic({
      url,
      imageExtent: extent,
      interpolate: false,
      imageLoadFunction: (image, src) => {
        status.requested.push(src);
        if (gen === generation) (pending++, (started = true));
        const img = image.getImage();
        fetchBlobUrl(src)
          .then((u) => {
            img.src = u;
          })
          .catch(() => report("error", gen));
      },
    });
    source.on("imageloadend", () => gen === generation && pending--);
    source.on("imageloaderror", () => gen === generation && (pending--, (failed = true)));
    return source;
  }

  return {
    layers: [group],
    status,
    /**
     * Show one step: `{key, tiles}` (an XYZ template) or `{key, frame, extent}` (one image over
     * an EPSG:3857 extent), or null for nothing. `ahead`: the neighbouring steps' frame URLs
     * (fetched now) or XYZ templates (their tiles in view fetched once this step is ready).
     */
    show(step, ahead = []) {
      generation++;
      const gen = generation;
      status.step = step?.key ?? null;
      status.requested = [];
      pending = 0;
      started = false;
      failed = false;
      coords = [];
      aheadTemplates = step?.frame ? [] : ahead;
      group.getLayers().clear();
      current = null;
      if (!step) {
        report("empty", gen);
        return;
      }
      report("loading", gen);
      current = step.frame
        ? new ImageLayer({ className, source: frameSource(step.frame, step.extent, gen) })
        : new TileLayer({ className, source: tileSource(step.tiles, gen) });
      onLayer?.(current);
      group.getLayers().push(current);
      if (step.frame) for (const url of ahead) fetchBlobUrl(url).catch(() => {});
    },
    /** After a complete render of the map: the step is on screen once nothing is pending. */
    settle() {
      if (status.state !== "loading" || !started || pending > 0) return;
      report(failed ? "error" : "ready", generation);
      if (!failed) fetchAhead();
    },
    setVisible(v) {
      group.setVisible(v);
    },
    setOpacity(o) {
      group.setOpacity(o);
    },
    /** The layer now drawing (for pixel reads), or null. */
    active: () => current,
  };
}

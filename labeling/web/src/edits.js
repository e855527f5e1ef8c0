// The window's annotations as an editable working copy, with undo/redo and saving.
//
// The working copy is what the map shows: the vector features (polygons, points; each has a
// client key `ckey`) and the painted class masks (one mask annotation per class). The saved copy
// is what the server holds, with each annotation's id and version. Every edit commits a
// snapshot of the working copy to the history; undo and redo restore snapshots, and work across
// saves: saving sends the difference between the working and the saved copy (POST new, PATCH
// changed with If-Match, DELETE gone), so undoing a saved edit and saving again undoes it on
// the server too.

import Feature from "ol/Feature.js";
import { api } from "./api.js";
import { readAnnotation, writeGeometry } from "./map.js";

const DEPTH = 200;
let nextKey = 1;
const newKey = () => `k${nextKey++}`;

function content(f) {
  return JSON.stringify([writeGeometry(f), f.get("class_value")]);
}

export function createEdits({ source, paint, wid, onChange }) {
  const saved = new Map(); // ckey -> content string (features)
  const ids = new Map(); // ckey -> {id, version} on the server
  const savedMasks = new Map(); // class value -> RLE JSON
  const maskIds = new Map(); // class value -> {id, version}
  const meta = new Map(); // ckey -> {origin, edited}; mask class -> same (as the server says)
  let history = [];
  let at = -1;

  function snapshot() {
    return {
      feats: source.getFeatures().map((f) => ({
        ckey: f.get("ckey"),
        geometry: f.getGeometry().clone(),
        class_value: f.get("class_value"),
        hidden: Boolean(f.get("hidden")),
      })),
      labels: paint ? paint.snapshot() : null,
    };
  }

  function restore(snap) {
    source.clear();
    source.addFeatures(
      snap.feats.map((s) => {
        const f = new Feature(s.geometry.clone());
        f.setProperties({ ckey: s.ckey, class_value: s.class_value, hidden: s.hidden });
        decorate(f);
        return f;
      }),
    );
    if (paint && snap.labels) paint.restore(snap.labels);
    onChange();
  }

  /** The server-side facts a feature shows (id, version, provenance) from its ckey. */
  function decorate(f) {
    const key = f.get("ckey");
    const id = ids.get(key);
    const m = meta.get(key) || { origin: "human", edited: false };
    f.setProperties({ ann_id: id?.id ?? null, version: id?.version ?? null, ...m });
  }

  /** Take the server's annotations as both the working and the saved copy. */
  function adopt(annotations) {
    saved.clear();
    ids.clear();
    savedMasks.clear();
    maskIds.clear();
    meta.clear();
    const feats = [];
    const masks = [];
    for (const a of annotations) {
      const m = { origin: a.origin || "human", edited: Boolean(a.edited) };
      if (a.mask) {
        masks.push(a);
        maskIds.set(a.class_value, { id: a.id, version: a.version });
        savedMasks.set(a.class_value, JSON.stringify(a.mask.counts));
        meta.set(`mask:${a.class_value}`, m);
        continue;
      }
      const f = readAnnotation(a);
      const key = newKey();
      f.set("ckey", key);
      ids.set(key, { id: a.id, version: a.version });
      meta.set(key, m);
      saved.set(key, content(f));
      feats.push(f);
    }
    source.clear();
    source.addFeatures(feats);
    if (paint) paint.load(masks);
  }

  /** What saving would send: [{kind: create|update|delete, ...}]. */
  function changes() {
    const out = [];
    const present = new Set();
    for (const f of source.getFeatures()) {
      const key = f.get("ckey");
      present.add(key);
      if (!ids.has(key)) out.push({ kind: "create", key, f });
      else if (saved.get(key) !== content(f)) out.push({ kind: "update", key, f });
    }
    for (const key of ids.keys()) if (!present.has(key)) out.push({ kind: "delete", key });
    if (paint) {
      const classes = new Set([...maskIds.keys(), ...paint.classes()]);
      for (const cls of classes) {
        const mask = paint.mask(cls);
        const id = maskIds.get(cls);
        if (!mask && id) out.push({ kind: "delete", cls });
        else if (mask && !id) out.push({ kind: "create", cls, mask });
        else if (mask && savedMasks.get(cls) !== JSON.stringify(mask.counts))
          out.push({ kind: "update", cls, mask });
      }
    }
    return out;
  }

  async function send(change) {
    const ident = change.cls !== undefined ? maskIds.get(change.cls) : ids.get(change.key);
    const ifMatch = ident ? { "If-Match": `"${ident.version}"` } : {};
    if (change.kind === "delete") {
      await api(`/annotations/${ident.id}`, { method: "DELETE", headers: ifMatch });
      if (change.cls !== undefined) {
        maskIds.delete(change.cls);
        savedMasks.delete(change.cls);
      } else {
        ids.delete(change.key);
        saved.delete(change.key);
      }
      return;
    }
    const body =
      change.cls !== undefined
        ? { mask: change.mask, class_value: change.cls }
        : { geometry: writeGeometry(change.f), class_value: change.f.get("class_value") };
    const a =
      change.kind === "create"
        ? await api(`/windows/${wid}/annotations`, { method: "POST", body })
        : await api(`/annotations/${ident.id}`, { method: "PATCH", body, headers: ifMatch });
    const m = { origin: a.origin || "human", edited: Boolean(a.edited) };
    if (change.cls !== undefined) {
      maskIds.set(change.cls, { id: a.id, version: a.version });
      savedMasks.set(change.cls, JSON.stringify(change.mask.counts));
      meta.set(`mask:${change.cls}`, m);
    } else {
      ids.set(change.key, { id: a.id, version: a.version });
      saved.set(change.key, content(change.f));
      meta.set(change.key, m);
      decorate(change.f);
    }
  }

  const edits = {
    /** Load the server's annotations and start a fresh history. */
    reset(annotations) {
      adopt(annotations);
      history = [snapshot()];
      at = 0;
      onChange();
    },
    /** The server changed the annotations (pre-labels, merge, split): take them, keeping the
     * history, so the change can be undone too. */
    rebase(annotations) {
      adopt(annotations);
      edits.commit();
    },
    /** Record the working copy after an edit (new features get their client key here). */
    commit() {
      for (const f of source.getFeatures()) {
        if (!f.get("ckey")) {
          f.set("ckey", newKey());
          decorate(f);
        }
      }
      history = history.slice(0, at + 1);
      history.push(snapshot());
      if (history.length > DEPTH) history.shift();
      at = history.length - 1;
      onChange();
    },
    canUndo: () => at > 0,
    canRedo: () => at < history.length - 1,
    undo() {
      if (at <= 0) return false;
      at--;
      restore(history[at]);
      return true;
    },
    redo() {
      if (at >= history.length - 1) return false;
      at++;
      restore(history[at]);
      return true;
    },
    changes,
    /** Send every change; stops at the first error (what was sent stays saved). */
    async save() {
      const todo = changes();
      for (const c of todo) await send(c);
      onChange();
      return todo.length;
    },
    /** Server id/version and provenance of a feature's or a mask class's annotation. */
    identity: (f) => (typeof f === "number" ? maskIds.get(f) : ids.get(f.get("ckey"))),
    provenance: (cls) => meta.get(`mask:${cls}`) || { origin: "human", edited: false },
  };
  return edits;
}

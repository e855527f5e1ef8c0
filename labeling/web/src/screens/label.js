// The labelling view of one window: imagery (layer, time slider, preset), the model's
// predictions (overlay, legend, "use as labels"), the class picker, drawing tools (polygon,
// point, select + modify, delete), save with optimistic concurrency (PATCH with If-Match: the
// version read; a stale version gets 409 and changes nothing), the window's claim (claim,
// release, skip; a window claimed by someone else is read-only), submit, and "more like this".

import Draw from "ol/interaction/Draw.js";
import Modify from "ol/interaction/Modify.js";
import Select from "ol/interaction/Select.js";
import { api } from "../api.js";
import { imageryControls } from "../imagery.js";
import { createWindowMap, writeGeometry } from "../map.js";
import { predictionsPanel } from "../predictions.js";
import { can, currentUser, projectRole } from "../session.js";
import { similarPanel } from "../similar.js";
import { clearError, fmtTime, guard, h, screenMount, notice, showError, statusBadge } from "../ui.js";

const EDITABLE = ["unlabeled", "in_progress", "rejected"];

/** Load what a window view needs: project, window, tile metadata, annotations, role and
 * reviews (the latest one explains a rejection). */
export async function loadWindow(pid, wid) {
  const [project, window, info, annotations, role, reviews, me] = await Promise.all([
    api(`/projects/${pid}`),
    api(`/windows/${wid}`),
    api(`/tiles/${wid}`),
    api(`/windows/${wid}/annotations`),
    projectRole(pid),
    api(`/windows/${wid}/reviews`),
    currentUser(),
  ]);
  return { project, window, info, annotations, role, reviews, me };
}

/** "3 annotation(s): 2 model-made (1 edited by a person)". */
export function provenance(annotations) {
  const model = annotations.filter((a) => a.origin === "model");
  const edited = model.filter((a) => a.edited).length;
  return model.length
    ? `${model.length} model-made (${edited} edited by a person, ${model.length - edited} as the model drew them)`
    : "all drawn by people";
}

/** Whether someone other than `me` holds a current claim on the window. */
export function claimedByOther(w, me) {
  return Boolean(w.locked_by && w.locked_by !== me.id && new Date(w.locked_until) > new Date());
}

/** The last review's verdict, shown while the window is rejected. */
function verdict(w, reviews) {
  const last = reviews.at(-1);
  if (w.status !== "rejected" || !last) return null;
  return h(
    "p.rejected",
    { testid: "rejection" },
    "Rejected by the reviewer",
    last.comment ? `: "${last.comment}"` : ".",
    " Fix the labels and submit again.",
  );
}

export function crumbs(project, label) {
  return h(
    "p.crumbs",
    {},
    h("a", { href: "#/projects" }, "Projects"),
    " / ",
    h("a", { href: `#/projects/${project.id}` }, project.name),
    " / ",
    label,
  );
}

export async function labelScreen(pid, wid) {
  const mount = screenMount();
  mount(h("p", {}, "Loading..."));
  const data = await guard(() => loadWindow(pid, wid));
  if (!data) return;
  const { project, info, role, me } = data;
  let win = data.window;

  const mapDiv = h("div.map", { testid: "map" });
  const statusEl = h("span", {}, statusBadge(win.status));
  const summary = h("p.muted", { testid: "ann-summary" });
  const tools = h("div.tools");
  const rejection = verdict(win, data.reviews);
  const panel = h(
    "aside.panel",
    {},
    h("h2", { testid: "window-name" }, win.name),
    h("p", {}, "Status: ", statusEl),
    rejection,
  );
  const claimEl = h("p.claim", { testid: "claim" });
  const claimTools = h("div.toolbar");
  const origins = h("p.hint", { testid: "ann-provenance" });
  mount(crumbs(project, win.name), h("div.workspace", {}, mapDiv, panel));
  if (mount.stale()) return; // the user moved on while this loaded
  const wm = createWindowMap(mapDiv, { window: win, classes: project.classes });
  wm.setAnnotations(data.annotations);
  origins.textContent = provenance(data.annotations);
  panel.append(
    claimEl,
    claimTools,
    h("h3", {}, "Imagery"),
    imageryControls(info, wm),
    h("h3", {}, "Predictions"),
    predictionsPanel({
      wid,
      info,
      winMap: wm,
      canLabel: can(role, "labeler"),
      onPrelabels: () => reload(),
    }),
    h("h3", {}, "Labels"),
    tools,
    summary,
    origins,
  );

  // --- class picker ---------------------------------------------------------------------------
  const state = { cls: project.classes[0]?.value ?? null, tool: "select" };
  const select = new Select({
    layers: [wm.annotationLayer],
    style: (f, r) => wm.styleFn(f, r, true),
  });
  const modify = new Modify({ features: select.getFeatures() });
  let draw = null;
  wm.map.addInteraction(select);
  wm.map.addInteraction(modify);

  const dirty = () => wm.annotations.getFeatures().filter((f) => f.get("dirty"));
  const refreshSummary = () => {
    const n = wm.annotations.getFeatures().length;
    const chosen = select.getFeatures().getLength();
    summary.textContent = `${n} annotation(s), ${dirty().length} unsaved, ${chosen} selected`;
  };
  const markDirty = (f) => {
    f.set("dirty", true);
    refreshSummary();
  };
  modify.on("modifyend", (e) => e.features.forEach(markDirty));
  wm.annotations.on(["addfeature", "removefeature", "clear"], refreshSummary);
  select.getFeatures().on(["add", "remove"], refreshSummary);
  refreshSummary();

  const classPicker = h(
    "fieldset.classes",
    { testid: "class-picker" },
    h("legend", {}, "Class"),
    project.classes.map((c) =>
      h(
        "label",
        {},
        h("input", {
          type: "radio",
          name: "class",
          value: c.value,
          checked: c.value === state.cls,
          testid: `class-${c.value}`,
          onchange: () => {
            state.cls = c.value;
            // re-class the selected annotations
            select.getFeatures().forEach((f) => {
              f.set("class_value", c.value);
              markDirty(f);
            });
          },
        }),
        h("span.swatch", { style: `background:${c.color}` }),
        c.label,
      ),
    ),
  );

  // picking an annotation shows its class in the picker (so another pick re-classes it)
  select.on("select", (e) => {
    const cls = e.selected[0]?.get("class_value");
    if (cls === undefined || cls === null) return;
    state.cls = cls;
    const radio = classPicker.querySelector(`input[value="${cls}"]`);
    if (radio) radio.checked = true;
  });

  // --- drawing tools --------------------------------------------------------------------------
  function setTool(tool) {
    state.tool = tool;
    if (draw) wm.map.removeInteraction(draw);
    draw = null;
    select.getFeatures().clear();
    select.setActive(tool === "select");
    modify.setActive(tool === "select");
    if (tool === "polygon" || tool === "point") {
      draw = new Draw({ source: wm.annotations, type: tool === "polygon" ? "Polygon" : "Point" });
      draw.on("drawend", (e) => {
        e.feature.setProperties({ ann_id: null, version: null, class_value: state.cls });
        markDirty(e.feature);
      });
      wm.map.addInteraction(draw);
    }
    for (const b of toolButtons) b.classList.toggle("active", b.dataset.tool === tool);
  }
  const toolButtons = [
    ["select", "Select / edit"],
    ["polygon", "Polygon"],
    ["point", "Point"],
  ].map(([tool, label]) =>
    h("button", { "data-tool": tool, testid: `tool-${tool}`, onclick: () => setTool(tool) }, label),
  );

  // --- writes ---------------------------------------------------------------------------------
  function writeError(e) {
    if (e.status === 409 && /version/.test(e.detail)) {
      showError(
        {
          status: 409,
          detail:
            "Conflict: this annotation was changed by someone else since you loaded it; your " +
            `change was not saved. (${e.detail})`,
          fix: "Reload to get the current version, then redo your change.",
        },
        h("button", { onclick: reload, testid: "conflict-reload" }, "Reload"),
      );
    } else if (e.status === 404) {
      showError({ ...e, detail: `${e.detail} (deleted by someone else?)`,
        fix: "Reload to see the window's current annotations." });
    } else {
      showError(e);
    }
  }

  async function save() {
    const todo = dirty();
    if (!todo.length) {
      notice("Nothing to save.");
      return true;
    }
    try {
      for (const f of todo) {
        const body = { geometry: writeGeometry(f), class_value: f.get("class_value") };
        const id = f.get("ann_id");
        const a = id
          ? await api(`/annotations/${id}`, {
              method: "PATCH",
              body,
              headers: { "If-Match": `"${f.get("version")}"` },
            })
          : await api(`/windows/${wid}/annotations`, { method: "POST", body });
        f.setProperties({ ann_id: a.id, version: a.version, dirty: false });
      }
    } catch (e) {
      writeError(e);
      refreshSummary();
      return false;
    }
    clearError();
    refreshSummary();
    notice(`Saved ${todo.length} annotation(s).`);
    await refreshProvenance();
    await refreshWindow();
    return true;
  }

  async function deleteSelected() {
    const chosen = select.getFeatures().getArray().slice();
    if (!chosen.length) {
      notice("Select an annotation first (Select / edit tool).");
      return;
    }
    try {
      for (const f of chosen) {
        const id = f.get("ann_id");
        if (id) {
          await api(`/annotations/${id}`, {
            method: "DELETE",
            headers: { "If-Match": `"${f.get("version")}"` },
          });
        }
        select.getFeatures().remove(f);
        wm.annotations.removeFeature(f);
      }
      notice(`Deleted ${chosen.length} annotation(s).`);
      await refreshProvenance();
    } catch (e) {
      writeError(e);
    }
  }

  /** Who made the window's annotations (a person's edit of a pre-label marks it edited). */
  async function refreshProvenance() {
    const anns = await guard(() => api(`/windows/${wid}/annotations`));
    if (!anns) return;
    origins.textContent = provenance(anns);
    const byId = Object.fromEntries(anns.map((a) => [a.id, a]));
    for (const f of wm.annotations.getFeatures()) {
      const a = byId[f.get("ann_id")];
      if (a) f.setProperties({ origin: a.origin, edited: a.edited });
    }
  }

  async function reload() {
    const anns = await guard(() => api(`/windows/${wid}/annotations`));
    if (!anns) return;
    select.getFeatures().clear();
    wm.setAnnotations(anns);
    origins.textContent = provenance(anns);
    clearError();
    await refreshWindow();
  }

  // --- the claim --------------------------------------------------------------------------------
  async function claimAction(action) {
    const w = await guard(() => api(`/windows/${wid}/${action}`, { method: "POST" }));
    if (!w) return;
    setWindow(w);
    if (action === "skip") {
      notice("Skipped: it comes back to you when nothing else is left.");
      const next = await guard(() => api(`/projects/${pid}/tasks/next`, { method: "POST" }));
      location.hash = next ? `#/projects/${pid}/windows/${next.id}` : `#/projects/${pid}`;
    } else {
      notice(action === "claim" ? "The window is yours to label." : "Released the window.");
    }
  }
  const claimButtons = {
    claim: h("button", { testid: "claim-btn", onclick: () => claimAction("claim") }, "Claim"),
    release: h("button", { testid: "release-btn", onclick: () => claimAction("release") }, "Release"),
    skip: h("button", { testid: "skip-btn", onclick: () => claimAction("skip") }, "Skip"),
  };
  claimTools.append(claimButtons.claim, claimButtons.release, claimButtons.skip);
  function showClaim(w) {
    const mine = w.locked_by === me.id && new Date(w.locked_until) > new Date();
    const other = claimedByOther(w, me);
    claimEl.textContent = mine
      ? `Claimed by you until ${fmtTime(w.locked_until)}.`
      : other
        ? `Claimed by user ${w.locked_by} until ${fmtTime(w.locked_until)}: read-only for you.`
        : "Nobody has claimed this window; editing claims it.";
    claimEl.classList.toggle("locked-other", other);
    const open = EDITABLE.includes(w.status) && can(role, "labeler");
    claimButtons.claim.hidden = !open || mine || other;
    claimButtons.release.hidden = !(mine || (other && can(role, "admin")));
    claimButtons.skip.hidden = !open || other;
  }

  async function submit() {
    if (dirty().length && !(await save())) return;
    const w = await guard(() => api(`/windows/${wid}/submit`, { method: "POST" }));
    if (!w) return;
    notice("Submitted for review.");
    setWindow(w);
  }

  async function refreshWindow() {
    const w = await guard(() => api(`/windows/${wid}`));
    if (w) setWindow(w);
  }

  function setWindow(w) {
    win = w;
    statusEl.replaceChildren(statusBadge(w.status));
    if (rejection) rejection.hidden = w.status !== "rejected";
    showClaim(w);
    const editable = EDITABLE.includes(w.status) && can(role, "labeler") && !claimedByOther(w, me);
    tools.hidden = !editable;
    locked.hidden = editable;
    if (!editable) setTool("select");
    modify.setActive(editable && state.tool === "select");
  }

  const locked = h("p.hint", { testid: "locked" },
    "This window cannot be edited now (submitted, accepted, claimed by someone else, or you " +
      "are a viewer).");
  tools.append(
    classPicker,
    h("div.toolbar", {}, toolButtons),
    h(
      "div.toolbar",
      {},
      h("button", { onclick: deleteSelected, testid: "delete-selected" }, "Delete selected"),
      h("button.primary", { onclick: save, testid: "save" }, "Save"),
      h("button", { onclick: reload, testid: "reload" }, "Reload"),
      h("button", { onclick: submit, testid: "submit" }, "Submit"),
    ),
    h("p.hint", {}, "Polygon: click the corners, click the first one (or double-click) to close."),
  );
  panel.append(locked);
  setTool("select");
  setWindow(win);
  // more like this (loads after the map: it may fetch a thumbnail per neighbour)
  const similarBox = h("div", {}, h("p.hint", {}, "Looking for similar windows..."));
  panel.append(h("h3", {}, "More like this"), similarBox);
  similarPanel({ pid, wid, role })
    .then((el) => similarBox.replaceChildren(el))
    .catch((e) => similarBox.replaceChildren(h("p.hint", {}, `Similar windows: ${e.detail || e}`)));
  return () => wm.dispose();
}

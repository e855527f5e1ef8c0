// The labelling view of one window: imagery (layer, time slider with acquisition dates, preset,
// swipe comparison, context around the window), the model's predictions (overlay, legend, "use
// as labels"), the class picker, tools (select + modify, polygon, hole, point; brush, eraser
// and fill painting class masks on the window's grid for per-pixel tasks), the annotation list,
// undo/redo across saves, keyboard shortcuts (`?` lists them), save with optimistic concurrency
// (PATCH with If-Match: the version read; a stale version gets 409 and changes nothing), the
// window's claim (claim, release, skip; a window claimed by someone else is read-only), submit,
// next/previous task, and "more like this".

import { annotationList } from "../annlist.js";
import { api } from "../api.js";
import { contextControls } from "../context.js";
import { createEdits } from "../edits.js";
import { imageryControls } from "../imagery.js";
import { createWindowMap, writeGeometry, Z } from "../map.js";
import { createPaint } from "../paint.js";
import { predictionsPanel } from "../predictions.js";
import { can, currentUser, projectRole } from "../session.js";
import { bindShortcuts, shortcutsOverlay } from "../shortcuts.js";
import { similarPanel } from "../similar.js";
import { createTools } from "../tools.js";
import { clearError, fmtTime, guard, h, screenMount, notice, showError, statusBadge } from "../ui.js";

const EDITABLE = ["unlabeled", "in_progress", "rejected"];

/** Load what a window view needs: project, window, tile metadata, annotations, role and
 * reviews (the latest one explains a rejection). */
export async function loadWindow(pid, wid) {
  const [project, window, info, annotations, role, reviews, me, grid, tasks] = await Promise.all([
    api(`/projects/${pid}`),
    api(`/windows/${wid}`),
    api(`/tiles/${wid}`),
    api(`/windows/${wid}/annotations`),
    projectRole(pid),
    api(`/windows/${wid}/reviews`),
    currentUser(),
    api(`/windows/${wid}/grid`),
    taskRegistry(),
  ]);
  const task = tasks.find((t) => t.name === project.task_type) || null;
  return { project, window, info, annotations, role, reviews, me, grid, task };
}

let tasksPromise = null;
/** The task registry (GET /tasks), fetched once. */
function taskRegistry() {
  tasksPromise ||= api("/tasks").catch((e) => {
    tasksPromise = null;
    throw e;
  });
  return tasksPromise;
}

const VISITED = "earthplat.visited";
/** Windows this tab opened, in order (for "previous task"). */
function visited(pid, wid) {
  const list = JSON.parse(sessionStorage.getItem(VISITED) || "[]").filter(
    (e) => !(e.pid === pid && e.wid === wid),
  );
  list.push({ pid, wid });
  sessionStorage.setItem(VISITED, JSON.stringify(list.slice(-100)));
  return list;
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
  const { project, info, role, me, grid, task } = data;
  const trail = visited(pid, wid);
  let win = data.window;

  const mapDiv = h("div.map", { testid: "map" });
  const statusEl = h("span", {}, statusBadge(win.status));
  const summary = h("p.muted", { testid: "ann-summary" });
  const tools = h("div.tools");
  const rejection = verdict(win, data.reviews);
  const help = shortcutsOverlay();
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
  mount(crumbs(project, win.name), h("div.workspace", {}, h("div.mapbox", {}, mapDiv, help), panel));
  if (mount.stale()) return; // the user moved on while this loaded
  const wm = createWindowMap(mapDiv, { window: win, classes: project.classes });
  const state = { cls: project.classes[0]?.value ?? null };
  const editable = () =>
    EDITABLE.includes(win.status) && can(role, "labeler") && !claimedByOther(win, me);

  // --- the working copy: features, painted masks, history -------------------------------------
  const paint = task?.pixel_classes
    ? createPaint(wm.map, grid, project.classes, { onEdit: () => edits.commit(), zIndex: Z.masks })
    : null;
  paint?.setClass(state.cls);
  const edits = createEdits({ source: wm.annotations, paint, wid, onChange: () => refresh() });
  const toolset = createTools({
    wm,
    paint,
    getClass: () => state.cls,
    onEdit: () => edits.commit(),
    onNotice: notice,
    onSplit: (line, target) => split(line, target),
  });
  const { select } = toolset;
  const list = annotationList({
    wm,
    paint,
    edits,
    classes: project.classes,
    onEdit: () => edits.commit(),
    canEdit: editable,
  });
  const undoBtn = h("button", { testid: "undo", title: "Ctrl+Z", onclick: () => undo() }, "Undo");
  const redoBtn = h("button", { testid: "redo", title: "Ctrl+Shift+Z", onclick: () => redo() }, "Redo");
  // test handle: the painted labels, and the map pixel of a grid cell's centre
  Object.assign(globalThis.earthplat, {
    labels: () => (paint ? Array.from(paint.labels) : null),
    cell: (col, row) => wm.map.getPixelFromCoordinate(paint.grid.toMap([col + 0.5, row + 0.5])),
    grid,
  });

  function refresh() {
    const n = wm.annotations.getFeatures().length + (paint ? paint.classes().length : 0);
    const chosen = select.getFeatures().getLength();
    summary.textContent = `${n} annotation(s), ${edits.changes().length} unsaved, ${chosen} selected`;
    undoBtn.disabled = !edits.canUndo();
    redoBtn.disabled = !edits.canRedo();
    list.refresh();
  }
  select.getFeatures().on(["add", "remove"], () => refresh());
  edits.reset(data.annotations);
  origins.textContent = provenance(data.annotations);

  function undo() {
    if (!editable()) return;
    select.getFeatures().clear();
    if (!edits.undo()) notice("Nothing to undo.");
  }
  function redo() {
    if (!editable()) return;
    select.getFeatures().clear();
    if (!edits.redo()) notice("Nothing to redo.");
  }

  const imagery = imageryControls(info, wm);
  panel.append(
    claimEl,
    claimTools,
    h("h3", {}, "Imagery"),
    imagery,
    contextControls({ wid, winMap: wm }),
    h("h3", {}, "Predictions"),
    predictionsPanel({
      wid,
      info,
      winMap: wm,
      canLabel: can(role, "labeler"),
      onPrelabels: () => refetch(true),
    }),
    h("h3", {}, "Labels"),
    tools,
    summary,
    origins,
    h("h3", {}, "Annotations"),
    list.el,
  );

  // --- class picker ---------------------------------------------------------------------------
  function pickClass(value) {
    state.cls = value;
    paint?.setClass(value);
    const radio = classPicker.querySelector(`input[value="${value}"]`);
    if (radio) radio.checked = true;
    // re-class the selected annotations
    const chosen = select.getFeatures().getArray();
    chosen.forEach((f) => f.set("class_value", value));
    if (chosen.length) edits.commit();
  }
  const classPicker = h(
    "fieldset.classes",
    { testid: "class-picker" },
    h("legend", {}, "Class"),
    project.classes.map((c, i) =>
      h(
        "label",
        { title: i < 9 ? `key ${i + 1}` : "" },
        h("input", {
          type: "radio",
          name: "class",
          value: c.value,
          checked: c.value === state.cls,
          testid: `class-${c.value}`,
          onchange: () => pickClass(c.value),
        }),
        h("span.swatch", { style: `background:${c.color}` }),
        i < 9 ? h("kbd", {}, String(i + 1)) : null,
        c.label,
      ),
    ),
  );
  // picking an annotation shows its class in the picker (so another pick re-classes it)
  select.on("select", (e) => {
    const cls = e.selected[0]?.get("class_value");
    if (cls === undefined || cls === null) return;
    state.cls = cls;
    paint?.setClass(cls);
    const radio = classPicker.querySelector(`input[value="${cls}"]`);
    if (radio) radio.checked = true;
  });

  // --- tools ------------------------------------------------------------------------------------
  const TOOLS = [
    ["select", "Select / edit", "V"],
    ["polygon", "Polygon", "A"],
    ["hole", "Hole", "H"],
    ["point", "Point", "O"],
    ["split", "Split", "S"],
    ...(paint
      ? [
          ["brush", "Brush", "B"],
          ["eraser", "Eraser", "E"],
          ["fill", "Fill", "F"],
        ]
      : []),
  ];
  const toolButtons = TOOLS.map(([tool, label, key]) =>
    h("button", { "data-tool": tool, testid: `tool-${tool}`, title: `key ${key}`, onclick: () => setTool(tool) }, label),
  );
  function setTool(tool) {
    if (!editable() && tool !== "select") return;
    if (!toolset.setTool(tool)) return;
    for (const b of toolButtons) b.classList.toggle("active", b.dataset.tool === tool);
    mapDiv.dataset.tool = tool;
  }
  const sizeInput = h("input", {
    type: "number",
    min: 1,
    max: 64,
    value: paint?.size ?? 3,
    testid: "brush-size",
    "aria-label": "brush size (pixels)",
    onchange: () => paint?.setSize(Number(sizeInput.value)),
  });
  const resize = (delta) => {
    if (!paint) return;
    paint.setSize(paint.size + delta);
    sizeInput.value = paint.size;
  };

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
        h("button", { onclick: () => refetch(false), testid: "conflict-reload" }, "Reload"),
      );
    } else if (e.status === 404) {
      showError({ ...e, detail: `${e.detail} (deleted by someone else?)`,
        fix: "Reload to see the window's current annotations." });
    } else {
      showError(e);
    }
  }

  async function save() {
    if (!edits.changes().length) {
      notice("Nothing to save.");
      return true;
    }
    let n;
    try {
      n = await edits.save();
    } catch (e) {
      writeError(e);
      refresh();
      return false;
    }
    clearError();
    notice(`Saved ${n} change(s).`);
    await refreshProvenance();
    await refreshWindow();
    return true;
  }

  /** Save what is pending first: the server merges and splits what it holds. */
  async function saved() {
    if (!edits.changes().length) return true;
    return save();
  }

  async function merge() {
    if (!editable()) return;
    const chosen = select.getFeatures().getArray();
    if (chosen.length < 2) {
      notice("Select two or more polygons of one class (Shift+click adds to the selection).");
      return;
    }
    if (!(await saved())) return;
    const idents = chosen.map((f) => edits.identity(f));
    const body = {
      ids: idents.map((i) => i.id),
      versions: Object.fromEntries(idents.map((i) => [i.id, i.version])),
    };
    try {
      await api("/annotations/merge", { method: "POST", body });
    } catch (e) {
      writeError(e);
      return;
    }
    notice(`Merged ${chosen.length} annotations into one.`);
    await refetch(true);
  }

  async function split(line, target) {
    if (!editable()) return;
    if (!(await saved())) return;
    const ident = edits.identity(target);
    try {
      await api(`/annotations/${ident.id}/split`, {
        method: "POST",
        body: { line: writeGeometry(line), version: ident.version },
      });
    } catch (e) {
      writeError(e);
      return;
    }
    notice("Split the polygon along the line.");
    await refetch(true);
  }

  function deleteSelected() {
    if (!editable()) return;
    if (toolset.removeLastPoint()) return;
    const n = toolset.deleteSelected();
    if (!n) notice("Select an annotation first (Select / edit tool).");
    else notice(`Removed ${n} annotation(s); save to delete them on the server (undo brings them back).`);
  }

  /** Who made the window's annotations (a person's edit of a pre-label marks it edited). */
  async function refreshProvenance() {
    const anns = await guard(() => api(`/windows/${wid}/annotations`));
    if (anns) origins.textContent = provenance(anns);
  }

  /** Take the server's annotations: `keep` the history (pre-labels can be undone) or not. */
  async function refetch(keep) {
    const anns = await guard(() => api(`/windows/${wid}/annotations`));
    if (!anns) return;
    select.getFeatures().clear();
    if (keep) edits.rebase(anns);
    else edits.reset(anns);
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
      await nextTask();
    } else {
      notice(action === "claim" ? "The window is yours to label." : "Released the window.");
    }
  }
  async function nextTask() {
    const next = await guard(() => api(`/projects/${pid}/tasks/next`, { method: "POST" }));
    location.hash = next ? `#/projects/${pid}/windows/${next.id}` : `#/projects/${pid}`;
  }
  function previousTask() {
    const before = trail.slice(0, -1).at(-1);
    if (!before) notice("This is the first window you opened here.");
    else location.hash = `#/projects/${before.pid}/windows/${before.wid}`;
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
    if (!editable()) return;
    if (edits.changes().length && !(await save())) return;
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
    const can_ = editable();
    tools.hidden = !can_;
    locked.hidden = can_;
    if (!can_) setTool("select");
    toolset.setEditable(can_);
  }

  const locked = h("p.hint", { testid: "locked" },
    "This window cannot be edited now (submitted, accepted, claimed by someone else, or you " +
      "are a viewer).");
  tools.append(
    classPicker,
    h("div.toolbar", {}, toolButtons),
    paint ? h("label.hint", {}, "Brush size (px) ", sizeInput) : null,
    h(
      "div.toolbar",
      {},
      undoBtn,
      redoBtn,
      h("button", { onclick: deleteSelected, testid: "delete-selected" }, "Delete selected"),
      h("button", { onclick: merge, testid: "merge-selected", title: "key M" }, "Merge selected"),
      h("button.primary", { onclick: save, testid: "save" }, "Save"),
      h("button", { onclick: () => refetch(false), testid: "reload" }, "Reload"),
      h("button", { onclick: submit, testid: "submit" }, "Submit"),
    ),
    h("p.hint", {},
      "Polygon: click the corners, click the first one (or double-click) to close. Hole: draw " +
        "it inside a polygon. Split: draw a line across a polygon. Shift+click selects more. ",
      h("button.link", { testid: "show-shortcuts", onclick: () => (help.hidden = !help.hidden) }, "Keyboard shortcuts (?)"),
    ),
  );
  panel.append(locked);
  setTool("select");
  setWindow(win);

  // --- keyboard -------------------------------------------------------------------------------
  const unbind = bindShortcuts({
    class: (i) => {
      const c = project.classes[i];
      if (c && editable()) pickClass(c.value);
    },
    tool: (tool) => setTool(tool),
    size: resize,
    cancel: () => {
      if (!help.hidden) help.hidden = true;
      else if (!toolset.cancel()) select.getFeatures().clear();
    },
    delete: deleteSelected,
    merge,
    undo,
    redo,
    save: () => editable() && save(),
    submit,
    task: (d) => (d > 0 ? nextTask() : previousTask()),
    time: (d) => imagery.step(d),
    "toggle-annotations": () => list.toggleAll(),
    help: () => (help.hidden = !help.hidden),
  });

  // more like this (loads after the map: it may fetch a thumbnail per neighbour)
  const similarBox = h("div", {}, h("p.hint", {}, "Looking for similar windows..."));
  panel.append(h("h3", {}, "More like this"), similarBox);
  similarPanel({ pid, wid, role })
    .then((el) => similarBox.replaceChildren(el))
    .catch((e) => similarBox.replaceChildren(h("p.hint", {}, `Similar windows: ${e.detail || e}`)));
  return () => {
    unbind();
    wm.dispose();
  };
}

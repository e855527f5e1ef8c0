// Review mode (reviewers and admins): the submitted windows, each with its annotations on the
// map (which ones a model made and whether a person changed them), accepted or rejected with
// a comment. A reviewer never judges their own submission unless the project allows it.

import { api } from "../api.js";
import { imageryControls } from "../imagery.js";
import { createWindowMap } from "../map.js";
import { fmtTime, guard, h, screenMount, notice, statusBadge } from "../ui.js";
import { classLegend } from "./projects.js";
import { crumbs, loadWindow, provenance } from "./label.js";

/** The annotations as a list: class, who made it (person or model), changed or not. */
function annotationList(annotations, classes) {
  const label = Object.fromEntries(classes.map((c) => [c.value, c.label]));
  return h(
    "ul.list",
    { testid: "review-annotations" },
    annotations.map((a) =>
      h(
        "li",
        { testid: `review-ann-${a.id}` },
        `#${a.id} ${label[a.class_value] ?? a.class_value ?? a.value} `,
        a.origin === "model"
          ? h(
              `span.badge.${a.edited ? "edited" : "model"}`,
              { testid: "ann-origin" },
              a.edited ? "model, changed by a person" : "model-made, unchanged",
            )
          : h("span.badge", { testid: "ann-origin" }, "person"),
      ),
    ),
  );
}

export async function reviewListScreen(pid) {
  const mount = screenMount();
  mount(h("p", {}, "Loading..."));
  const data = await guard(async () => {
    const [project, windows] = await Promise.all([
      api(`/projects/${pid}`),
      api(`/projects/${pid}/windows?status=submitted&limit=1000`),
    ]);
    return { project, windows };
  });
  if (!data) return;
  const { project, windows } = data;
  mount(
    crumbs(project, "Review"),
    h("h1", {}, `Review: ${project.name}`),
    h(
      "p",
      {},
      h("a", { href: `#/projects/${pid}/likely-wrong`, testid: "likely-link" }, "Likely wrong labels"),
      " ranks the accepted windows by how much a model disagrees with them.",
    ),
    windows.length
      ? h(
          "ul.list",
          { testid: "review-queue" },
          windows.map((w) =>
            h(
              "li",
              {},
              h("a", { href: `#/projects/${pid}/review/${w.id}`, testid: `review-${w.id}` },
                w.name),
              " ",
              statusBadge(w.status),
            ),
          ),
        )
      : h("p", { testid: "review-empty" }, "Nothing is waiting for review."),
  );
  if (mount.stale()) return; // the user moved on while this loaded
}

export async function reviewScreen(pid, wid) {
  const mount = screenMount();
  mount(h("p", {}, "Loading..."));
  const data = await guard(async () => ({
    ...(await loadWindow(pid, wid)),
    reviews: await api(`/windows/${wid}/reviews`),
  }));
  if (!data) return;
  const { project, window: win, info, annotations, reviews, me } = data;
  const own = win.submitted_by === me.id && !project.settings?.self_review;
  const mapDiv = h("div.map", { testid: "map" });
  const statusEl = h("span", {}, statusBadge(win.status));
  const comment = h("textarea", { rows: 3, placeholder: "comment (optional for accept)",
    testid: "review-comment" });

  async function decide(decision) {
    const r = await guard(() =>
      api(`/windows/${wid}/reviews`, { method: "POST", body: { decision, comment: comment.value } }),
    );
    if (!r) return;
    notice(`Window ${win.name}: ${decision}ed.`);
    location.hash = `#/projects/${pid}/review`;
  }

  const panel = h(
    "aside.panel",
    {},
    h("h2", { testid: "window-name" }, win.name),
    h("p", {}, "Status: ", statusEl),
    h("p.muted", { testid: "ann-summary" }, `${annotations.length} annotation(s)`),
    h("p.hint", { testid: "ann-provenance" }, provenance(annotations)),
    annotationList(annotations, project.classes),
    classLegend(project.classes),
    h("h3", {}, "Imagery"),
  );
  mount(crumbs(project, `Review ${win.name}`), h("div.workspace", {}, mapDiv, panel));
  if (mount.stale()) return; // the user moved on while this loaded
  const wm = createWindowMap(mapDiv, { window: win, classes: project.classes });
  wm.setAnnotations(annotations);
  panel.append(
    imageryControls(info, wm),
    h("h3", {}, "Decision"),
    win.status === "submitted" && own
      ? h(
          "p.hint",
          { testid: "own-work" },
          "You submitted this window: another reviewer must review it (a project admin can " +
            "allow single-person review in the project's settings).",
        )
      : win.status === "submitted"
      ? h(
          "div",
          {},
          comment,
          h(
            "div.toolbar",
            {},
            h("button.primary", { onclick: () => decide("accept"), testid: "accept" }, "Accept"),
            h("button.danger", { onclick: () => decide("reject"), testid: "reject" }, "Reject"),
          ),
        )
      : h("p.hint", {}, `This window is ${win.status}; only submitted windows can be reviewed.`),
    h("h3", {}, "Earlier reviews"),
    reviews.length
      ? h("ul.list", {}, reviews.map((r) =>
          h("li", {}, `${fmtTime(r.created_at)} ${r.decision}: ${r.comment || "(no comment)"}`)))
      : h("p.muted", {}, "none"),
  );
  return () => wm.dispose();
}

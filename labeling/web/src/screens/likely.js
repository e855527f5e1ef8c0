// Likely wrong labels (reviewers): the accepted and submitted windows ranked by how much a
// model's prediction disagrees with their labels (GET /projects/:id/likely-wrong), so review
// starts with the likeliest mistakes. Without a prediction over them, it says how to make one.

import { api } from "../api.js";
import { can, projectRole } from "../session.js";
import { guard, h, screenMount, notice, statusBadge } from "../ui.js";
import { crumbs } from "./label.js";

export async function likelyWrongScreen(pid) {
  const mount = screenMount();
  mount(h("p", {}, "Loading..."));
  const data = await guard(async () => ({
    project: await api(`/projects/${pid}`),
    role: await projectRole(pid),
  }));
  if (!data) return;
  const { project, role } = data;
  const body = h("div");
  mount(
    crumbs(project, "Likely wrong labels"),
    h("h1", {}, `Likely wrong labels: ${project.name}`),
    h(
      "p.muted",
      {},
      "Windows whose labels a model disagrees with most, first. Open one to check it; a " +
        "wrong accepted label can be re-labelled after a reviewer rejects it.",
    ),
    body,
  );
  if (mount.stale()) return; // the user moved on while this loaded
  let ranking;
  try {
    ranking = await api(`/projects/${pid}/likely-wrong?limit=200`);
  } catch (e) {
    if (e.status !== 404) throw e;
    body.append(h("p", { testid: "likely-missing" }, e.detail), h("p.hint", {}, e.fix || ""));
    if (can(role, "admin")) {
      const [models, accepted] = await Promise.all([
        api(`/models?project_id=${pid}`),
        api(`/projects/${pid}/windows?status=accepted&limit=1000`),
      ]);
      if (models.length && accepted.length) {
        body.append(
          h(
            "button.primary",
            {
              testid: "likely-run",
              onclick: () =>
                guard(async () => {
                  const job = await api(`/projects/${pid}/predictions`, {
                    method: "POST",
                    body: { model_id: models[0].id, window_ids: accepted.map((w) => w.id) },
                  });
                  notice(`Started inference job ${job.id} over ${accepted.length} accepted windows.`);
                  location.hash = `#/projects/${pid}/jobs`;
                }),
            },
            `Predict the ${accepted.length} accepted windows with ${models[0].name}`,
          ),
        );
      }
    }
    return;
  }
  body.append(
    h(
      "p.muted",
      { testid: "likely-source" },
      `Model ${ranking.model_id}, predictions of job ${ranking.job_id}.`,
    ),
    h(
      "table",
      { testid: "likely-table" },
      h(
        "thead",
        {},
        h("tr", {}, ["rank", "window", "status", "disagreement", "labelled px", ""].map((c) => h("th", {}, c))),
      ),
      h(
        "tbody",
        {},
        ranking.windows.map((w, i) =>
          h(
            "tr",
            { testid: `likely-${w.window_id}` },
            h("td", {}, i + 1),
            h("td", {}, w.name),
            h("td", {}, statusBadge(w.status)),
            h(
              "td",
              { testid: "likely-score" },
              h("meter", { min: 0, max: 1, value: w.disagreement }),
              ` ${(w.disagreement * 100).toFixed(1)} %`,
            ),
            h("td", {}, w.labelled_pixels ?? ""),
            h(
              "td",
              {},
              h(
                "a",
                {
                  href:
                    w.status === "submitted"
                      ? `#/projects/${pid}/review/${w.window_id}`
                      : `#/projects/${pid}/windows/${w.window_id}`,
                },
                w.status === "submitted" ? "Review" : "Open",
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

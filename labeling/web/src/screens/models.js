// The model registry of a project: each model's metrics, the data it was trained on and its
// base encoder, with actions: predict (an inference job over all windows), and compare two
// models metric by metric on their test windows (GET /models/compare).

import { api } from "../api.js";
import { can, projectRole } from "../session.js";
import { fmtTime, guard, h, screenMount, notice } from "../ui.js";
import { crumbs } from "./label.js";

const fmt = (v) => (typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4)) : String(v ?? ""));

function metricsList(metrics) {
  const entries = Object.entries(metrics || {});
  return entries.length
    ? h("span", {}, entries.map(([k, v]) => h("span.metric", {}, `${k} ${fmt(v)}`)))
    : h("span.muted", {}, "none");
}

export async function modelsScreen(pid) {
  const mount = screenMount();
  mount(h("p", {}, "Loading..."));
  const data = await guard(async () => ({
    project: await api(`/projects/${pid}`),
    role: await projectRole(pid),
    models: await api(`/models?project_id=${pid}`),
  }));
  if (!data) return;
  const { project, role, models } = data;
  const compareOut = h("div", { testid: "compare-result" });
  const pickA = h("select", { testid: "compare-a" }, models.map((m) => h("option", { value: m.id }, `#${m.id} ${m.name}`)));
  const pickB = h("select", { testid: "compare-b" }, models.map((m) => h("option", { value: m.id }, `#${m.id} ${m.name}`)));
  if (models.length > 1) pickB.value = String(models[1].id);

  async function predict(m) {
    const job = await guard(() =>
      api(`/projects/${pid}/predictions`, { method: "POST", body: { model_id: m.id } }),
    );
    if (job) {
      notice(`Started inference job ${job.id} with ${m.name}.`);
      location.hash = `#/projects/${pid}/jobs`;
    }
  }

  async function compare() {
    const r = await guard(() => api(`/models/compare?a=${pickA.value}&b=${pickB.value}`));
    if (!r) return;
    compareOut.replaceChildren(
      h(
        "table",
        { testid: "compare-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "metric"), h("th", {}, r.a.name), h("th", {}, r.b.name))),
        h(
          "tbody",
          {},
          r.metrics.map((m) =>
            h(
              "tr",
              { testid: `compare-${m.name}` },
              h("td", {}, m.name),
              h(`td${m.better === "a" ? ".better" : ""}`, {}, fmt(m.a)),
              h(`td${m.better === "b" ? ".better" : ""}`, {}, fmt(m.b)),
            ),
          ),
        ),
      ),
      r.test_windows
        ? h(
            "p.hint",
            {},
            `Test windows: ${r.test_windows.common?.length ?? 0} in common ` +
              `(${r.test_windows.a?.length ?? "?"} and ${r.test_windows.b?.length ?? "?"}).`,
          )
        : null,
    );
  }

  const trained = (t) =>
    t ? `${t.windows ?? "?"} windows (${(t.statuses || []).join(", ")}), layers ${(t.layers || []).join(", ") || "all"}` : "";
  mount(
    crumbs(project, "Models"),
    h("h1", {}, `Models: ${project.name}`),
    models.length
      ? h(
          "table",
          { testid: "models" },
          h(
            "thead",
            {},
            h("tr", {}, ["id", "name", "task", "base encoder", "trained on", "test metrics", "created", ""].map((c) => h("th", {}, c))),
          ),
          h(
            "tbody",
            {},
            models.map((m) =>
              h(
                "tr",
                { testid: `model-${m.id}` },
                h("td", {}, m.id),
                h("td", {}, m.name),
                h("td", {}, m.task_type || ""),
                h("td", { testid: "model-encoder" }, m.base_encoder || ""),
                h("td", { testid: "model-data" }, trained(m.trained_on)),
                h("td", { testid: "model-metrics" }, metricsList(m.test_metrics || m.metrics)),
                h("td", {}, fmtTime(m.created_at)),
                h(
                  "td",
                  {},
                  can(role, "admin")
                    ? h("button", { testid: `predict-${m.id}`, onclick: () => predict(m) }, "Predict all windows")
                    : null,
                ),
              ),
            ),
          ),
        )
      : h("p", { testid: "no-models" }, "No model yet: start a fine-tune from the project page."),
    models.length > 1
      ? h(
          "section.card.wide",
          {},
          h("h2", {}, "Compare two models"),
          h("div.toolbar", {}, pickA, " vs ", pickB, h("button", { testid: "compare", onclick: compare }, "Compare")),
          compareOut,
        )
      : null,
  );
  if (mount.stale()) return; // the user moved on while this loaded
}

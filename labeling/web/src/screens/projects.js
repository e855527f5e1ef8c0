// The projects list, and one project: its classes, its windows with their status, "next task".

import { api } from "../api.js";
import { projectRole } from "../session.js";
import { fmtTime, guard, h, mount, notice, statusBadge } from "../ui.js";

export async function projectsScreen() {
  mount(h("h1", {}, "Projects"), h("p", {}, "Loading..."));
  const projects = await guard(() => api("/projects"));
  if (!projects) return;
  mount(
    h("h1", {}, "Projects"),
    projects.length
      ? h(
          "ul.list",
          { testid: "projects" },
          projects.map((p) =>
            h(
              "li",
              {},
              h("a", { href: `#/projects/${p.id}`, testid: `project-${p.id}` }, p.name),
              h("span.muted", {}, ` ${p.task_type} - ${p.description}`),
            ),
          ),
        )
      : h("p", {}, "No projects yet (create one through the API)."),
  );
}

export function classLegend(classes) {
  return h(
    "ul.legend",
    {},
    classes.map((c) =>
      h("li", {}, h("span.swatch", { style: `background:${c.color}` }), `${c.value}: ${c.label}`),
    ),
  );
}

export async function projectScreen(pid) {
  mount(h("p", {}, "Loading..."));
  const data = await guard(async () => {
    const [project, windows, role] = await Promise.all([
      api(`/projects/${pid}`),
      api(`/projects/${pid}/windows?limit=1000`),
      projectRole(pid),
    ]);
    return { project, windows, role };
  });
  if (!data) return;
  const { project, windows, role } = data;
  const counts = {};
  for (const w of windows) counts[w.status] = (counts[w.status] || 0) + 1;

  const nextTask = () =>
    guard(async () => {
      const w = await api(`/projects/${pid}/tasks/next`, { method: "POST" });
      if (!w) notice("No task left for you in this project.");
      else location.hash = `#/projects/${pid}/windows/${w.id}`;
    });

  mount(
    h("p.crumbs", {}, h("a", { href: "#/projects" }, "Projects"), " / ", project.name),
    h("h1", { testid: "project-name" }, project.name),
    h("p.muted", {}, `${project.task_type}; your role: ${role}. ${project.description}`),
    classLegend(project.classes),
    h(
      "div.actions",
      {},
      role !== "viewer"
        ? h("button", { onclick: nextTask, testid: "next-task" }, "Next task")
        : null,
      role === "reviewer" || role === "admin"
        ? h("a.button", { href: `#/projects/${pid}/review`, testid: "review-link" }, "Review")
        : null,
      h("a.button", { href: `#/projects/${pid}/jobs`, testid: "jobs-link" }, "Jobs"),
    ),
    h(
      "p.muted",
      {},
      `${windows.length} windows: ` +
        Object.entries(counts)
          .map(([s, n]) => `${n} ${s}`)
          .join(", "),
    ),
    h(
      "table",
      { testid: "windows" },
      h("thead", {}, h("tr", {}, h("th", {}, "id"), h("th", {}, "window"), h("th", {}, "status"),
        h("th", {}, "time range"))),
      h(
        "tbody",
        {},
        windows.map((w) =>
          h(
            "tr",
            { testid: `window-row-${w.id}` },
            h("td", {}, w.id),
            h("td", {}, h("a", { href: `#/projects/${pid}/windows/${w.id}`,
              testid: `window-${w.id}` }, w.name)),
            h("td", {}, statusBadge(w.status)),
            h("td", {}, `${fmtTime(w.start)} - ${fmtTime(w.end)}`),
          ),
        ),
      ),
    ),
  );
}

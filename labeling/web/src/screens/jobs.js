// The project's jobs (kind, status, progress, message) and the logs of one; refreshed every
// few seconds while a job is queued or running.

import { api } from "../api.js";
import { fmtTime, guard, h, mount, statusBadge } from "../ui.js";
import { crumbs } from "./label.js";

const ACTIVE = ["queued", "running"];

export async function jobsScreen(pid) {
  mount(h("p", {}, "Loading..."));
  const project = await guard(() => api(`/projects/${pid}`));
  if (!project) return;
  const table = h("tbody");
  const logs = h("pre.logs", { testid: "job-logs" });
  const logsTitle = h("h2", { testid: "logs-title" }, "Logs");
  let shown = null;
  let timer = null;

  async function showLogs(job) {
    shown = job.id;
    const lines = await guard(() => api(`/jobs/${job.id}/logs?limit=10000`));
    if (!lines) return;
    logsTitle.textContent = `Logs of job ${job.id} (${job.kind})`;
    logs.textContent = lines.length
      ? lines.map((l) => `${fmtTime(l.ts)} ${l.level.padEnd(7)} ${l.line}`).join("\n")
      : "(no log lines yet)";
  }

  async function refresh() {
    const jobs = await guard(() => api(`/projects/${pid}/jobs`));
    if (!jobs) return;
    table.replaceChildren(
      ...jobs.map((j) =>
        h(
          "tr",
          { testid: `job-${j.id}` },
          h("td", {}, j.id),
          h("td", { testid: "job-kind" }, j.kind),
          h("td", {}, statusBadge(j.status)),
          h("td", {}, h("progress", { max: 1, value: j.progress }), ` ${Math.round(j.progress * 100)}%`),
          h("td.muted", {}, j.message || ""),
          h("td", {}, fmtTime(j.created_at)),
          h("td", {}, h("button", { onclick: () => showLogs(j), testid: `logs-${j.id}` }, "Logs")),
        ),
      ),
    );
    if (!jobs.length) table.append(h("tr", {}, h("td", { colspan: 7 }, "No jobs yet.")));
    const running = jobs.some((j) => ACTIVE.includes(j.status));
    if (shown !== null) {
      const j = jobs.find((x) => x.id === shown);
      if (j && ACTIVE.includes(j.status)) showLogs(j);
    }
    clearTimeout(timer);
    if (running) timer = setTimeout(refresh, 3000);
  }

  mount(
    crumbs(project, "Jobs"),
    h("h1", {}, `Jobs: ${project.name}`),
    h(
      "table",
      { testid: "jobs" },
      h("thead", {}, h("tr", {}, ["id", "kind", "status", "progress", "message", "created", ""]
        .map((c) => h("th", {}, c)))),
      table,
    ),
    logsTitle,
    logs,
  );
  await refresh();
  return () => clearTimeout(timer);
}

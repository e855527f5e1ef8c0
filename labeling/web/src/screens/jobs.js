// The project's jobs: kind, status, live progress, message, durations; cancel a queued or
// running job (project admins), read its logs, list and download its artefacts. Refreshed
// every few seconds while a job is queued or running.

import { api, download } from "../api.js";
import { can, projectRole } from "../session.js";
import { fmtTime, guard, h, screenMount, notice, statusBadge } from "../ui.js";
import { crumbs } from "./label.js";

const ACTIVE = ["queued", "running"];

/** "1 min 5 s" between two ISO times (or until now while running). */
export function duration(start, end) {
  if (!start) return "";
  const s = Math.max(0, ((end ? new Date(end) : new Date()) - new Date(start)) / 1000);
  if (s < 60) return `${s.toFixed(0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

export async function jobsScreen(pid) {
  const mount = screenMount();
  mount(h("p", {}, "Loading..."));
  const data = await guard(async () => ({
    project: await api(`/projects/${pid}`),
    role: await projectRole(pid),
  }));
  if (!data) return;
  const { project, role } = data;
  const table = h("tbody");
  const logs = h("pre.logs", { testid: "job-logs" });
  const logsTitle = h("h2", { testid: "logs-title" }, "Logs");
  const files = h("ul.list", { testid: "job-artifacts" });
  const filesTitle = h("h2", { testid: "artifacts-title" }, "Artefacts");
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
    logs.scrollTop = logs.scrollHeight;
  }

  async function showArtifacts(job) {
    const list = await guard(() => api(`/jobs/${job.id}/artifacts`));
    if (!list) return;
    filesTitle.textContent = `Artefacts of job ${job.id} (${job.kind})`;
    files.replaceChildren(
      ...(list.length
        ? list.map((a) =>
            h(
              "li",
              {},
              h(
                "a",
                {
                  href: "#",
                  testid: `artifact-${a.name}`,
                  onclick: (e) => {
                    e.preventDefault();
                    guard(() => download(a.url, a.name));
                  },
                },
                a.name,
              ),
              h("span.muted", {}, ` ${fmtBytes(a.size_bytes)}`),
            ),
          )
        : [h("li.muted", {}, job.status === "succeeded" ? "no files" : `none yet (${job.status})`)]),
    );
  }

  async function cancel(job) {
    const j = await guard(() => api(`/jobs/${job.id}/cancel`, { method: "POST" }));
    if (j) {
      notice(`Cancel requested for job ${job.id}.`);
      refresh();
    }
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
          h(
            "td",
            {},
            h("progress", { max: 1, value: j.progress }),
            h("span", { testid: "job-progress" }, ` ${Math.round(j.progress * 100)}%`),
          ),
          h("td.muted", { testid: "job-message" }, j.message || ""),
          h("td", {}, fmtTime(j.created_at)),
          h("td", { testid: "job-duration" }, duration(j.started_at, j.finished_at)),
          h(
            "td",
            {},
            h("button", { onclick: () => showLogs(j), testid: `logs-${j.id}` }, "Logs"),
            h("button", { onclick: () => showArtifacts(j), testid: `files-${j.id}` }, "Files"),
            can(role, "admin") && ACTIVE.includes(j.status) && !j.cancel_requested
              ? h("button.danger", { onclick: () => cancel(j), testid: `cancel-${j.id}` }, "Cancel")
              : null,
          ),
        ),
      ),
    );
    if (!jobs.length) table.append(h("tr", {}, h("td", { colspan: 8 }, "No jobs yet.")));
    const running = jobs.some((j) => ACTIVE.includes(j.status));
    if (shown !== null) {
      const j = jobs.find((x) => x.id === shown);
      if (j && ACTIVE.includes(j.status)) showLogs(j);
    }
    clearTimeout(timer);
    if (running) timer = setTimeout(refresh, 2000);
  }

  mount(
    crumbs(project, "Jobs"),
    h("h1", {}, `Jobs: ${project.name}`),
    can(role, "admin")
      ? h("p.hint", {}, "Start jobs from the project page (Run a job).")
      : null,
    h(
      "table",
      { testid: "jobs" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["id", "kind", "status", "progress", "message", "created", "duration", ""].map((c) =>
            h("th", {}, c),
          ),
        ),
      ),
      table,
    ),
    logsTitle,
    logs,
    filesTitle,
    files,
  );
  if (mount.stale()) return; // the user moved on while this loaded
  await refresh();
  return () => clearTimeout(timer);
}

// The projects list, and one project: its classes and settings, a map overview of every window
// coloured by status, the windows table (filtered by status, assignee, class and valid
// fraction; paginated, so 10,000 windows are fine), "next task", and the jobs a role may start.

import { api, apiWithHeaders } from "../api.js";
import { STATUS_COLOURS, createOverviewMap } from "../overview.js";
import { can, projectRole } from "../session.js";
import { fmtTime, guard, h, screenMount, notice, statusBadge } from "../ui.js";
import { runPanel } from "./run.js";

const PAGE = 100;
const STATUSES = Object.keys(STATUS_COLOURS);

export async function projectsScreen() {
  const mount = screenMount();
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
  if (mount.stale()) return; // the user moved on while this loaded
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

function statusLegend() {
  return h(
    "ul.legend",
    { testid: "status-legend" },
    STATUSES.map((s) =>
      h("li", {}, h("span.swatch", { style: `background:${STATUS_COLOURS[s]}` }), s),
    ),
  );
}

/** The project's workflow settings; admins edit them in place. */
function settingsBox(project, role) {
  const s = project.settings || {};
  if (!can(role, "admin")) {
    return h(
      "p.muted",
      { testid: "settings" },
      `Windows with under ${Math.round(s.min_valid_fraction * 100)} % valid imagery are handed ` +
        `out last; ${s.self_review ? "a reviewer may review their own work" : "reviewers never review their own work"}.`,
    );
  }
  const frac = h("input", {
    type: "number",
    min: 0,
    max: 100,
    step: 5,
    value: Math.round(s.min_valid_fraction * 100),
    testid: "setting-min-valid",
    style: "width:5em",
  });
  const self = h("input", { type: "checkbox", checked: s.self_review, testid: "setting-self-review" });
  const save = () =>
    guard(async () => {
      await api(`/projects/${project.id}`, {
        method: "PATCH",
        body: { settings: { min_valid_fraction: Number(frac.value) / 100, self_review: self.checked } },
      });
      notice("Project settings saved.");
    });
  return h(
    "details.settings",
    { testid: "settings" },
    h("summary", {}, "Workflow settings"),
    h("label", {}, "Hand out last the windows with valid imagery under ", frac, " %"),
    h("label", {}, self, " A reviewer may review their own submissions (one-person projects)"),
    h("button", { onclick: save, testid: "settings-save" }, "Save settings"),
  );
}

export async function projectScreen(pid) {
  const mount = screenMount();
  mount(h("p", {}, "Loading..."));
  const data = await guard(async () => {
    const [project, role, summary, members] = await Promise.all([
      api(`/projects/${pid}`),
      projectRole(pid),
      api(`/projects/${pid}/windows/summary`),
      api(`/projects/${pid}/members`),
    ]);
    return { project, role, summary, members };
  });
  if (!data) return;
  const { project, role, summary, members } = data;
  const filters = { status: "", assignee: "", class_value: "", min_valid: "", q: "" };
  let offset = 0;
  let total = summary.total;
  const selected = new Set();

  const nextTask = () =>
    guard(async () => {
      const w = await api(`/projects/${pid}/tasks/next`, { method: "POST" });
      if (!w) notice("No task left for you in this project.");
      else location.hash = `#/projects/${pid}/windows/${w.id}`;
    });

  // --- filters ------------------------------------------------------------------------------
  const pick = (name, options, label) => {
    const el = h(
      "select",
      { testid: `filter-${name}`, "aria-label": label },
      h("option", { value: "" }, `any ${label}`),
      options.map(([v, text]) => h("option", { value: v }, text)),
    );
    el.addEventListener("change", () => {
      filters[name] = el.value;
      offset = 0;
      load();
    });
    return el;
  };
  const users = new Map(members.map((m) => [m.user_id, m]));
  const minValid = h("input", {
    type: "number",
    min: 0,
    max: 100,
    step: 5,
    placeholder: "min valid %",
    testid: "filter-min-valid",
    style: "width:8em",
  });
  minValid.addEventListener("change", () => {
    filters.min_valid = minValid.value === "" ? "" : String(Number(minValid.value) / 100);
    offset = 0;
    load();
  });
  const search = h("input", { type: "search", placeholder: "name contains", testid: "filter-q" });
  search.addEventListener("change", () => {
    filters.q = search.value.trim();
    offset = 0;
    load();
  });
  const filterBar = h(
    "div.toolbar",
    { testid: "filters" },
    pick("status", STATUSES.map((s) => [s, s]), "status"),
    pick(
      "assignee",
      [["none", "unassigned"], ...members.map((m) => [String(m.user_id), `user ${m.user_id} (${m.role})`])],
      "assignee",
    ),
    pick("class_value", project.classes.map((c) => [String(c.value), `has ${c.label}`]), "class"),
    minValid,
    search,
  );

  // --- table and pages ----------------------------------------------------------------------
  const tbody = h("tbody");
  const pageInfo = h("span.muted", { testid: "page-info" });
  const prev = h("button", { testid: "page-prev", onclick: () => turn(-1) }, "Previous");
  const next = h("button", { testid: "page-next", onclick: () => turn(1) }, "Next");
  const selectedInfo = h("span.muted", { testid: "selected-info" }, "0 selected");
  function turn(dir) {
    offset = Math.max(0, offset + dir * PAGE);
    load();
  }
  const query = (extra = {}) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filters, ...extra })) if (v !== "") q.set(k, v);
    return q.toString();
  };
  async function load() {
    const res = await guard(() =>
      apiWithHeaders(`/projects/${pid}/windows?${query({ offset, limit: PAGE })}`),
    );
    if (!res) return;
    const windows = res.data;
    total = Number(res.headers.get("X-Total-Count") ?? windows.length);
    pageInfo.textContent = total
      ? `Showing ${offset + 1}-${offset + windows.length} of ${total} windows`
      : "No window matches.";
    prev.disabled = offset === 0;
    next.disabled = offset + windows.length >= total;
    tbody.replaceChildren(
      ...windows.map((w) => {
        const box = h("input", {
          type: "checkbox",
          checked: selected.has(w.id),
          testid: `select-${w.id}`,
          "aria-label": `select window ${w.id}`,
        });
        box.addEventListener("change", () => {
          if (box.checked) selected.add(w.id);
          else selected.delete(w.id);
          selectedInfo.textContent = `${selected.size} selected`;
        });
        const holder = w.locked_by && users.get(w.locked_by);
        return h(
          "tr",
          { testid: `window-row-${w.id}` },
          h("td", {}, box),
          h("td", {}, w.id),
          h(
            "td",
            {},
            h("a", { href: `#/projects/${pid}/windows/${w.id}`, testid: `window-${w.id}` }, w.name),
          ),
          h("td", {}, statusBadge(w.status)),
          h("td", {}, w.valid_fraction == null ? "?" : `${Math.round(w.valid_fraction * 100)} %`),
          h("td.muted", {}, w.locked_by ? `claimed by ${holder ? `user ${w.locked_by}` : w.locked_by}` : ""),
          h("td", {}, `${fmtTime(w.start)} - ${fmtTime(w.end)}`),
        );
      }),
    );
    const fc = await guard(() => api(`/projects/${pid}/windows/overview?${query()}`));
    if (fc) overview.setWindows(fc, { fit: first });
    first = false;
  }
  let first = true;

  // --- layout -------------------------------------------------------------------------------
  const overviewDiv = h("div.overview", { testid: "overview-map" });
  const counts = h(
    "p",
    { testid: "window-counts" },
    `${summary.total} windows: `,
    STATUSES.filter((s) => summary.by_status[s]).map((s) =>
      h("span.count", {}, statusBadge(s), ` ${summary.by_status[s]} `),
    ),
  );
  mount(
    h("p.crumbs", {}, h("a", { href: "#/projects" }, "Projects"), " / ", project.name),
    h("h1", { testid: "project-name" }, project.name),
    h(
      "p.muted",
      {},
      `${project.task_type}; your role: `,
      h("strong", { testid: "my-role" }, role || "none"),
      `. ${project.description}`,
    ),
    classLegend(project.classes),
    settingsBox(project, role),
    h(
      "div.actions",
      {},
      can(role, "labeler") ? h("button.primary", { onclick: nextTask, testid: "next-task" }, "Next task") : null,
      can(role, "reviewer")
        ? h("a.button", { href: `#/projects/${pid}/review`, testid: "review-link" }, "Review")
        : null,
      can(role, "reviewer")
        ? h("a.button", { href: `#/projects/${pid}/likely-wrong`, testid: "likely-link" }, "Likely wrong labels")
        : null,
      h("a.button", { href: `#/projects/${pid}/jobs`, testid: "jobs-link" }, "Jobs"),
      h("a.button", { href: `#/projects/${pid}/models`, testid: "models-link" }, "Models"),
    ),
    counts,
    h("div.split", {}, h("div", {}, overviewDiv, statusLegend())),
    filterBar,
    h("div.toolbar", {}, prev, next, pageInfo, selectedInfo),
    h(
      "table",
      { testid: "windows" },
      h(
        "thead",
        {},
        h("tr", {}, ["", "id", "window", "status", "valid", "claim", "time range"].map((c) => h("th", {}, c))),
      ),
      tbody,
    ),
  );
  if (mount.stale()) return; // the user moved on while this loaded
  const overview = createOverviewMap(overviewDiv, {
    onOpen: (id) => (location.hash = `#/projects/${pid}/windows/${id}`),
  });
  window.earthplatOverview = overview; // a handle for scripts and end-to-end tests
  if (can(role, "admin")) {
    overviewDiv.parentElement.parentElement.append(
      await runPanel({ project, overview, selected: () => [...selected], reload: load }),
    );
  }
  await load();
  return () => overview.dispose();
}

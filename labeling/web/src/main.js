// Hash router: #/signin, #/projects, #/projects/:id, #/projects/:id/windows/:wid,
// #/projects/:id/review[/:wid], #/projects/:id/likely-wrong, #/projects/:id/jobs,
// #/projects/:id/models. Each screen renders into <main id="app"> and may return a cleanup
// function, called when the route changes.

import "./style.css";
import { getKey } from "./api.js";
import { currentUser, signOut } from "./session.js";
import { clearError, h, startScreen } from "./ui.js";
import { signInScreen } from "./screens/signin.js";
import { projectsScreen, projectScreen } from "./screens/projects.js";
import { labelScreen } from "./screens/label.js";
import { reviewListScreen, reviewScreen } from "./screens/review.js";
import { jobsScreen } from "./screens/jobs.js";
import { likelyWrongScreen } from "./screens/likely.js";
import { modelsScreen } from "./screens/models.js";

const ROUTES = [
  [/^#\/signin$/, () => signInScreen()],
  [/^#\/projects$/, () => projectsScreen()],
  [/^#\/projects\/(\d+)$/, (m) => projectScreen(+m[1])],
  [/^#\/projects\/(\d+)\/windows\/(\d+)$/, (m) => labelScreen(+m[1], +m[2])],
  [/^#\/projects\/(\d+)\/review$/, (m) => reviewListScreen(+m[1])],
  [/^#\/projects\/(\d+)\/review\/(\d+)$/, (m) => reviewScreen(+m[1], +m[2])],
  [/^#\/projects\/(\d+)\/likely-wrong$/, (m) => likelyWrongScreen(+m[1])],
  [/^#\/projects\/(\d+)\/jobs$/, (m) => jobsScreen(+m[1])],
  [/^#\/projects\/(\d+)\/models$/, (m) => modelsScreen(+m[1])],
];

async function renderHeader() {
  const who = document.getElementById("who");
  if (!getKey()) {
    who.replaceChildren();
    return;
  }
  try {
    const user = await currentUser();
    who.replaceChildren(
      ...[
        h("span", { testid: "user-name" }, user.name),
        user.is_admin ? h("span.badge", { testid: "user-admin" }, "platform admin") : null,
        h("a", { href: "#/signin", testid: "switch-user" }, "Switch user"),
        h("button", { onclick: signOut, testid: "sign-out" }, "Sign out"),
      ].filter(Boolean), // replaceChildren would write a null as the text "null"
    );
  } catch {
    who.replaceChildren(h("button", { onclick: signOut, testid: "sign-out" }, "Sign out"));
  }
}

let cleanup = null;
let generation = 0;
async function route() {
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  const gen = ++generation;
  startScreen();
  clearError();
  const hash = location.hash || "#/projects";
  if (!getKey() && hash !== "#/signin") {
    location.hash = "#/signin";
    return;
  }
  renderHeader();
  for (const [re, screen] of ROUTES) {
    const m = hash.match(re);
    if (m) {
      const done = await screen(m);
      // the user may have moved on while the screen loaded: release what it holds at once
      if (gen === generation) cleanup = done;
      else if (typeof done === "function") done();
      return;
    }
  }
  location.hash = "#/projects";
}

window.addEventListener("hashchange", route);
// another key signed in: every screen shows the new user and their role
window.addEventListener("earthplat:identity", () => renderHeader());
route();

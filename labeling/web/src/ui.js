// Small DOM helpers and the error / notice banners.

/** h("div.cls", {attrs}, children...) -> element. Attributes starting with "on" are events. */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "testid") el.dataset.testid = v;
    else if (k in el && k !== "list") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function mount(...children) {
  const app = document.getElementById("app");
  app.replaceChildren(...children);
  return app;
}

let screenGen = 0;

/** Called by the router as each screen starts: what earlier screens mount from then on is dropped. */
export function startScreen() {
  return ++screenGen;
}

/**
 * A `mount` bound to the screen now starting (call it first thing, before any await). Once the
 * user has moved on it draws nothing and returns null, so a screen that finishes loading after
 * the next one started can never draw over it; the screen stops there.
 */
export function screenMount() {
  const gen = screenGen;
  const bound = (...children) => (gen === screenGen ? mount(...children) : null);
  bound.stale = () => gen !== screenGen;
  return bound;
}

/** Show an error (an ApiError's detail and fix, or any Error) at the top of the page. */
export function showError(err, extra) {
  const box = document.getElementById("error");
  const detail = err?.detail ?? err?.message ?? String(err);
  box.replaceChildren(
    h("strong", {}, err?.status ? `Error ${err.status}: ` : "Error: "),
    h("span.detail", { testid: "error-detail" }, detail),
    err?.fix ? h("div.fix", { testid: "error-fix" }, `Fix: ${err.fix}`) : null,
    extra || null,
    h("button.close", { onclick: clearError, title: "dismiss" }, "x"),
  );
  box.hidden = false;
}

export function clearError() {
  const box = document.getElementById("error");
  box.hidden = true;
  box.replaceChildren();
}

let noticeTimer;
export function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (box.hidden = true), 4000);
}

/** Run an async action, showing its error; returns its result or undefined. */
export async function guard(fn) {
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  }
}

export function statusBadge(status) {
  return h(`span.badge.status-${status}`, { testid: "status" }, status);
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) : "";
}

// Keyboard shortcuts of the labelling view, and the `?` overlay that lists them. One table:
// the handler and the overlay both read it.

import { h } from "./ui.js";

/** [keys as shown, what it does, action name]. */
export const SHORTCUTS = [
  ["1 ... 9", "pick the class with that number", "class"],
  ["V", "select / edit", "tool:select"],
  ["A", "draw a polygon", "tool:polygon"],
  ["H", "cut a hole into a polygon", "tool:hole"],
  ["O", "place a point", "tool:point"],
  ["S", "split a polygon along a line", "tool:split"],
  ["B", "brush (paint a class)", "tool:brush"],
  ["E", "eraser", "tool:eraser"],
  ["F", "fill a region", "tool:fill"],
  ["[ / ]", "smaller / larger brush", "size"],
  ["Esc", "cancel the shape being drawn", "cancel"],
  ["Delete", "remove the selected annotations (while drawing: the last vertex)", "delete"],
  ["M", "merge the selected annotations (one class)", "merge"],
  ["Ctrl+Z", "undo", "undo"],
  ["Ctrl+Shift+Z, Ctrl+Y", "redo", "redo"],
  ["Ctrl+S", "save", "save"],
  ["Enter", "submit for review", "submit"],
  ["N / P", "next / previous task", "task"],
  ["← / →", "earlier / later time step", "time"],
  ["L", "hide or show all annotations", "toggle-annotations"],
  ["?", "show or hide this list", "help"],
];

const TOOL_KEYS = {
  v: "select",
  a: "polygon",
  h: "hole",
  o: "point",
  s: "split",
  b: "brush",
  e: "eraser",
  f: "fill",
};

/** The action of a keydown event, or null: `{action, arg}`. */
export function actionOf(e) {
  const ctrl = e.ctrlKey || e.metaKey;
  const key = e.key;
  if (ctrl && !e.altKey) {
    const k = key.toLowerCase();
    if (k === "z") return { action: e.shiftKey ? "redo" : "undo" };
    if (k === "y") return { action: "redo" };
    if (k === "s") return { action: "save" };
    return null;
  }
  if (e.altKey) return null;
  if (key === "?") return { action: "help" };
  if (key === "Escape") return { action: "cancel" };
  if (key === "Delete" || key === "Backspace") return { action: "delete" };
  if (key === "Enter") return { action: "submit" };
  if (key === "ArrowLeft") return { action: "time", arg: -1 };
  if (key === "ArrowRight") return { action: "time", arg: 1 };
  if (key === "[") return { action: "size", arg: -1 };
  if (key === "]") return { action: "size", arg: 1 };
  if (/^[1-9]$/.test(key)) return { action: "class", arg: Number(key) - 1 };
  const k = key.toLowerCase();
  if (k === "n") return { action: "task", arg: 1 };
  if (k === "p") return { action: "task", arg: -1 };
  if (k === "l") return { action: "toggle-annotations" };
  if (k === "m") return { action: "merge" };
  if (TOOL_KEYS[k]) return { action: "tool", arg: TOOL_KEYS[k] };
  return null;
}

const TEXT_TYPES = new Set(["text", "search", "number", "password", "email", "url", "date", ""]);

/** "text": keys belong to a text field; "arrows": a control that moves with arrow keys. */
function focusKind(target) {
  const tag = target?.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT" || target?.isContentEditable) return "text";
  if (tag !== "INPUT") return null;
  return TEXT_TYPES.has(target.type) ? "text" : "arrows";
}

/**
 * Listen for shortcuts on the document and run `handlers[action](arg)`; returns the function
 * that stops listening. Keys typed into a text field are the field's (except Esc and Ctrl+S);
 * a focused slider or radio button keeps its own arrow keys.
 */
export function bindShortcuts(handlers) {
  const onKey = (e) => {
    const hit = actionOf(e);
    if (!hit || !handlers[hit.action]) return;
    const kind = focusKind(e.target);
    if (kind === "text" && hit.action !== "cancel" && hit.action !== "save") return;
    if (kind === "arrows" && hit.action === "time") return;
    if (e.target?.tagName === "BUTTON" && hit.action === "submit") return; // Enter presses it
    e.preventDefault();
    handlers[hit.action](hit.arg);
  };
  document.addEventListener("keydown", onKey);
  return () => document.removeEventListener("keydown", onKey);
}

/** The `?` overlay: a table of SHORTCUTS, hidden until toggled. */
export function shortcutsOverlay() {
  const box = h(
    "div.shortcuts",
    { testid: "shortcuts", hidden: true, role: "dialog", "aria-label": "keyboard shortcuts" },
    h("h3", {}, "Keyboard shortcuts"),
    h(
      "table",
      {},
      SHORTCUTS.map(([keys, what]) => h("tr", {}, h("td", {}, h("kbd", {}, keys)), h("td", {}, what))),
    ),
    h("p.hint", {}, "Press ? or Esc to close."),
  );
  box.addEventListener("click", () => (box.hidden = true));
  return box;
}

// Sign in with an API key: checked against GET /users/me, then kept in localStorage. A
// signed-in user may sign in again with another key: the new user replaces the old one.

import { ApiError } from "../api.js";
import { signIn } from "../session.js";
import { guard, h, screenMount } from "../ui.js";

export function signInScreen() {
  const mount = screenMount();
  const input = h("input", {
    type: "password",
    placeholder: "ep_...",
    autocomplete: "off",
    testid: "api-key",
    "aria-label": "API key",
  });
  const form = h(
    "form.card.signin",
    {
      onsubmit: (e) => {
        e.preventDefault();
        guard(async () => {
          const key = input.value.trim();
          if (!key) throw new ApiError(0, "enter an API key", "ask an admin for a key");
          await signIn(key); // replaces the user everywhere, even without signing out
          location.hash = "#/projects";
        });
      },
    },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste your earthplat API key. It is kept in this browser only."),
    input,
    h("button", { type: "submit", testid: "sign-in" }, "Sign in"),
  );
  mount(form);
  input.focus();
}

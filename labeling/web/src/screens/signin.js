// Sign in with an API key: checked against GET /users/me, then kept in localStorage.

import { ApiError, api, setKey } from "../api.js";
import { guard, h, mount } from "../ui.js";

export function signInScreen() {
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
          setKey(key);
          try {
            await api("/users/me");
          } catch (err) {
            setKey(null);
            throw err;
          }
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

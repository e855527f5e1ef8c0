// "More like this": the windows nearest to this one in the project's embedding index
// (thumbnail, distance, status), which a labeller adds to their own queue. Without an index
// the panel says which job builds it and lets a project admin start it.

import { api, authHeaders } from "./api.js";
import { can, currentUser } from "./session.js";
import { guard, h, notice, statusBadge } from "./ui.js";

/** lon/lat -> the XYZ tile holding it at zoom z. */
function tileOf(lon, lat, z) {
  const n = 2 ** z;
  const x = Math.floor(((lon + 180) / 360) * n);
  const r = (lat * Math.PI) / 180;
  const y = Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n);
  return [x, y];
}

/** A small image of a window: the tile at its centre of its first imagery layer. */
async function thumbnail(windowId) {
  const img = h("img.thumb", { alt: `window ${windowId}`, testid: `thumb-${windowId}` });
  try {
    const info = await api(`/tiles/${windowId}`);
    const layer = info.layers.find((l) => l.modality !== "label") || info.layers[0];
    if (!layer) return img;
    const t = Math.max(0, layer.periods.findIndex((_, i) => !layer.missing_periods.includes(i)));
    const [w, s, e, n] = info.bounds;
    const z = Math.max(0, Math.min(18, Math.floor(Math.log2(360 / Math.max(e - w, 1e-6)))));
    const [x, y] = tileOf((w + e) / 2, (s + n) / 2, z);
    const url = layer.tiles.replace("{t}", t).replace("{z}", z).replace("{x}", x).replace("{y}", y);
    const r = await fetch(url, { headers: authHeaders() });
    if (r.ok) img.src = URL.createObjectURL(await r.blob());
  } catch {
    /* a thumbnail is a nicety: the row still lists the window */
  }
  return img;
}

export async function similarPanel({ pid, wid, role }) {
  const box = h("div.similar", { testid: "similar" });
  let found;
  try {
    found = await api(`/projects/${pid}/windows/${wid}/similar?k=6`);
  } catch (e) {
    if (e.status !== 404) throw e;
    const noIndex = /no embedding index/.test(e.detail);
    box.append(
      h(
        "p.hint",
        { testid: "similar-missing" },
        noIndex
          ? "No embedding index yet: an embeddings job builds it (from a fine-tuned model's encoder)."
          : e.detail,
      ),
    );
    if (noIndex && can(role, "admin")) {
      const models = await api(`/models?project_id=${pid}`);
      box.append(
        models.length
          ? h(
              "button",
              {
                testid: "similar-build",
                onclick: () =>
                  guard(async () => {
                    const job = await api(`/projects/${pid}/jobs`, {
                      method: "POST",
                      body: { kind: "embeddings", payload: { model_id: models[0].id } },
                    });
                    notice(`Started embeddings job ${job.id} with model ${models[0].name}.`);
                  }),
              },
              `Build it with ${models[0].name}`,
            )
          : h("p.hint", {}, "Fine-tune a model first: its encoder embeds the windows."),
      );
    } else if (noIndex) {
      box.append(h("p.hint", {}, "Ask a project admin to run it."));
    }
    return box;
  }
  if (!found.length) {
    box.append(h("p.hint", {}, "No other window in the index."));
    return box;
  }
  const rows = await Promise.all(
    found.map(async (m) => {
      const [w, thumb] = await Promise.all([api(`/windows/${m.window_id}`), thumbnail(m.window_id)]);
      const pickBox = h("input", { type: "checkbox", value: m.window_id, testid: `similar-pick-${m.window_id}` });
      return h(
        "li.similar-row",
        { testid: `similar-${m.window_id}` },
        pickBox,
        thumb,
        h(
          "span",
          {},
          h("a", { href: `#/projects/${pid}/windows/${m.window_id}` }, m.name),
          h("br"),
          h("span.muted", { testid: "similar-distance" }, `distance ${(1 - m.score).toFixed(3)} `),
          statusBadge(w.status),
        ),
      );
    }),
  );
  const add = h(
    "button",
    {
      testid: "similar-queue",
      onclick: () =>
        guard(async () => {
          const ids = [...box.querySelectorAll("input[type=checkbox]:checked")].map((i) => Number(i.value));
          if (!ids.length) {
            notice("Tick the windows to add first.");
            return;
          }
          const me = await currentUser();
          await api(`/projects/${pid}/assignments`, {
            method: "POST",
            body: { user_id: me.id, window_ids: ids },
          });
          notice(`Added ${ids.length} window(s) to your queue: "Next task" hands them out first.`);
        }),
    },
    "Add to my queue",
  );
  box.append(h("ul.similar-list", {}, rows), can(role, "labeler") ? add : null);
  return box;
}

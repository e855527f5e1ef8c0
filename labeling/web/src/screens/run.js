// Starting jobs from the project page (project admins): fine-tune (base encoder, layers, head,
// steps, batch size, with an ETA from the platform's measured samples/s), inference (a
// registered model over the selected windows, all windows, or a box drawn on the overview
// map), embeddings, materialize and export. Each one is a POST of the job's payload; the
// jobs page follows it.

import { api } from "../api.js";
import { guard, h, notice } from "../ui.js";

function field(label, input, hint) {
  return h("label.field", {}, h("span", {}, label), input, hint ? h("span.hint", {}, hint) : null);
}

async function startJob(pid, kind, payload) {
  const job = await guard(() =>
    api(`/projects/${pid}/jobs`, { method: "POST", body: { kind, payload } }),
  );
  if (job) {
    notice(`Started ${kind} job ${job.id}.`);
    location.hash = `#/projects/${pid}/jobs`;
  }
  return job;
}

function modelOptions(models, filter = () => true) {
  const list = models.filter(filter);
  return list.length
    ? list.map((m) => h("option", { value: m.id }, `#${m.id} ${m.name} (${m.task_type || "?"})`))
    : [h("option", { value: "" }, "no registered model yet: fine-tune one first")];
}

function finetuneForm(ctx) {
  const { pid, encoders, layers } = ctx;
  const encoder = h(
    "select",
    { testid: "ft-encoder" },
    encoders.map((e) =>
      e.kind === "olmoearth"
        ? // a published checkpoint: release and licence; one that does not load is shown, not offered
          h(
            "option",
            { value: e.id, disabled: e.usable === false, title: e.error || "" },
            e.usable === false
              ? `${e.name} (published; does not load: ${e.error})`
              : `${e.name} (OlmoEarth ${e.version}, licence: ${e.licence})`,
          )
        : h("option", { value: e.id }, e.kind === "preset" ? `preset ${e.name}` : `${e.name} (registered)`),
    ),
  );
  const layerBoxes = layers.map((name) =>
    h("label.inline", {}, h("input", { type: "checkbox", value: name, checked: true, testid: `ft-layer-${name}` }), name),
  );
  const head = h("input", { type: "text", placeholder: "task default", testid: "ft-head", style: "width:9em" });
  const steps = h("input", { type: "number", min: 1, value: 100, testid: "ft-steps", style: "width:7em" });
  const batch = h("input", { type: "number", min: 1, value: 8, testid: "ft-batch", style: "width:5em" });
  const chip = h("input", { type: "number", min: 8, placeholder: "config", testid: "ft-chip", style: "width:6em" });
  const extra = h("textarea", {
    rows: 2,
    placeholder: '{"trainer.val_check_interval": null}',
    testid: "ft-overrides",
  });
  const eta = h("p.hint", { testid: "ft-eta" }, "ETA: ...");

  const overrides = () => {
    const o = extra.value.trim() ? JSON.parse(extra.value) : {};
    o["trainer.max_steps"] = Number(steps.value);
    o["data.config.batch_size"] = Number(batch.value);
    if (chip.value) o["data.config.chip_size"] = Number(chip.value);
    if (head.value.trim()) o["model.head"] = { name: head.value.trim() };
    return o;
  };
  async function estimate() {
    const q = new URLSearchParams({ encoder: encoder.value, steps: steps.value, batch_size: batch.value });
    const e = await api(`/projects/${pid}/finetune/estimate?${q}`).catch(() => null);
    if (!e) eta.textContent = "ETA: unknown";
    else if (e.seconds == null) eta.textContent = `ETA: unknown (${e.note || "no run measured yet"})`;
    else {
      const mins = e.seconds / 60;
      eta.textContent =
        `ETA: about ${mins < 1 ? `${Math.round(e.seconds)} s` : `${mins.toFixed(1)} min`} of training ` +
        `at ${e.samples_per_s.toFixed(1)} samples/s (measured on ${e.based_on.length} earlier run(s))`;
    }
  }
  for (const el of [encoder, steps, batch]) el.addEventListener("change", estimate);
  estimate();

  const go = () =>
    guard(async () => {
      let o;
      try {
        o = overrides();
      } catch (err) {
        throw { detail: `the overrides are not JSON (${err.message})`, fix: 'write e.g. {"trainer.max_steps": 50}' };
      }
      const chosen = layerBoxes.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      const payload = { encoder: encoder.value, overrides: o };
      if (chosen.length && chosen.length < layers.length) payload.layers = chosen;
      await startJob(pid, "finetune", payload);
    });
  return h(
    "div.form",
    { testid: "form-finetune" },
    field("Base encoder", encoder),
    field("Layers", h("span", {}, layerBoxes.length ? layerBoxes : "none materialised yet")),
    field("Task head", head, "e.g. linear, upernet; empty: the task's default"),
    field("Steps", steps),
    field("Batch size", batch),
    field("Chip size", chip),
    field("More overrides (JSON)", extra),
    eta,
    h("button.primary", { onclick: go, testid: "ft-start" }, "Start fine-tune"),
  );
}

function inferenceForm(ctx) {
  const { pid, models, overview, selected } = ctx;
  const model = h("select", { testid: "inf-model" }, modelOptions(models, (m) => m.task_type !== "embedding"));
  const scope = h(
    "select",
    { testid: "inf-scope" },
    h("option", { value: "all" }, "all windows"),
    h("option", { value: "selected" }, "the selected windows (table)"),
    h("option", { value: "aoi" }, "an AOI drawn on the map"),
  );
  const aoiInfo = h("span.hint", { testid: "inf-aoi" });
  let bbox = null;
  const draw = h(
    "button",
    {
      testid: "inf-draw",
      onclick: async () => {
        aoiInfo.textContent = "drag a box on the overview map";
        bbox = await overview.drawAoi();
        aoiInfo.textContent = `AOI ${bbox.join(", ")}`;
        scope.value = "aoi";
      },
    },
    "Draw AOI",
  );
  const go = () =>
    guard(async () => {
      if (!model.value) throw { detail: "no model chosen", fix: "fine-tune a model first" };
      const body = { model_id: Number(model.value) };
      if (scope.value === "selected") {
        const ids = selected();
        if (!ids.length) throw { detail: "no window is selected", fix: "tick windows in the table" };
        body.window_ids = ids;
      } else if (scope.value === "aoi") {
        if (!bbox) throw { detail: "no AOI drawn", fix: "press Draw AOI and drag a box on the map" };
        body.bbox = bbox;
      }
      const job = await api(`/projects/${pid}/predictions`, { method: "POST", body });
      notice(`Started inference job ${job.id}.`);
      location.hash = `#/projects/${pid}/jobs`;
    });
  return h(
    "div.form",
    { testid: "form-inference" },
    field("Model", model),
    field("Windows", scope),
    h("div.toolbar", {}, draw, aoiInfo),
    h("button.primary", { onclick: go, testid: "inf-start" }, "Start inference"),
  );
}

function embeddingsForm(ctx) {
  const { pid, models } = ctx;
  const model = h("select", { testid: "emb-model" }, modelOptions(models));
  const go = () =>
    guard(async () => {
      if (!model.value) throw { detail: "no model chosen", fix: "fine-tune or register a model first" };
      await startJob(pid, "embeddings", { model_id: Number(model.value) });
    });
  return h(
    "div.form",
    { testid: "form-embeddings" },
    h("p.hint", {}, "Embeds every window with the model's encoder: the index behind 'More like this'."),
    field("Model", model),
    h("button.primary", { onclick: go, testid: "emb-start" }, "Build embedding index"),
  );
}

function materializeForm(ctx) {
  const { pid, sources } = ctx;
  const boxes = sources.map((s) =>
    h("label.inline", {}, h("input", { type: "checkbox", value: s.name, checked: true }), `${s.name} (${s.kind}, ${s.modality || "?"})`),
  );
  const go = () =>
    guard(async () => {
      const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => ({ source: i.value }));
      if (!chosen.length) throw { detail: "no source chosen", fix: "upload a raster or register a STAC source" };
      await startJob(pid, "materialize", chosen.length === sources.length ? {} : { layers: chosen });
    });
  return h(
    "div.form",
    { testid: "form-materialize" },
    field("Sources", h("span", {}, boxes.length ? boxes : "none: upload a raster or register a STAC source")),
    h("button.primary", { onclick: go, testid: "mat-start" }, "Materialize"),
  );
}

function exportForm(ctx) {
  const { pid } = ctx;
  const boxes = ["accepted", "submitted"].map((s) =>
    h("label.inline", {}, h("input", { type: "checkbox", value: s, checked: s === "accepted" }), s),
  );
  const go = () =>
    guard(async () => {
      const statuses = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      await startJob(pid, "export_dataset", { statuses });
    });
  return h(
    "div.form",
    { testid: "form-export" },
    field("Windows", h("span", {}, boxes)),
    h("button.primary", { onclick: go, testid: "exp-start" }, "Export dataset"),
  );
}

const FORMS = [
  ["finetune", "Fine-tune", finetuneForm],
  ["inference", "Inference", inferenceForm],
  ["embeddings", "Embeddings", embeddingsForm],
  ["materialize", "Materialize", materializeForm],
  ["export", "Export", exportForm],
];

/** The "Run a job" panel: one tab per job kind. */
export async function runPanel({ project, overview, selected }) {
  const pid = project.id;
  const [encoders, models, layerRows] = await Promise.all([
    api(`/encoders?project_id=${pid}`).catch(() => []),
    api(`/models?project_id=${pid}`).catch(() => []),
    api(`/projects/${pid}/layers`).catch(() => []),
  ]);
  const layers = [...new Set(layerRows.filter((l) => l.kind === "materialized" && l.modality !== "label").map((l) => l.name))];
  const sources = layerRows.filter((l) => l.kind === "upload" || l.kind === "stac");
  const ctx = { pid, project, encoders, models, layers, sources, overview, selected };
  const body = h("div.tab-body");
  const tabs = FORMS.map(([kind, label, build]) =>
    h(
      "button",
      {
        testid: `run-${kind}`,
        onclick: (e) => {
          for (const b of tabs) b.classList.toggle("active", b === e.currentTarget);
          body.replaceChildren(build(ctx));
        },
      },
      label,
    ),
  );
  return h("section.run.card", { testid: "run-panel" }, h("h2", {}, "Run a job"), h("div.toolbar", {}, tabs), body);
}

"""``export_dataset``: a project's annotated windows as an earthplat dataset ready for
fine-tuning (windows, imagery layers and rasterized label layers), the same export a
``finetune`` job trains on.

Payload::

    {"dataset": "default", "windows": [ids] | null, "statuses": ["accepted"],
     "layers": null}                       # imagery layers to include (default all)

The dataset is written to ``projects/ID/exports/job-ID``; the result names its path, task,
classes, inputs and label, which are what ``FinetuneDataConfig`` needs
(``earthplat finetune --config ... --data.config.path PATH``).
"""

from __future__ import annotations

from typing import Any

from api.jobs.context import JobContext
from api.jobs.handlers.finetune import export_training_data


def run(ctx: JobContext) -> dict[str, Any]:
    out = ctx.project_dir() / "exports" / f"job-{ctx.job_id}"
    info = export_training_data(ctx, out)
    ctx.progress(1.0, f"exported to {out}")
    return {"path": str(out), **info}

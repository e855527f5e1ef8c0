"""``export_dataset``: a project's annotated windows as an earthplat dataset ready for
fine-tuning (windows, imagery layers and rasterized label layers), the same export a
``finetune`` job trains on.

Payload::

    {"dataset": "default", "windows": [ids] | null, "statuses": ["accepted"],
     "layers": null}                       # imagery layers to include (default all)

The dataset is written to ``projects/ID/exports/job-ID``; the result names its path, task,
classes, inputs and label, which are what ``FinetuneDataConfig`` needs
(``earthplat finetune --config ... --data.config.path PATH``). The same directory is packed as
``job-ID.tar.gz`` beside it, downloadable as the job's ``dataset.tar.gz`` artifact (it unpacks
to ``job-ID/``, a dataset that loads where it lands: window paths inside are relative).
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

from api.jobs.context import JobContext
from api.jobs.handlers.finetune import export_training_data


def run(ctx: JobContext) -> dict[str, Any]:
    out = ctx.project_dir() / "exports" / f"job-{ctx.job_id}"
    info = export_training_data(ctx, out)
    ctx.progress(0.9, f"exported to {out}; packing")
    archive = pack(out)
    ctx.progress(1.0, f"exported to {out} ({archive.stat().st_size / 1e6:.1f} MB packed)")
    return {"path": str(out), **info, "artifacts": {"dataset.tar.gz": str(archive)}}


def pack(directory: Path) -> Path:
    """``directory`` as ``<directory>.tar.gz`` (members under ``<name>/``), written to a
    temporary name first so a reclaimed job never serves half an archive."""
    archive = directory.with_name(directory.name + ".tar.gz")
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(directory, arcname=directory.name)
    partial.replace(archive)
    return archive

"""``materialize``: ingest a project's windows from its registered sources (uploaded GeoTIFFs,
STAC sources) into the project's earthplat dataset.

Payload::

    {"dataset": "default",                 # the project dataset (name)
     "windows": [window ids] | null,       # default: every window of the dataset
     "layers": [{"source": "<layer name or id>",  # an upload or STAC source of the project
                 "layer": "s2",            # window layer to write (default: the source name)
                 "modality": null,         # default: the source's modality
                 "period": "30d", "method": "first", "max_periods": null, "bands": null,
                 "datetime": null,         # acquisition time of files that carry none
                 "nodata": null, "to_db": false}],
     "ignore_errors": true}                # windows the source misses do not fail the job

Work runs in chunks of windows through ``earthplat.data.ingest`` (parallel, retried); progress
and a cancel check come between chunks. Finished layers are skipped, so a retried or reclaimed
job resumes where the last attempt stopped.

Local files are read only under the server's source roots (``Settings.allowed_source_roots``):
a STAC source's catalogue and the asset hrefs of the items each window reads (an uploaded raster:
its project's folder). A file outside fails the job at once (not retried, whatever
``ignore_errors`` says), naming the file, the roots and the fix.
"""

from __future__ import annotations

from typing import Any

from api.jobs.context import JobContext, PermanentJobError

CHUNKS = 20
"""Progress steps per layer."""


def _source(spec: Any, row, modality: str, ctx: JobContext):
    from earthplat.data.sources.factory import build_source

    if row.kind == "upload":  # the platform wrote it into the project's folder
        return build_source(
            modality,
            paths=[row.path],
            datetime=spec.datetime,
            nodata=spec.nodata,
            to_db=spec.to_db,
            file_bands=spec.file_bands,
            allowed_roots=[ctx.project_dir()],
        )
    if row.kind == "stac":
        info = row.info or {}
        return build_source(
            modality,
            stac=row.path,
            collections=[info["collection"]] if info.get("collection") else None,
            max_cloud_cover=info.get("max_cloud_cover"),
            to_db=spec.to_db,
            allowed_roots=_source_roots(ctx),
        )
    raise PermanentJobError(f"layer {row.name!r} is a {row.kind} layer, not a source")


def _source_roots(ctx: JobContext) -> list:
    from api.settings import Settings

    settings = ctx.settings if ctx.settings is not None else Settings(data_dir=ctx.data_dir)
    return settings.allowed_source_roots()


class _RootGuard:
    """The source, remembering the first ``SourceRootError`` of its searches: ingest turns a
    window's error into a per-window failure, while a file outside the roots must fail the
    job."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.refused: Exception | None = None

    def search(self, window: Any) -> list:
        from earthplat.data.sources.roots import SourceRootError

        try:
            return self.source.search(window)
        except SourceRootError as e:
            self.refused = self.refused or e
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)

    def check(self) -> None:
        if self.refused is not None:
            raise _refused(self.refused)


def _refused(e: Any) -> PermanentJobError:
    from api.errors import source_roots_fix

    return PermanentJobError(f"{e}; fix: {source_roots_fix(e)}")


def _resolve(session, project_id: int, params: Any):
    from sqlalchemy import select

    from labeling.models import DatasetRecord, Layer, WindowRecord

    name = params.dataset
    dataset = session.scalar(
        select(DatasetRecord).where(
            DatasetRecord.project_id == project_id, DatasetRecord.name == name
        )
    )
    if dataset is None:
        raise PermanentJobError(f"project {project_id} has no dataset {name!r}; create windows")
    query = select(WindowRecord).where(WindowRecord.dataset_id == dataset.id)
    if params.windows:
        query = query.where(WindowRecord.id.in_(params.windows))
    rows = list(session.scalars(query.order_by(WindowRecord.id)))
    if not rows:
        raise PermanentJobError(f"dataset {name!r} of project {project_id} has no such windows")
    sources = {
        key: row
        for row in session.scalars(
            select(Layer).where(Layer.project_id == project_id, Layer.kind.in_(("upload", "stac")))
        )
        for key in (row.name, str(row.id))
    }
    from api.jobs.payloads import LayerSource

    specs = params.layers or [LayerSource(source=row.name) for row in set(sources.values())]
    for spec in specs:
        if str(spec.source) not in sources:
            raise PermanentJobError(
                f"project {project_id} has no source {spec.source!r}; upload a raster or "
                f"register a STAC source (known: {', '.join(sorted(sources)) or 'none'})"
            )
    return dataset, rows, sources, specs


def _record_layers(ctx: JobContext, windows: dict[str, Any], name: str, modality: str, ds) -> int:
    """A ``materialized`` layer row per window that now holds the layer (once), and the
    windows' ``valid_fraction``: the best period's share of valid pixels over their imagery
    layers (label maps do not count), which ``tasks/next`` uses to hand out good windows first."""
    from sqlalchemy import select, update

    from api.database import begin_write
    from earthplat.sensors import get_modality
    from labeling.models import Layer, WindowRecord

    imagery = not get_modality(modality).categorical

    with ctx.session_factory() as s:
        begin_write(s)
        have = set(
            s.scalars(
                select(Layer.window_id).where(
                    Layer.project_id == ctx.project_id,
                    Layer.kind == "materialized",
                    Layer.name == name,
                )
            )
        )
        added = 0
        for wname, row in windows.items():
            if not ds.layer_done(wname, name):
                continue
            meta = ds.layer_metadata(wname, name)
            if imagery:
                best = max(meta.get("valid_fraction") or [0.0])
                s.execute(
                    update(WindowRecord)
                    .where(WindowRecord.id == row.id)
                    .where(
                        (WindowRecord.valid_fraction.is_(None))
                        | (WindowRecord.valid_fraction < best)
                    )
                    .values(valid_fraction=best)
                    .execution_options(synchronize_session=False)
                )
            if row.id in have:
                continue
            s.add(
                Layer(
                    project_id=ctx.project_id,
                    window_id=row.id,
                    name=name,
                    kind="materialized",
                    modality=modality,
                    path=ds.layer_path(wname, name),
                    crs=meta["crs"],
                    info={k: meta[k] for k in ("bands", "periods", "shape", "valid_fraction")},
                    created_by=ctx.created_by,
                )
            )
            added += 1
        s.commit()
    return added


def run(ctx: JobContext) -> dict[str, Any]:
    from earthplat.data.dataset import Dataset
    from earthplat.data.ingest import IngestConfig, ingest
    from earthplat.data.materialize import LayerSpec
    from earthplat.sensors import get_modality

    ctx.project_dir()  # a project is required
    with ctx.session_factory() as s:
        params = ctx.params
        dataset, rows, sources, specs = _resolve(s, ctx.project_id, params)
        windows = {row.name: row for row in rows}
        window_objs = [row.to_window() for row in rows]
        root = dataset.path
    ds = Dataset(root)
    cfg = IngestConfig(
        workers=params.workers,
        ignore_errors=params.ignore_errors,
        progress=False,
    )
    total = len(specs) * len(window_objs)
    done_units, summary = 0, {}
    ctx.log(f"materialising {len(specs)} layer(s) for {len(window_objs)} window(s) into {root}")
    for spec in specs:
        row = sources[str(spec.source)]
        modality = get_modality(spec.modality or row.modality or "").name
        layer = LayerSpec(
            name=spec.layer or row.name,
            modality=modality,
            bands=spec.bands,
            period=spec.period,
            max_periods=spec.max_periods,
            method=spec.method,
        )
        from earthplat.data.sources.roots import SourceRootError

        try:
            source = _RootGuard(_source(spec, row, modality, ctx))
        except SourceRootError as e:  # the catalogue itself
            raise _refused(e) from None
        report = {"done": 0, "skipped": 0, "missing": {}, "failed": {}}
        step = max(1, -(-len(window_objs) // CHUNKS))
        for i in range(0, len(window_objs), step):
            ctx.check()
            chunk = window_objs[i : i + step]
            try:
                r = ingest(ds, chunk, layer, source, cfg)
            finally:  # ignore_errors or not, a refused file fails the job
                source.check()
            report["done"] += len(r.done)
            report["skipped"] += len(r.skipped)
            report["missing"].update(r.missing)
            report["failed"].update(r.failed)
            done_units += len(chunk)
            ctx.progress(
                done_units / total, f"{layer.name}: {i + len(chunk)}/{len(window_objs)} windows"
            )
        for name, reason in sorted(report["failed"].items()):
            ctx.log(f"{layer.name} {name}: {reason}", "warning")
        for name, reason in sorted(report["missing"].items()):
            ctx.log(f"{layer.name} {name}: missing ({reason})", "warning")
        ctx.log(
            f"{layer.name}: {report['done']} materialised, {report['skipped']} already done, "
            f"{len(report['missing'])} missing (no data), {len(report['failed'])} failed"
        )
        _record_layers(ctx, windows, layer.name, modality, ds)
        summary[layer.name] = report
    if all(r["done"] + r["skipped"] == 0 for r in summary.values()):
        raise PermanentJobError(
            "no window could be materialised: "
            + "; ".join(
                f"{k}: {next(iter({**v['missing'], **v['failed']}.values()), '?')}"
                for k, v in summary.items()
            )
        )
    return {"dataset": root, "windows": len(window_objs), "layers": summary}

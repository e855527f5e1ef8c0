"""``earthplat predict``: a thin CLI over :func:`earthplat.inference.predict`.

earthplat predict --model runs/flood/model --input scene.tif --out out/flood.tif
earthplat predict --model runs/flood --input datasets/spain --out out/spain --devices 2
"""

from __future__ import annotations


def predict(
    model: str,
    input: str,
    out: str,
    batch_size: int = 8,
    overlap: int | None = None,
    outputs: list[str] | None = None,
    bands: list[str] | None = None,
    modality: str | None = None,
    date: str | None = None,
    dates: list[str] | None = None,
    bbox: list[float] | None = None,
    chunk_size: int = 512,
    devices: int = 1,
    threshold: float = 0.3,
    windows: list[str] | None = None,
    layers: dict[str, str] | None = None,
    allow_substitution: bool = False,
) -> str:
    """Predict a GeoTIFF (with a CRS) or an earthplat dataset directory with a task model.

    Writes a COG (overviews, legend), GeoJSON (WGS84), GeoParquet (embeddings) and a STAC Item;
    pixels without valid input are nodata in every output.

    Args:
        model: An exported task model dir, a finetune run dir or .ckpt, or an encoder export
            (predicts embeddings).
        input: A GeoTIFF, or an earthplat dataset directory (outputs per window).
        out: Output COG path (.tif; siblings .geojson, .item.json) or a directory.
        batch_size: Tiles per forward pass.
        overlap: Tile overlap in pixels (default: a quarter of the chip size).
        outputs: Any of cog, geojson, parquet, stac (default: what the task produces).
        bands: The file's band names in order, BAND or DATE_BAND (default: its band
            descriptions, else the model's band order when the count matches).
        modality: The sensor product of the input raster (default: the model's first input).
        date: Acquisition date YYYY-MM-DD of a file that names none.
        dates: Dates of a multi-date file without dated descriptions: one per block of --bands
            (date-major), or one per file band.
        bbox: Predict only [minx, miny, maxx, maxy] (in the raster's CRS).
        chunk_size: Side in pixels of one unit of work; memory depends on it, not on the area.
        devices: CPU processes sharing the chunks (Lightning DDP over gloo).
        threshold: Detection score threshold.
        windows: Dataset input: only these windows (names).
        layers: Dataset input: modality -> layer to read it from (default: the first layer of
            each modality the model reads).
        allow_substitution: Accept input of another product of the model's sensor (L2A for a
            model trained on L1C); recorded in the outputs' metadata.
    """
    from earthplat.inference.dataset import is_dataset
    from earthplat.inference.pipeline import predict as _predict

    result = _predict(
        model,
        input,
        out,
        batch_size=batch_size,
        overlap=overlap,
        outputs=outputs,
        bands=bands,
        modality=modality,
        date=date,
        dates=dates,
        bbox=bbox,
        chunk_size=chunk_size,
        devices=devices,
        threshold=threshold,
        windows=windows,
        layers=layers,
        allow_substitution=allow_substitution,
        progress=None if is_dataset(input) else _progress_bar(),  # datasets: a window bar
    )
    attrs = getattr(result, "attrs", {})
    path = str(attrs.get("path") or attrs.get("geojson") or out)
    print(f"prediction written to {path}")
    return path


def _progress_bar():
    """A ``progress(done, total)`` callback drawing a tqdm bar (count and ETA)."""
    from tqdm.auto import tqdm

    state: dict = {}

    def progress(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc="predict", unit="chunk")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return progress

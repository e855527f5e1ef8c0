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
    bbox: list[float] | None = None,
    chunk_size: int = 512,
    devices: int = 1,
    threshold: float = 0.3,
) -> str:
    """Predict a GeoTIFF (with a CRS) or an earthplat dataset dir with a task model.

    Writes a COG (overviews, legend), GeoJSON (WGS84), GeoParquet (embeddings), a STAC Item.

    Args:
        model: an exported task model dir, a finetune run dir or .ckpt, or an encoder export
            (predicts embeddings).
        input: a GeoTIFF or an earthplat dataset directory (outputs per window).
        out: output COG path (``.tif``; siblings ``.geojson``, ``.item.json``) or a directory.
        batch_size: tiles per forward pass.
        overlap: tile overlap in pixels (default: a quarter of the chip size).
        outputs: any of cog, geojson, parquet, stac (default: what the task produces).
        bands: the file's band names in order (default: band descriptions, else the model's
            band order when the count matches).
        modality: the modality of the input raster (default: the model's first input).
        date: acquisition date YYYY-MM-DD when the file names none.
        bbox: predict only ``minx miny maxx maxy`` (in the raster's CRS).
        chunk_size: side in pixels of one unit of work; memory depends on it, not on the area.
        devices: CPU processes sharing the chunks (Lightning DDP over gloo).
        threshold: detection score threshold.
    Returns:
        the path of the output (the COG, the GeoJSON for detections, or the directory).
    """
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
        bbox=bbox,
        chunk_size=chunk_size,
        devices=devices,
        threshold=threshold,
    )
    attrs = getattr(result, "attrs", {})
    path = str(attrs.get("path") or attrs.get("geojson") or out)
    print(f"prediction written to {path}")
    return path

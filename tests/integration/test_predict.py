"""``earthplat predict`` end to end: the CLI on an exported model, 2-rank DDP against one
process, an encoder export as an embedding model (COG + GeoParquet), and a dataset directory."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import torch

from earthplat.inference import predict
from earthplat.nn.export import export_encoder
from earthplat.nn.task_model import export_task_model
from earthplat.traincore.distributed import run_distributed_test
from tests.unit.earthplat.inference.models import CHIP_BBOX, S2_CHIP, S2_DATE, pico_model, real

DDP_KW = dict(bbox=CHIP_BBOX, date=S2_DATE, chunk_size=48, outputs=["cog"], batch_size=4)


def predict_on_this_rank(model_dir: str, src: str, out: str) -> np.ndarray:
    """Runs on each rank of ``run_distributed_test`` (module level so ranks can import it)."""
    torch.set_num_threads(1)
    return predict(model_dir, src, out, devices=2, **DDP_KW).values


@pytest.mark.distributed
@pytest.mark.slow
def test_two_rank_ddp_equals_one_process(shared_data, tmp_path) -> None:
    torch.set_num_threads(1)
    src = str(real(shared_data, S2_CHIP))
    model_dir = str(export_task_model(pico_model("pixel_regression", seed=3), tmp_path / "m"))
    single = predict(model_dir, src, tmp_path / "one.tif", **DDP_KW).values
    ranks = run_distributed_test(
        predict_on_this_rank, model_dir, src, str(tmp_path / "two.tif"), world_size=2, timeout=240
    )
    assert single.shape == (2, 134, 156) and single.std() > 0
    for values in ranks:  # every rank sees the assembled output
        np.testing.assert_allclose(values, single, rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "two.tif.parts").exists()


def test_cli_predicts_an_exported_model(shared_data, tmp_path, capsys) -> None:
    from earthplat.cli import main

    model_dir = export_task_model(pico_model("segmentation", seed=2), tmp_path / "model")
    out = tmp_path / "pred" / "flood.tif"
    bbox = json.dumps(CHIP_BBOX)
    main(
        [
            "predict",
            f"--model={model_dir}",
            f"--input={real(shared_data, S2_CHIP)}",
            f"--out={out}",
            f"--bbox={bbox}",
            f"--date={S2_DATE}",
            "--batch_size=4",
        ]
    )
    assert f"prediction written to {out}" in capsys.readouterr().out
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 4326 and (ds.height, ds.width) == (134, 156)
        assert json.loads(ds.tags()["CLASSES"])[1]["label"] == "water"
    item = json.loads(out.with_suffix(".item.json").read_text())
    assert item["properties"]["mlm:architecture"] == "earthplat + linear head"
    assert out.with_suffix(".geojson").exists()


def test_encoder_export_predicts_embeddings(shared_data, tmp_path) -> None:
    torch.set_num_threads(1)
    encoder = pico_model("embedding").backbone.encoder
    enc_dir = export_encoder(encoder, tmp_path / "encoder", extra={"chip_size": 32})
    out = tmp_path / "emb.tif"
    result = predict(
        str(enc_dir),
        real(shared_data, S2_CHIP),
        out,
        bbox=CHIP_BBOX,
        date=S2_DATE,
        outputs=["cog", "parquet"],
    )
    assert result.sizes["band"] == 64 and result.sizes["y"] == 34  # 134 px / patch 4
    with rasterio.open(out) as ds:
        assert ds.descriptions[0] == "embedding_000" and ds.res[0] == pytest.approx(
            4 * 8.983e-5, rel=1e-3
        )
    table = gpd.read_parquet(out.with_suffix(".parquet"))
    assert len(table) == 34 * 39 and table.crs.to_epsg() == 4326
    first = table.iloc[0]
    np.testing.assert_allclose(
        np.asarray(first["embedding"]), result.values[:, first["row"], first["col"]], rtol=1e-6
    )


def test_dataset_directory_is_predicted_per_window(shared_data, tmp_path) -> None:
    from earthplat.eval.recipes import ingest_slovenia

    torch.set_num_threads(1)
    root = real(shared_data, "real/s2_slovenia_eolearn")
    _, windows = ingest_slovenia(root, tmp_path / "ds", size=32)
    tree = predict(pico_model("segmentation"), tmp_path / "ds", tmp_path / "out")
    index = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert set(index["windows"]) | set(index["skipped"]) == {w.name for w in windows}
    name = next(iter(index["windows"]))
    node = tree[name].to_dataset()["prediction"]
    window = next(w for w in windows if w.name == name)
    assert node.rio.crs.to_string() == window.crs
    assert node.rio.transform() == window.transform
    assert (tmp_path / "out" / index["windows"][name]["stac"]).exists()

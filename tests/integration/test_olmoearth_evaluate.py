"""``earthplat evaluate --extra_inputs``: published OlmoEarth weights (trained on Sentinel-2
L2A) on the shared EuroSAT subset (L1C) only with the substitution accepted, and the
acceptance recorded in results.json. The checkpoint is a tiny random one made by the
reference package; the README's "reproduce a published number" command is this one."""

from __future__ import annotations

import json

import pytest

from earthplat.errors import EarthplatError

R = pytest.importorskip("tests.integration.olmoearth_ref")
pytestmark = pytest.mark.slow
LIMIT = 5  # EuroSAT patches per class: 40 train+val, 10 test


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    config, model = R.reference_model("nano", seed=1)
    return R.save_published(config, model, tmp_path_factory.mktemp("oe") / "OlmoEarth-Nano")


def test_l1c_benchmark_needs_the_flag_and_the_flag_is_recorded(published, shared_data, tmp_path):
    from earthplat.cli import main
    from earthplat.eval.cli import evaluate

    common = dict(
        benchmarks="eurosat",
        protocols="knn,linear",
        cache_dir=str(tmp_path / "cache"),
        data_root=str(shared_data / "real"),
        limit=LIMIT,
        plots=False,
    )
    with pytest.raises(EarthplatError, match=r"share no modality.*--extra_inputs"):
        evaluate(f"olmoearth:{published}", str(tmp_path / "refused"), **common)
    with pytest.raises(EarthplatError, match="trained weights"):
        evaluate("random:pico", str(tmp_path / "x"), extra_inputs=["sentinel2_l1c"], **common)

    out = tmp_path / "eval"
    main(
        [
            "evaluate",
            "--model", f"olmoearth:{published}",
            "--benchmarks", "eurosat",
            "--protocols", "knn,linear",
            "--extra_inputs", "[sentinel2_l1c]",
            "--out", str(out),
            "--cache_dir", common["cache_dir"],
            "--data_root", common["data_root"],
            "--limit", str(LIMIT),
            "--plots", "false",
        ]
    )  # fmt: skip
    report = json.loads((out / "results.json").read_text())
    assert report["model"] == f"olmoearth:{published}"
    assert report["settings"]["extra_inputs"] == ["sentinel2_l1c"]
    assert "not comparable" in report["settings"]["extra_inputs_note"]
    assert report["settings"]["encoder"]["extra_inputs"] == ["sentinel2_l1c"]
    assert report["settings"]["encoder"]["encoder_inputs"] == [
        "sentinel2_l2a",
        "sentinel1",
        "landsat",
    ]
    rows = {r["protocol"]: r for r in report["results"]}
    assert {"knn", "linear"} <= set(rows)
    for protocol in ("knn", "linear"):
        assert (rows[protocol]["n_train"], rows[protocol]["n_test"]) == (40, 10)
        assert 0.0 <= rows[protocol]["value"] <= 1.0

"""`earthplat evaluate` end to end on real data: EuroSAT (classification, kNN + linear through
the CLI) and the Slovenia tile (segmentation, per-patch probes), with pico encoders."""

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
REAL_LIMIT = 5  # EuroSAT patches per class: 50 real patches, 3/1/1 train/val/test per class


@pytest.fixture(scope="module")
def cache(shared_data, tmp_path_factory) -> Path:
    """Benchmark data ingested once for the module (the CLI reuses it through --cache_dir)."""
    from earthplat.eval.benchmarks import load_benchmark

    root = tmp_path_factory.mktemp("bench_cache")
    load_benchmark("eurosat", cache_dir=root, data_root=shared_data / "real", limit=REAL_LIMIT)
    return root


def _valid_png(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.width >= 200 and im.height >= 200, im.size
        colours = len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0))
        assert colours > 50, f"{path.name} looks blank ({colours} colours)"


def test_eurosat_split_is_spatially_disjoint_and_stratified(cache, shared_data):
    from earthplat.eval.benchmarks import load_benchmark

    data = load_benchmark(
        "eurosat", cache_dir=cache, data_root=shared_data / "real", limit=REAL_LIMIT
    )
    names = {s: {w.name for w in data.windows[s]} for s in data.windows}
    assert not (names["train"] & names["test"]) and not (names["val"] & names["test"])
    for s in ("train", "val", "test"):
        assert sorted(np.unique(data.labels[s]).tolist()) == list(range(10)), s
    boxes = [w.geometry_wgs84() for w in data.windows["test"]]
    for w in data.windows["train"] + data.windows["val"]:
        assert not any(w.geometry_wgs84().intersection(b).area > 0 for b in boxes)
    assert data.samples["train"][0].modalities["sentinel2_l1c"].data.shape == (1, 13, 64, 64)


def test_cli_runs_knn_and_linear_on_eurosat(cache, shared_data, tmp_path):
    from earthplat.cli import main

    out = tmp_path / "eval"
    main(
        [
            "evaluate",
            "--model", "random:pico",
            "--benchmarks", "eurosat",
            "--protocols", "knn,linear",
            "--out", str(out),
            "--cache_dir", str(cache),
            "--data_root", str(shared_data / "real"),
            "--limit", str(REAL_LIMIT),
        ]
    )  # fmt: skip
    report = json.loads((out / "results.json").read_text())
    assert report["model"] == "random:pico"
    rows = {r["protocol"]: r for r in report["results"]}
    assert set(rows) == {"baseline_knn", "baseline_logreg", "knn", "linear"}  # baseline: always
    assert rows["baseline_logreg"]["settings"]["features"].startswith("per-band mean and std")
    for r in rows.values():
        assert r["benchmark"] == "eurosat" and r["primary"] == "accuracy"
        assert (r["n_train"], r["n_test"], r["unit"]) == (40, 10, "window")
        assert 0.0 <= r["value"] <= 1.0 and r["value"] == r["metrics"]["accuracy"]
        cm = np.array(r["confusion"])
        assert cm.shape == (10, 10) and cm.sum() == 10
        assert np.trace(cm) / cm.sum() == pytest.approx(r["value"])
        for png in r["plots"].values():
            _valid_png(out / png)
    assert rows["knn"]["settings"]["k"] == 20
    assert rows["linear"]["settings"]["weight_decay"] in (1e-4, 1e-3, 1e-2, 1e-1)
    md = (out / "results.md").read_text()
    assert "| benchmark | protocol | metric | value | n_train | n_test |" in md
    knn_acc = rows["knn"]["value"]
    assert f"| eurosat | knn | accuracy | {knn_acc:.4f} | 40 | 10 |" in md


def test_exported_encoder_evaluates_like_the_random_baseline(cache, shared_data, tmp_path):
    from earthplat.eval.embeddings import load_embedder
    from earthplat.eval.evaluate import evaluate_model
    from earthplat.nn.export import export_encoder

    export_encoder(load_embedder("random:pico", seed=0).encoder, tmp_path / "enc")
    kw = dict(
        protocols="knn",
        cache_dir=cache,
        data_root=shared_data / "real",
        limit=REAL_LIMIT,
        plots=False,
    )
    a = evaluate_model("random:pico", "eurosat", **kw)
    b = evaluate_model(str(tmp_path / "enc"), "eurosat", **kw)
    assert a.get("eurosat", "knn").confusion == b.get("eurosat", "knn").confusion
    assert a.settings["encoder"]["embed_dim"] == 64 and b.model == str(tmp_path / "enc")


def test_segmentation_benchmark_probes_patches(shared_data, tmp_path):
    from earthplat.eval.evaluate import evaluate_model

    out = tmp_path / "seg"
    report = evaluate_model(
        "random:pico",
        ["slovenia_landcover"],
        ["knn", "linear"],
        out,
        data_root=shared_data / "real",
        probe=None,
    )
    for protocol in ("knn", "linear"):
        r = report.get("slovenia_landcover", protocol)
        assert r.unit == "patch" and r.primary == "miou" and r.n_test > 50
        assert 0.0 < r.metrics["accuracy"] <= 1.0
        _valid_png(out / r.plots["predictions"])
        _valid_png(out / r.plots["confusion"])
    saved = json.loads((out / "results.json").read_text())
    assert [r["protocol"] for r in saved["results"]] == [
        "baseline_knn",
        "baseline_logreg",
        "knn",
        "linear",
    ]
    base = report.get("slovenia_landcover", "baseline_logreg")
    assert base.unit == "patch" and base.n_test == report.get("slovenia_landcover", "knn").n_test


def test_finetune_protocol_trains_and_scores_the_same_test_windows(cache, shared_data, tmp_path):
    from earthplat.eval.embeddings import load_embedder
    from earthplat.eval.evaluate import evaluate_model
    from earthplat.nn.task_model import load_task_model

    out = tmp_path / "ft"
    report = evaluate_model(
        "random:pico",
        "eurosat",
        "finetune",
        out,
        cache_dir=cache,
        data_root=shared_data / "real",
        limit=REAL_LIMIT,
        finetune_overrides={"trainer.max_steps": 2, "trainer.val_check_interval": 2},
    )
    r = report.get("eurosat", "finetune")
    assert (r.n_train, r.n_test, r.unit) == (40, 10, "window")
    # the run tested on the very windows evaluate scores (the split travels as a property)
    run_acc = r.settings["run_metrics"]["test/accuracy"]  # rounded to 4 decimals
    assert r.metrics["accuracy"] == pytest.approx(run_acc, abs=1e-4)
    run = Path(r.settings["run_dir"])
    assert (run / "metrics.json").exists() and (run / "checkpoints" / "last.ckpt").exists()
    model = load_task_model(run / "model")
    assert model.spec.task == "classification" and model.spec.num_outputs == 10
    # a fine-tune run dir is itself a model reference for kNN / linear probes
    emb = load_embedder(str(run))
    assert emb.task_model is not None and emb.patch_size == 8
    assert emb.encoder is emb.task_model.backbone.encoder
    # the backbone started from the seeded random:pico encoder the frozen protocols use
    init = json.loads((run / "init_encoder" / "config.json").read_text())
    assert init["source"] == "random:pico" and init["encoder"]["embed_dim"] == 64
    for png in r.plots.values():
        _valid_png(out / png)


def test_segmentation_finetune_configs_run(shared_data, tmp_path):
    """The shipped slovenia/sen1floods11 fine-tune configs run (one step each) and are scored
    per labelled pixel of the test windows, as the run itself scored them."""
    from earthplat.eval.evaluate import evaluate_model

    report = evaluate_model(
        "random:pico",
        ["slovenia_landcover", "sen1floods11_water"],
        "finetune",
        tmp_path,
        data_root=shared_data / "real",
        finetune_overrides={"trainer.max_steps": 1},
        plots=False,
    )
    for name in ("slovenia_landcover", "sen1floods11_water"):
        r = report.get(name, "finetune")
        assert r.unit == "pixel" and r.n_test > 1000 and r.primary == "miou"
        run_acc = r.settings["run_metrics"]["test/accuracy"]
        assert r.metrics["accuracy"] == pytest.approx(run_acc, abs=1e-4)


def test_unknown_names_fail_before_any_work(tmp_path):
    from earthplat.errors import DataError, EarthplatError
    from earthplat.eval.evaluate import evaluate_model

    with pytest.raises(DataError, match="unknown benchmark"):
        evaluate_model("random:pico", "eurosatt", "knn", tmp_path)
    with pytest.raises(EarthplatError, match="unknown protocols"):
        evaluate_model("random:pico", "eurosat", "knn,svm", tmp_path)
    with pytest.raises(EarthplatError, match="unknown encoder preset"):
        evaluate_model("random:giant", "eurosat", "knn", tmp_path)

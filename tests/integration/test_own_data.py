"""A user's own labelled patches to a score, with the commands the README gives (issue 11,
"a user's own data"): import a folder of EuroSAT GeoTIFFs, label it, evaluate train -> test
with the baseline rows."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio

from earthplat.cli import main
from earthplat.data.dataset import Dataset
from earthplat.data.layer import read_layer_arrays

EUROSAT = "real/eurosat_ms_subset"


def _split_csvs(root: Path, tmp: Path) -> tuple[Path, Path, list[dict]]:
    """train.csv (10 patches a class) and test.csv (the other 5), columns file, class."""
    rows = list(csv.DictReader((root / "labels.csv").open()))
    taken: dict[str, int] = {}
    train, test = [], []
    for r in rows:
        n = taken.get(r["class_name"], 0)
        taken[r["class_name"]] = n + 1
        (train if n < 10 else test).append({"file": r["path"], "class": r["class_name"]})
    paths = []
    for name, part in (("train", train), ("test", test)):
        p = tmp / f"{name}.csv"
        with p.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["file", "class"])
            w.writeheader()
            w.writerows(part)
        paths.append(p)
    return paths[0], paths[1], test


def test_patches_to_a_score_with_the_baseline_row(shared_data, tmp_path, capsys) -> None:
    root = shared_data / EUROSAT
    train_csv, test_csv, test_rows = _split_csvs(root, tmp_path)
    # 1. import (the first through the real command line, as a user runs it)
    result = subprocess.run(
        [
            sys.executable, "-m", "earthplat.cli", "dataset", "import-patches",
            f"--root={root}", f"--labels={train_csv}", f"--dataset={tmp_path}/train",
            "--modality=sentinel2_l1c", "--datetime=2018-06-01",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "100 patches, 10 classes" in result.stdout
    main(
        [
            "dataset", "import-patches", f"--root={root}", f"--labels={test_csv}",
            f"--dataset={tmp_path}/test", "--modality=sentinel2_l1c", "--datetime=2018-06-01",
        ]
    )  # fmt: skip
    train, test = Dataset(tmp_path / "train"), Dataset(tmp_path / "test")
    schema = train.class_schema("label")
    assert [c["label"] for c in schema][:3] == ["AnnualCrop", "Forest", "HerbaceousVegetation"]
    assert test.class_schema("label") == schema  # names sorted -> the same values
    # every patch is one window in its own CRS holding exactly its file's pixels
    window = test.windows()[0]
    with rasterio.open(window.properties["source_path"]) as src:
        assert window.crs == src.crs.to_string()
        raw = src.read()
    ld = read_layer_arrays(test, window, "image")
    assert ld.valid.all() and np.array_equal(ld.data[0], np.where(raw == 0, 1, raw))
    # 2. label the test windows again from a points file (class names at the patch centres)
    features = []
    for w in test.windows():
        c = w.geometry_wgs84().centroid
        row = next(r for r in test_rows if Path(r["file"]).stem == w.name)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [c.x, c.y]},
                "properties": {"landuse": row["class"]},
            }
        )
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    before = {w.name: w.properties["label"] for w in test.windows()}
    main(["dataset", "label", f"--dataset={tmp_path}/test", f"--from={points}", "--column=landuse"])
    assert "50 windows got property 'label'" in capsys.readouterr().out
    assert {w.name: w.properties["label"] for w in test.windows()} == before
    # 3. score the model against the baseline, train -> test
    out = tmp_path / "eval"
    main(
        [
            "evaluate", "--model=random:pico", f"--train={tmp_path}/train",
            f"--test={tmp_path}/test", "--protocols=knn,linear", f"--out={out}",
        ]
    )  # fmt: skip
    report = json.loads((out / "results.json").read_text())
    rows = {r["protocol"]: r for r in report["results"]}
    assert set(rows) == {"baseline_knn", "baseline_logreg", "knn", "linear"}
    for r in rows.values():
        assert r["benchmark"] == "train->test" and r["n_test"] == 50 and r["n_train"] == 100
        assert set(r["per_class"]) == {c["label"] for c in schema}
        assert 0.0 <= r["metrics"]["accuracy"] <= 1.0 and "macro_f1" in r["metrics"]
    # 26 numbers a patch separate EuroSAT classes well above chance (10 %)
    assert rows["baseline_logreg"]["metrics"]["accuracy"] >= 0.4
    md = (out / "results.md").read_text()
    assert "| train->test | baseline_logreg | accuracy |" in md and "per class" in md
    assert (out / "train-_test_knn_confusion.png").exists()

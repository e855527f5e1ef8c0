"""``earthplat evaluate`` on a user's labelled datasets: the splits (grid, property, a separate
test dataset), leakage between datasets, and what the report says about the data."""

from __future__ import annotations

import csv
import json

import pytest

from earthplat.cli import main
from earthplat.data.dataset import Dataset
from earthplat.data.label_import import label_dataset
from earthplat.data.patches import import_patches
from earthplat.errors import DataError
from earthplat.eval.custom import dataset_benchmark

EUROSAT = "real/eurosat_ms_subset"


@pytest.fixture(scope="module")
def eurosat(shared_data, tmp_path_factory) -> Dataset:
    root = tmp_path_factory.mktemp("eurosat")
    import_patches(
        shared_data / EUROSAT,
        root / "ds",
        "sentinel2_l1c",
        datetime="2018-06-01",
        progress=False,
    )
    return Dataset(root / "ds")


def test_grid_split_of_one_dataset_keeps_every_class_in_test(eurosat, tmp_path) -> None:
    data = dataset_benchmark(eurosat.root, out_dir=tmp_path / "bench", seed=0)
    assert data.benchmark.task == "classification" and len(data.classes) == 10
    counts = {s: data.count(s) for s in ("train", "val", "test")}
    assert sum(counts.values()) == 150 and min(counts.values()) > 0
    assert set(data.labels["test"].tolist()) == set(range(10))  # stratified by class
    assert data.notes["inputs"] == {"image": "sentinel2_l1c"} and data.notes["label"] == "label"
    assert Dataset(tmp_path / "bench").class_schema("label") == eurosat.class_schema("label")


def test_split_property_written_by_dataset_label_decides_the_splits(eurosat, tmp_path) -> None:
    names = sorted(w.name for w in eurosat.windows())
    table = tmp_path / "split.csv"
    with table.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["window", "split"])
        for i, name in enumerate(names):
            w.writerow([name, ("train", "train", "train", "val", "test")[i % 5]])
    main(["dataset", "label", f"--dataset={eurosat.root}", f"--from={table}", "--name=split"])
    assert {w.properties["split"] for w in eurosat.windows()} == {"train", "val", "test"}
    assert eurosat.class_schema("split") is None  # text, not classes
    data = dataset_benchmark(eurosat.root, out_dir=tmp_path / "bench", split_by="property")
    assert (data.count("train"), data.count("val"), data.count("test")) == (90, 30, 30)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"window,split\n{names[0]},holdout\n")
    with pytest.raises(DataError, match="train, val or test, not holdout"):
        label_dataset(eurosat, bad, name="split")


def test_train_windows_that_overlap_the_test_dataset_are_dropped(eurosat, shared_data, tmp_path):
    rows = list(csv.DictReader((shared_data / EUROSAT / "labels.csv").open()))
    part = tmp_path / "part.csv"
    with part.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "class"])
        for r in rows[::3]:  # 50 of the same patches: they overlap their own train windows
            w.writerow([r["path"], r["class_name"]])
    import_patches(
        shared_data / EUROSAT,
        tmp_path / "test",
        "sentinel2_l1c",
        labels=part,
        datetime="2018-06-01",
        progress=False,
    )
    out = tmp_path / "eval"
    main(
        [
            "evaluate", "--model=random:pico", f"--train={eurosat.root}",
            f"--test={tmp_path}/test", "--protocols=knn", f"--out={out}", "--plots=false",
        ]
    )  # fmt: skip
    report = json.loads((out / "results.json").read_text())
    notes = next(v for k, v in report["settings"].items() if k.endswith("_data"))
    assert notes["dropped_for_leakage"]["train"] + notes["dropped_for_leakage"].get("val", 0) == 50
    knn = next(r for r in report["results"] if r["protocol"] == "knn")
    assert knn["n_test"] == 50 and knn["n_train"] == 100

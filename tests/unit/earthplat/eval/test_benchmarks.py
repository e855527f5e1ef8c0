"""The benchmark registry: every benchmark has a valid class schema and a fine-tune config that
matches its task (the configs run in tests/integration/test_evaluate.py)."""

import pytest
import yaml

from earthplat.configs import config_path
from earthplat.errors import DataError
from earthplat.eval.benchmarks import BENCHMARKS, get_benchmark

TASK_CLASS = {
    "classification": "earthplat.train.tasks.ClassificationTask",
    "segmentation": "earthplat.train.tasks.SegmentationTask",
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_is_complete(name):
    b = BENCHMARKS[name]
    classes = b.classes()
    assert len(classes) >= 2
    assert len({c["value"] for c in classes}) == len(classes)
    assert all(c["color"].startswith("#") and len(c["color"]) == 7 for c in classes)
    assert set(b.fractions) == {"train", "val", "test"} and all(b.fractions.values())
    cfg = yaml.safe_load(config_path("eval", b.finetune_config).read_text())
    assert cfg["model"]["class_path"] == TASK_CLASS[b.task]
    data = cfg["data"]["init_args"]["config"]
    assert data["task"] == b.task
    assert data["inputs"] == b.layers
    assert cfg["model"]["init_args"]["patch_size"] == b.patch_size
    if b.task == "segmentation":
        assert data["label"] == {"kind": "layer", "name": b.label_layer}


def test_unknown_benchmark_names_the_known_ones():
    with pytest.raises(DataError, match="eurosat"):
        get_benchmark("imagenet")

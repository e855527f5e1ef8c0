"""Every layer agrees with the task registry (``earthplat.tasks``), for every task in it.

Parametrised over ``TASKS``: a task added to the registry is checked here by being added, and
a layer that forgets it (no task module, no target builder, a head that does not serve it, a
default config for another task, a STAC output of the wrong shape, an API or labelling schema
that refuses its name) fails here, naming the task.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from earthplat.configs import config_path
from earthplat.data.finetune.targets import TARGETS
from earthplat.inference.stac import mlm_properties
from earthplat.nn.heads import HEAD_TASKS, HEADS
from earthplat.nn.task_model import TaskModel
from earthplat.tasks import LABEL_SOURCES, TASK_NAMES, TASKS
from earthplat.train.tasks import TASK_MODULES
from tests.unit.earthplat.nn.data import make_inputs
from tests.unit.earthplat.nn.task_data import S2, make_spec

ALL = sorted(TASKS)
CLASSES = [{"value": v, "label": f"c{v}", "color": "#102030"} for v in (1, 2, 7)]


def test_the_registry_and_the_task_modules_name_the_same_tasks() -> None:
    assert set(TASK_MODULES) == set(TASKS)
    assert tuple(TASKS) == TASK_NAMES


@pytest.mark.parametrize("task", ALL)
def test_each_task_has_its_module_target_and_head(task: str) -> None:
    kind = TASKS[task]
    assert TASK_MODULES[task].task == task
    assert kind.target == "none" or kind.target in TARGETS
    assert set(kind.label_sources) <= set(LABEL_SOURCES)
    assert kind.default_head in HEADS and task in HEAD_TASKS[kind.default_head]
    assert TASK_MODULES[task](inputs={S2: ["B02"]}, classes=CLASSES).default_head == (
        kind.default_head
    )


@pytest.mark.parametrize("task", [t for t in ALL if TASKS[t].default_config])
def test_the_default_config_is_shipped_and_trains_that_task(task: str) -> None:
    cfg = yaml.safe_load(config_path("finetune", TASKS[task].default_config).read_text())
    assert cfg["data"]["init_args"]["config"]["task"] == task
    assert cfg["model"]["class_path"].rsplit(".", 1)[-1] == TASK_MODULES[task].__name__


@pytest.mark.parametrize("task", ALL)
def test_the_model_output_matches_its_stac_description(task: str) -> None:
    """The ``mlm:output`` shape is what the model returns for one chip (its output scale)."""
    kind = TASKS[task]
    classes = CLASSES if kind.class_task else []
    spec = make_spec(task, kind.default_head, classes=classes, chip_size=16)
    torch.manual_seed(0)
    model = TaskModel(spec).eval()
    with torch.no_grad():
        out = model(make_inputs(b=2, t=2, size=16, modalities=(S2,)))
    mlm = mlm_properties(model, {})
    (output,) = mlm["mlm:output"]
    assert mlm["mlm:tasks"] == list(kind.mlm_tasks) == output["tasks"]
    if kind.output == "detections":  # a heatmap per class at the head's stride
        assert out["heatmap"].shape[:2] == (2, spec.num_outputs)
    else:
        assert [2, *out.shape[1:]] == [2, *output["result"]["shape"][1:]]
    names = [c["name"] for c in output.get("classification:classes", [])]
    assert names == [c["label"] for c in classes]


@pytest.mark.parametrize("task", ALL)
def test_the_api_and_the_labelling_schema_accept_every_task(task: str) -> None:
    from api.schemas.projects import ProjectCreate
    from labeling.models import TASK_TYPES

    assert task in TASK_TYPES
    assert ProjectCreate(name="p", task_type=task).task_type == task
    with pytest.raises(ValueError, match="task_type"):
        ProjectCreate(name="p", task_type=f"{task}_typo")

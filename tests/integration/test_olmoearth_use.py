"""Published OlmoEarth weights used everywhere: as a fine-tuning backbone (``name: olmoearth``),
through ``earthplat evaluate --model olmoearth:PATH`` (``load_embedder``), ``earthplat predict``
(``load_task_model``) and ``earthplat export --format olmoearth``. The checkpoint is a tiny
random one made by the reference package."""

from __future__ import annotations

import pytest
import torch

from earthplat.nn import load_encoder
from earthplat.nn.task_model import TaskModel, TaskSpec, export_task_model, load_task_model
from tests.integration import olmoearth_ref as R

S2 = "sentinel2_l2a"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    config, model = R.reference_model("nano")
    return R.save_published(config, model, tmp_path_factory.mktemp("oe_nano")), model


def _inputs(b=2, t=2, size=16):
    from earthplat.batch import ModalityInput
    from earthplat.sensors import get_modality

    g = torch.Generator().manual_seed(0)
    bands = get_modality(S2).band_names
    data = torch.rand(b, t, len(bands), size, size, generator=g)
    valid = torch.ones(b, t, size, size, dtype=torch.bool)
    stamps = torch.tensor([[[1, m, 2020] for m in range(t)]] * b)
    return {S2: ModalityInput(data, valid, stamps, bands)}


def _spec(backbone: dict) -> TaskSpec:
    from earthplat.sensors import get_modality

    return TaskSpec(
        task="classification",
        inputs={S2: list(get_modality(S2).band_names)},
        num_outputs=3,
        patch_size=4,
        num_periods=2,
        backbone=backbone,
        head={"name": "linear"},
    )


def test_finetune_backbone_loads_the_published_weights(published, tmp_path):
    path, _ = published
    model = TaskModel(_spec({"name": "olmoearth", "checkpoint": str(path), "freeze": "frozen"}),
                      load_pretrained=True)  # fmt: skip
    reference = load_encoder(path)
    for k, v in reference.state_dict().items():
        assert torch.equal(model.backbone.encoder.state_dict()[k], v), k
    model.eval()
    before = model(_inputs())
    export_task_model(model, tmp_path / "task")  # rebuilds from its resolved encoder config
    again = load_task_model(tmp_path / "task").eval()
    torch.testing.assert_close(again(_inputs()), before)
    with pytest.raises(Exception, match="needs checkpoint"):
        TaskModel(_spec({"name": "olmoearth"}), load_pretrained=True)


def test_evaluate_and_predict_resolve_olmoearth_paths(published):
    from earthplat.eval.embeddings import load_embedder

    path, _ = published
    embedder = load_embedder(f"olmoearth:{path}")
    ours = embedder.encoder(_inputs(), patch_size=4).pooled
    torch.testing.assert_close(ours, load_encoder(path)(_inputs(), patch_size=4).pooled)
    task = load_task_model(f"olmoearth:{path}")
    assert set(task.spec.inputs) == {"sentinel2_l2a", "sentinel1", "landsat"}  # as trained
    assert task.spec.task == "embedding"


def test_cli_export_olmoearth_format_loads_in_the_reference(published, tmp_path):
    from earthplat.cli import export

    path, model = published
    out = export(str(path), str(tmp_path / "exported"), format="olmoearth")
    back = R.ref.load_model_from_path(out).eval()
    for k, v in model.encoder.state_dict().items():
        torch.testing.assert_close(back.encoder.state_dict()[k], v, atol=0, rtol=0, msg=k)

"""Task LightningModules on tiny batches (``earthplat.batch.Batch``): every registered task
computes a finite loss with gradients, ignores invalid targets, reports its metrics, predicts;
the backbone freeze schedule; CenterNet targets. Training on real windows: tests/integration."""

import dataclasses

import lightning as L
import pytest
import torch

from earthplat.batch import Batch, ModalityInput
from earthplat.errors import EarthplatError
from earthplat.nn.task_model import load_task_model
from earthplat.train.tasks import TASK_MODULES, get_task_module
from earthplat.train.tasks.detection import centernet_targets, expand_points
from tests.unit.earthplat.nn.data import make_inputs
from tests.unit.earthplat.nn.task_data import PICO, S2, S2_BANDS

K = 3
CLASSES = [{"value": v, "label": f"c{v}", "color": "#000000"} for v in (1, 2, 7)]
METRICS = {
    "classification": {"accuracy", "accuracy_macro", "f1_macro"},
    "multilabel": {"f1_macro", "map"},
    "segmentation": {"miou", "accuracy", "accuracy_macro", "iou_c1", "iou_c2", "iou_c7"},
    "pixel_regression": {"mae", "rmse"},
    "regression": {"mae", "rmse"},
    "detection": {"map", "map_50", "map_75", "mar_100"},
}


def make_batch(task: str, b: int = 4, size: int = 16, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    inputs = make_inputs(b=b, t=1, size=size, seed=seed, modalities=(S2,), missing=False)
    batch = Batch(
        window=[f"w{i}" for i in range(b)],
        chip=torch.tensor([[0, 0, size, size]] * b),
        modalities={
            k: ModalityInput(v.data, v.valid, v.timestamps, tuple(S2_BANDS))
            for k, v in inputs.items()
        },
    )
    if task == "classification":
        batch.target = torch.randint(0, K, (b,), generator=g)
        batch.target_valid = torch.ones(b, dtype=torch.bool)
    elif task == "multilabel":
        batch.target = torch.randint(0, 2, (b, K), generator=g).float()
        batch.target_valid = torch.ones(b, dtype=torch.bool)
    elif task == "segmentation":
        t = torch.randint(0, K, (b, size, size), generator=g)
        t[:, :2] = -1
        batch.target, batch.target_valid = t, t >= 0
    elif task == "pixel_regression":
        batch.target = torch.randn(b, size, size, generator=g)
        batch.target_valid = torch.rand(b, size, size, generator=g) > 0.2
    elif task == "regression":
        batch.target = torch.randn(b, generator=g)
        batch.target_valid = torch.ones(b, dtype=torch.bool)
    elif task == "detection":
        batch.boxes = [torch.tensor([[2.0, 3.0, 9.0, 8.0], [12.0, 12.0, 12.0, 12.0]])] * b
        batch.box_labels = [torch.tensor([0, 2])] * b
    return batch


def make_module(task: str, **kw):
    torch.manual_seed(0)
    args = dict(
        inputs={S2: S2_BANDS},
        backbone=dict(PICO),
        classes=CLASSES
        if task in ("classification", "multilabel", "segmentation", "detection")
        else None,
        chip_size=16,
    )
    args.update(kw)
    return get_task_module(task)(**args)


TRAINABLE = [t for t in TASK_MODULES if t != "embedding"]


@pytest.mark.parametrize("task", TRAINABLE)
def test_task_loss_metrics_predict(task):
    module = make_module(task)
    batch = make_batch(task)
    loss = module.compute_loss(module(batch), batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    loss.backward()
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.head.parameters()
    )
    logged = {}
    module.log_dict = lambda values, **_: logged.update(values)
    module.eval()
    with torch.no_grad():
        module.update_metrics(module.val_metrics, module(batch), batch)
    module._log_metrics(module.val_metrics, "val")
    assert {k.removeprefix("val/") for k in logged} == METRICS[task]
    assert all(torch.isfinite(v) for v in logged.values())
    pred = module.predict_step(batch, 0)["output"]
    assert len(pred) == 4
    assert module.hparams["task_spec"]["task"] == task


@pytest.mark.parametrize("task", ["classification", "segmentation", "regression", "multilabel"])
def test_invalid_targets_do_not_change_the_loss(task):
    module = make_module(task)
    batch = make_batch(task)
    with torch.no_grad():
        out = module(batch)
    valid = batch.target_valid.clone()
    valid[0] = False
    batch.target_valid = valid
    before = module.compute_loss(out, batch)
    noisy = dataclasses.replace(batch)  # change only the invalid sample's target
    noisy.target = batch.target.clone()
    if task == "regression":
        noisy.target[0] = 1e6
    elif task == "multilabel":
        noisy.target[0] = 1 - noisy.target[0]
    else:
        noisy.target[0] = (noisy.target[0] + 1) % K
    torch.testing.assert_close(module.compute_loss(out, noisy), before)


def test_class_weights_change_the_loss_and_are_checked():
    batch = make_batch("segmentation")
    plain = make_module("segmentation")
    weighted = make_module("segmentation", class_weights=[1.0, 5.0, 0.1])
    with torch.no_grad():
        out = plain(batch)
        assert not torch.isclose(plain.compute_loss(out, batch), weighted.compute_loss(out, batch))
    with pytest.raises(EarthplatError, match="2 class_weights for 3 outputs"):
        make_module("segmentation", class_weights=[1.0, 2.0])


def test_embedding_task_predicts_features_and_refuses_training():
    module = make_module("embedding", head=None)
    batch = make_batch("embedding")
    out = module.predict_step(batch, 0)
    assert out["output"].shape == (4, 64, 4, 4) and out["pooled"].shape == (4, 64)
    assert module.spec.num_outputs == 64
    with pytest.raises(EarthplatError, match="nothing to train"):
        module.training_step(batch, 0)


def test_centernet_targets_peak_at_object_centres():
    boxes = [expand_points(torch.tensor([[8.0, 8.0, 8.0, 8.0]]), 8.0), torch.zeros(0, 4)]
    assert torch.equal(boxes[0], torch.tensor([[4.0, 4.0, 12.0, 12.0]]))
    t = centernet_targets(
        boxes,
        [torch.tensor([1]), torch.zeros(0, dtype=torch.long)],
        (2, 2, 8, 8),
        stride=4,
        point_box_size=8,
    )
    assert t["heatmap"][0, 1, 2, 2] == 1 and t["heatmap"][0, 0].sum() == 0
    assert t["heatmap"][1].sum() == 0 and t["mask"].sum() == 1
    assert torch.equal(t["size"][0, :, 2, 2], torch.tensor([2.0, 2.0]))


class _Batches(torch.utils.data.Dataset):
    def __init__(self, task):
        self.batch = make_batch(task)

    def __len__(self):
        return 100

    def __getitem__(self, i):
        return self.batch


class _Recorder(L.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        enc = module.model.backbone
        grads = [p.grad for p in enc.parameters()]
        self.rows.append(
            (
                any(g is not None and g.abs().sum() > 0 for g in grads),
                {k: v.clone() for k, v in enc.state_dict().items()},
                {k: v.clone() for k, v in module.model.head.state_dict().items()},
            )
        )


@pytest.mark.parametrize(("freeze", "frozen_steps"), [("warmup", 2), ("frozen", 4), ("none", 0)])
def test_freeze_schedule(tmp_path, freeze, frozen_steps):
    module = make_module("classification", freeze=freeze, unfreeze_fraction=0.5)
    start = {k: v.clone() for k, v in module.model.backbone.state_dict().items()}
    rec = _Recorder()
    trainer = L.Trainer(
        max_steps=4,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[rec],
        default_root_dir=tmp_path,
    )
    loader = torch.utils.data.DataLoader(_Batches("classification"), batch_size=None)
    trainer.fit(module, loader)
    prev = start
    for step, (has_grad, enc, _head) in enumerate(rec.rows):
        changed = any(not torch.equal(enc[k], prev[k]) for k in enc)
        assert has_grad == (step >= frozen_steps), (freeze, step)
        assert changed == (step >= frozen_steps), (freeze, step)
        prev = enc
    heads = [r[2] for r in rec.rows]
    assert any(not torch.equal(heads[0][k], heads[-1][k]) for k in heads[0])


def test_lightning_checkpoint_reloads_without_lightning_objects(tmp_path):
    module = make_module("segmentation", head={"name": "upernet", "channels": 16})
    trainer = L.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        enable_checkpointing=False,
    )
    loader = torch.utils.data.DataLoader(_Batches("segmentation"), batch_size=None)
    trainer.fit(module, loader)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    batch = make_batch("segmentation")
    module.eval()
    with torch.no_grad():
        expected = module(batch)
        from earthplat.batch import to_model_inputs

        got = load_task_model(tmp_path / "m.ckpt")(to_model_inputs(batch))
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        again = get_task_module("segmentation").load_from_checkpoint(tmp_path / "m.ckpt")
        torch.testing.assert_close(again.eval()(batch), expected, rtol=0, atol=0)


def test_open_settings_come_from_the_datamodule_at_setup():
    from types import SimpleNamespace

    config = SimpleNamespace(classes=CLASSES, chip_size=48, num_periods=2)
    dm = SimpleNamespace(config=config, input_bands={S2: S2_BANDS[:4]})
    lazy = get_task_module("segmentation")(backbone=dict(PICO))
    assert lazy.model is None
    lazy._trainer = SimpleNamespace(datamodule=dm)
    lazy.setup("fit")
    assert lazy.spec.inputs == {S2: S2_BANDS[:4]} and lazy.spec.classes == CLASSES
    assert (lazy.spec.chip_size, lazy.spec.num_periods) == (48, 2)
    assert lazy.hparams["task_spec"]["chip_size"] == 48
    eager = make_module("segmentation", chip_size=None)  # built now, chip size recorded later
    eager._trainer = SimpleNamespace(datamodule=dm)
    eager.setup("fit")
    assert eager.spec.chip_size == 48 and eager.spec.inputs == {S2: S2_BANDS}


def test_soft_dice_loss_measures_overlap_and_ignores_unlabelled_pixels():
    from earthplat.train.tasks.segmentation import soft_dice_loss

    target = torch.tensor([[[0, 1], [1, -1]]])  # [1, 2, 2]; one ignored pixel
    right = torch.tensor([[[9.0, -9.0], [-9.0, 9.0]], [[-9.0, 9.0], [9.0, -9.0]]])[None]
    wrong = -right
    assert soft_dice_loss(right, target).item() < 0.01
    assert soft_dice_loss(wrong, target).item() > 0.6
    # whatever is predicted on the ignored pixel does not matter
    flipped = right.clone()
    flipped[0, :, 1, 1] = flipped[0, :, 1, 1].flip(0)
    assert torch.isclose(soft_dice_loss(flipped, target), soft_dice_loss(right, target))

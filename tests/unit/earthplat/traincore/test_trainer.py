import json
import re

import lightning as L
import pytest
import torch
import yaml

from earthplat.traincore.checkpoint import CheckpointConfig, find_resume_checkpoint
from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.metrics import read_metrics
from earthplat.traincore.trainer import TrainerConfig, fit
from tests.helpers.models import build, state_of


def _cfg(run_dir, **kw):
    kw.setdefault("max_steps", 6)
    return TrainerConfig(
        run_dir=str(run_dir), accelerator="cpu", devices=1, enable_progress_bar=False, seed=0, **kw
    )


def test_periodic_checkpoints_keep_newest_and_last(tmp_path):
    module, data = build("vision", seed=0, global_batch=8)
    fit(
        _cfg(tmp_path, max_steps=7, checkpoint=CheckpointConfig(every_n_steps=2, keep=2)),
        module,
        data,
    )
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["last.ckpt", "step=00000004.ckpt", "step=00000006.ckpt"]
    assert find_resume_checkpoint(tmp_path) == tmp_path / "checkpoints" / "last.ckpt"


def test_find_resume_checkpoint_falls_back_to_highest_step(tmp_path):
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    for step in (2, 10, 4):
        (ckpts / f"step={step:08d}.ckpt").write_bytes(b"x")
    assert find_resume_checkpoint(tmp_path).name == "step=00000010.ckpt"
    assert find_resume_checkpoint(tmp_path / "nothing") is None


class Crash(L.Callback):
    """Simulates a crash: raises once ``global_step`` reaches ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at:
            raise RuntimeError("simulated crash")


def _interrupted_run(run_dir, make, crash_at, **cfg):
    module, data = make()
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(_cfg(run_dir, **cfg), module, data, callbacks=[Crash(crash_at)])
    module, data = make(fresh=True)
    trainer = fit(_cfg(run_dir, **cfg), module, data)
    return module, trainer


@pytest.mark.parametrize("kind", ["vision", "lm"])
def test_resume_continues_exactly(tmp_path, kind):
    """Crash after step 7, resume: weights, optimizer, schedule and loss curve match a run
    that was never interrupted."""
    cfg = dict(max_steps=12, checkpoint=CheckpointConfig(every_n_steps=3), log_every_n_steps=1)

    def make(fresh=False):
        module, data = build(kind, seed=1, global_batch=8)
        if fresh:  # different initial weights: the checkpoint must overwrite them
            torch.manual_seed(1234)
            module.model.apply(
                lambda m: (
                    m.reset_parameters()
                    if hasattr(m, "reset_parameters") and m is not module.model
                    else None
                )
            )
        return module, data

    module, straight = make()
    straight = fit(_cfg(tmp_path / "a", **cfg), module, straight)
    ref = state_of(module)
    ref_opt = straight.optimizers[0].state_dict()["state"]

    module, resumed = _interrupted_run(tmp_path / "b", make, crash_at=7, **cfg)
    got = state_of(module)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-6, msg=name)
    res_opt = resumed.optimizers[0].state_dict()["state"]
    for key in ref_opt:
        torch.testing.assert_close(
            res_opt[key]["exp_avg_sq"], ref_opt[key]["exp_avg_sq"], rtol=1e-4, atol=1e-10
        )
    assert resumed.lr_scheduler_configs[0].scheduler.last_epoch == 12

    def losses(run):
        return {s: m["train/loss"] for s, m in read_metrics(run).items() if "train/loss" in m}

    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert sorted(a) == sorted(b) == list(range(12))
    assert [b[s] for s in sorted(b)] == pytest.approx([a[s] for s in sorted(a)], rel=1e-5)
    assert len(list((tmp_path / "b" / "logs").glob("attempt-*"))) == 2


def test_resume_restores_dropout_rng(tmp_path):
    from tests.helpers.models import DataModule, SyntheticImages, VisionClassifier

    cfg = dict(max_steps=8, checkpoint=CheckpointConfig(every_n_steps=2))

    def make(fresh=False):
        torch.manual_seed(7 if fresh else 3)
        return VisionClassifier(dropout=0.5), DataModule(SyntheticImages(seed=3), 8, seed=3)

    module, data = make()
    fit(_cfg(tmp_path / "a", **cfg), module, data)
    ref = state_of(module)
    module, _ = _interrupted_run(tmp_path / "b", make, crash_at=5, **cfg)
    got = state_of(module)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-6)


def test_saved_config_reloads_and_throughput_reports_tokens(tmp_path):
    from olmo_lm.cli import PretrainJobConfig

    job = PretrainJobConfig(trainer=_cfg(tmp_path, max_steps=4, throughput_warmup_steps=1))
    module, data = build("lm", seed=0, global_batch=4)
    fit(job.trainer, module, data, config_to_save=job)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 4
    assert saved["model"]["d_model"] == job.model.d_model
    # the file is a valid --config for the olmo-lm CLI
    from jsonargparse import ArgumentParser

    from olmo_lm.cli import train

    parser = ArgumentParser()
    parser.add_function_arguments(train)
    ns = parser.parse_path(str(tmp_path / "config.yaml"))
    assert ns.trainer.max_steps == 4

    report = json.loads((tmp_path / "throughput.json").read_text())
    assert report["samples_per_sec"] > 0
    assert report["tokens_per_sec"] == pytest.approx(report["samples_per_sec"] * 32, rel=1e-6)
    assert 0 < report["mfu"] < 1
    assert report["flops_per_sec"] == pytest.approx(report["mfu"] * report["peak_flops_per_device"])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"precision": "8-bit"}, "precision"),
        ({"strategy": "deepspeed"}, "strategy"),
        ({"max_steps": -1}, "max_epochs"),
        ({"accumulate_grad_batches": 0}, "accumulate"),
    ],
)
def test_bad_trainer_config(kwargs, match):
    with pytest.raises(TrainCoreConfigError, match=match):
        TrainerConfig(**{"max_steps": 5, **kwargs})


def test_tensor_parallel_needs_fsdp_strategy():
    with pytest.raises(TrainCoreConfigError, match=re.escape("needs strategy 'fsdp'")):
        TrainerConfig(max_steps=5, strategy="ddp", tensor_parallel_size=2).build()


def test_gradient_accumulation_matches_large_batch(tmp_path):
    module, data = build("vision", seed=4, global_batch=8)
    fit(_cfg(tmp_path / "a", max_steps=4), module, data)
    big = state_of(module)
    module, data = build("vision", seed=4, global_batch=4)
    fit(_cfg(tmp_path / "b", max_steps=4, accumulate_grad_batches=2), module, data)
    # same samples per optimizer step, loss averaged over micro-batches: same update
    small = state_of(module)
    for name in big:
        torch.testing.assert_close(small[name], big[name], rtol=1e-4, atol=1e-5)


def test_bf16_mixed_trains_on_cpu(tmp_path):
    module, data = build("lm", seed=0, global_batch=4)
    trainer = fit(_cfg(tmp_path, max_steps=3, precision="bf16-mixed"), module, data)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert next(module.parameters()).dtype == torch.float32  # mixed: master weights stay fp32


class GradNormSpy(L.Callback):
    """Records the global gradient norm the optimizer step used (after clipping); gradients
    are still there at batch end, zeroed only before the next step."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        grads = [p.grad.square().sum() for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.sqrt(sum(grads))))


def test_gradient_clipping_bounds_the_global_norm(tmp_path):
    norms = {}
    for clip in (None, 1e-3):
        module, data = build("vision", seed=0, global_batch=8)
        spy = GradNormSpy()
        fit(
            _cfg(tmp_path / f"c{clip}", max_steps=1, gradient_clip_val=clip),
            module,
            data,
            callbacks=[spy],
        )
        norms[clip] = spy.norms[0]
    assert norms[None] > 1e-2
    assert norms[1e-3] == pytest.approx(1e-3, rel=1e-3)

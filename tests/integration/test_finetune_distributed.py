"""Fine-tuning on N data-parallel ranks trains and scores what one process does.

``run_finetune`` (the path of ``earthplat finetune``) on 2 CPU ranks, DDP and FSDP2, against
one process at the same global batch, on real Sen1Floods11 windows with a warmup-frozen
backbone (frozen for 4 of the 8 steps, then trained): the exported weights match, the
validation and test metrics match (chips sharded over the ranks, the loss weighted by labelled
pixels), and the run dir loads back as a model (for FSDP2, from its sharded checkpoint).
And ``earthplat finetune --trainer.devices 2`` runs both ranks from the command line.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from earthplat.nn.task_model import load_task_model
from earthplat.traincore.distributed import clean_environment, run_distributed_test
from tests.helpers import distributed_fns as fns

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def flood_dataset(shared_data, tmp_path_factory):
    from earthplat.eval.recipes import sen1floods11_water

    path = tmp_path_factory.mktemp("ddp_finetune") / "floods"
    sen1floods11_water(shared_data / "real" / "sen1floods11_spain", path, size=128)
    return str(path)


@pytest.fixture(scope="module")
def one_process(flood_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("one_process") / "run"
    return fns.finetune_run(flood_dataset, str(run_dir), "auto", 1)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_ranks_train_and_score_like_one_process(strategy, flood_dataset, one_process, tmp_path):
    run_dir = tmp_path / strategy
    ranks = run_distributed_test(
        fns.finetune_run, flood_dataset, str(run_dir), strategy, 2, timeout=600
    )
    one = one_process
    # the loss is normalised by the labelled pixels of the global batch (not averaged over
    # per-rank means), so the ranks take one process's steps up to float rounding, which Adam
    # can blow up on a rare near-zero gradient (ranks that train apart differ in most weights
    # by 1e-4 to 1e-2)
    diffs = torch.cat(
        [(ranks[0]["state"][k] - ref).abs().flatten() for k, ref in one["state"].items()]
    )
    assert diffs.max() < 1e-4 and (diffs > 1e-6).float().mean() < 1e-3, (
        diffs.max().item(),
        int((diffs > 1e-6).sum()),
        diffs.numel(),
    )
    assert set(one["metrics"]) >= {"val/loss", "val/miou", "test/loss", "test/miou"}
    for rank in ranks:
        assert rank["metrics"].keys() == one["metrics"].keys()
        for key, value in one["metrics"].items():
            # IoU and accuracy count pixels and sync the counts across ranks (these splits
            # have an even number of chips, so none is scored twice). The eval loss (weighted
            # by labelled pixels) moves by ~0.1% with the weights' float-level differences
            rel = 5e-3 if key.endswith("/loss") else 1e-4
            assert rank["metrics"][key] == pytest.approx(value, rel=rel, abs=1e-4), (
                key,
                rank["metrics"][key],
                value,
            )
    for name, value in ranks[0]["from_run_dir"].items():
        torch.testing.assert_close(value, ranks[0]["state"][name], rtol=0, atol=0, msg=name)
    last = run_dir / "checkpoints" / "last.ckpt"
    if strategy == "fsdp":  # a sharded checkpoint: one shard file per rank
        assert (last / ".metadata").exists() and len(list(last.glob("*.distcp"))) == 2
    else:
        assert last.is_file()


def test_two_device_command_line_run(flood_dataset, tmp_path):
    """``earthplat finetune --trainer.devices 2``: Lightning starts the second rank by re-running
    the command line, which must therefore reach it whole."""
    run_dir = tmp_path / "cli"
    config = REPO / "earthplat" / "configs" / "finetune" / "sen1floods11_nano_upernet_s2.yaml"
    command = [
        str(Path(sys.executable).with_name("earthplat")),
        "finetune",
        "--config",
        str(config),
        "--data.init_args.config.path",
        flood_dataset,
        "--data.init_args.config.chip_size",
        "32",
        "--data.init_args.config.batch_size",
        "4",
        "--model.init_args.backbone",
        '{"name": "earthplat", "encoder": {"preset": "pico"}}',
        "--trainer.run_dir",
        str(run_dir),
        "--trainer.max_steps",
        "2",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.accelerator",
        "cpu",
        "--trainer.process_group_backend",
        "gloo",
        "--trainer.enable_progress_bar",
        "false",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=clean_environment()
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "GLOBAL_RANK: 1" in done.stdout + done.stderr  # the second rank ran
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"val/miou", "test/miou"} <= set(metrics)
    assert load_task_model(run_dir / "model").spec.task == "segmentation"


@pytest.mark.parametrize("task", ["regression", "multilabel"])
def test_a_rank_without_valid_targets_still_syncs_metrics(task):
    ranks = run_distributed_test(fns.validate_with_a_rank_without_targets, task, timeout=180)
    assert ranks[0].keys() == ranks[1].keys() and ranks[0] == ranks[1]
    wanted = {"val/loss", "val/mae", "val/rmse"} if task == "regression" else {"val/f1_macro"}
    assert wanted <= ranks[0].keys()
    assert all(v == v for v in ranks[0].values())  # no NaN: rank 0's targets were scored

"""Pretraining end to end: shipped YAML configs through `earthplat pretrain`, a 2-rank DDP step,
and export of the trained encoder."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from earthplat.traincore.distributed import run_distributed_test
from tests.helpers import distributed_fns as fns

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1].parent
CONFIGS = sorted((REPO / "earthplat" / "configs" / "pretrain").glob("*.yaml"))


@pytest.fixture(scope="module")
def eurosat_pack(shared_data, tmp_path_factory):
    from earthplat.data.pack import pack_dataset
    from earthplat.eval.recipes import ingest_eurosat

    root = tmp_path_factory.mktemp("eurosat")
    ds, _, report = ingest_eurosat(
        shared_data / "real" / "eurosat_ms_subset", root / "ds", limit_per_class=6
    )
    assert not report.failed
    pack_dataset(ds, root / "eurosat.h5")
    return root / "eurosat.h5"


def _earthplat() -> str:
    path = Path(sys.executable).with_name("earthplat")
    return str(path) if path.exists() else shutil.which("earthplat")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_pretrain_config_runs_and_exports(tmp_path, config, eurosat_pack):
    run = tmp_path / "run"
    cmd = [
        _earthplat(),
        "pretrain",
        "--config",
        str(config),
        "--data.config.path",
        str(eurosat_pack),
        "--data.config.batch_size",
        "8",
        "--trainer.run_dir",
        str(run),
        "--trainer.max_steps",
        "4",
        "--trainer.val_check_interval",
        "2",
        "--trainer.enable_progress_bar",
        "false",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "energy.json").exists()
    throughput = (run / "throughput.json").read_text()
    assert "tokens_per_sec" in throughput
    exported = subprocess.run(
        [
            _earthplat(),
            "export",
            "--checkpoint",
            str(run / "checkpoints" / "last.ckpt"),
            "--out",
            str(tmp_path / "enc"),
        ],
        capture_output=True,
        text=True,
    )
    assert exported.returncode == 0, exported.stderr[-3000:]
    from earthplat.nn import load_encoder

    encoder = load_encoder(tmp_path / "enc")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    w = "patch_embed.sentinel2_l1c__0.weight"
    assert torch.equal(encoder.state_dict()[w], ckpt["state_dict"][f"encoder.{w}"])


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_rank_pretraining_step(tmp_path, eurosat_pack, strategy):
    ranks = run_distributed_test(
        fns.pretrain_steps, str(eurosat_pack), str(tmp_path / strategy), strategy, timeout=240
    )
    assert len(ranks) == 2
    for name, value in ranks[0].items():
        torch.testing.assert_close(ranks[1][name], value, rtol=0, atol=0, msg=name)
    # the steps changed the weights
    torch.manual_seed(0)
    from earthplat.nn.encoder import EncoderConfig

    init = EncoderConfig.pico(modalities=("sentinel2_l1c",)).build()
    assert any(not torch.equal(p.detach(), ranks[0][n]) for n, p in init.named_parameters())

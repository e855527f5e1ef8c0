"""The console scripts, and every shipped YAML config running a few real steps."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "olmo_lm" / "configs").glob("*.yaml")) + sorted(
    (REPO / "earthplat" / "configs").rglob("*.yaml")
)


def _script(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else shutil.which(name)


@pytest.mark.parametrize("name", ["earthplat", "olmo-lm"])
def test_help(name):
    out = subprocess.run([_script(name), "--help"], capture_output=True, text=True, check=True)
    assert "usage:" in out.stdout


def test_earthplat_info_reports_versions():
    out = subprocess.run([_script("earthplat"), "info"], capture_output=True, text=True, check=True)
    assert '"torch": "2.14.1' in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_runs(tmp_path, config, shakespeare):
    run_dir = tmp_path / "run"
    cmd = [
        _script("olmo-lm"),
        "train",
        "--config",
        str(config),
        "--data.path",
        str(shakespeare),
        "--trainer.run_dir",
        str(run_dir),
        "--trainer.max_steps",
        "3",
        "--trainer.val_check_interval",
        "3",
        "--trainer.limit_val_batches",
        "2",
        "--trainer.enable_progress_bar",
        "false",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "val/loss=" in out.stdout
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 3
    assert (run_dir / "energy.json").exists() and (run_dir / "throughput.json").exists()
    gen = subprocess.run(
        [
            _script("olmo-lm"),
            "generate",
            "--run_dir",
            str(run_dir),
            "--prompt",
            "ROMEO:",
            "--max_new_tokens",
            "20",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert gen.stdout.startswith("ROMEO:")

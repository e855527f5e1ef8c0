"""The console scripts, and every shipped YAML config running a few real steps."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "olmo_lm" / "configs").glob("*.yaml"))  # earthplat ones: test_pretrain


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


@pytest.mark.slow
def test_windows_ingest_show_from_the_command_line(tmp_path, shared_data):
    d = shared_data / "real" / "s2_slovenia_eolearn"
    ds = tmp_path / "ds"

    def run(*args):
        return subprocess.run(
            [_script("earthplat"), *args], capture_output=True, text=True, cwd=tmp_path
        )

    out = run(
        "windows",
        "create",
        "--dataset",
        str(ds),
        "--bbox",
        "[14.5513, 45.8659, 14.5643, 45.8750]",
        "--start",
        "2015-07-01",
        "--end",
        "2015-09-29",
        "--size",
        "64",
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "6 windows written" in out.stdout
    ingest = [
        "ingest",
        "--dataset",
        str(ds),
        "--layer",
        "s2",
        "--modality",
        "sentinel2_l1c",
        "--paths",
        f"[{d / 's2_l1c_5dates_13bands.tif'}]",
        "--period",
        "20d",
    ]
    out = run(*ingest, "--quality", str(d / "cloudmask_68dates.tif"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "6 materialised" in out.stdout
    again = run(*ingest)
    assert "6 already done" in again.stdout
    from earthplat.data.dataset import Dataset

    name = Dataset(ds).windows()[0].name
    png = tmp_path / "preview.png"
    out = run("dataset", "show", "--dataset", str(ds), "--window", name, "--png", str(png))
    assert out.returncode == 0, out.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"missing_periods"' in out.stdout
    pack = tmp_path / "pretrain.h5"
    out = run("dataset", "pack", "--dataset", str(ds), "--out", str(pack))
    assert out.returncode == 0, out.stderr[-2000:]
    assert pack.exists()
    shown = run("dataset", "show", "--dataset", str(pack))
    assert shown.returncode == 0 and "6" in shown.stdout and "sentinel2_l1c" in shown.stdout
    bad = run(
        "ingest",
        "--dataset",
        str(ds),
        "--layer",
        "x",
        "--modality",
        "modis",
        "--paths",
        f"[{d / 'dem.tif'}]",
    )
    assert bad.returncode != 0 and "unknown modality 'modis'" in bad.stderr

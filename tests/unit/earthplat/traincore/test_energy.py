import json

import pytest

from earthplat.traincore.callbacks.energy import (
    EnergyConfig,
    _RaplMeter,
    build_report,
    carbon_and_water,
)
from earthplat.traincore.errors import TrainCoreConfigError
from earthplat.traincore.trainer import TrainerConfig, fit
from tests.helpers.models import build

REPORT_FIELDS = {
    "duration_s",
    "energy_kwh",
    "energy_source",
    "energy_measured",
    "devices",
    "facility_energy_kwh",
    "co2e_kg",
    "water_l",
    "factors",
    "provenance",
}


def test_conversions_follow_olmo_defaults():
    out = carbon_and_water(10.0, EnergyConfig())
    assert out["facility_energy_kwh"] == pytest.approx(12.0)
    assert out["co2e_kg"] == pytest.approx(10 * 1.2 * 0.332)
    assert out["water_l"] == pytest.approx(10 * 1.2 * (0.0 + 1.29))


def test_conversion_factors_are_configurable():
    cfg = EnergyConfig(
        pue=1.5,
        carbon_intensity_kg_per_kwh=0.1,
        wue_onsite_l_per_kwh=2.0,
        wue_offsite_l_per_kwh=1.0,
    )
    out = carbon_and_water(2.0, cfg)
    assert out["co2e_kg"] == pytest.approx(2 * 1.5 * 0.1)
    assert out["water_l"] == pytest.approx(2 * 1.5 * 3.0)


def test_bad_pue_is_refused():
    with pytest.raises(TrainCoreConfigError, match="pue"):
        EnergyConfig(pue=0.9)


def test_report_labels_measured_and_estimated_figures():
    ranks = [
        {"device": "cuda:0", "source": "measured:nvml", "joules": 3.6e6, "measured": True},
        {
            "device": "cpu",
            "source": "estimated:tdp-utilization",
            "joules": 3.6e6,
            "measured": False,
        },
    ]
    report = build_report(ranks, 10.0, EnergyConfig())
    assert report.keys() >= REPORT_FIELDS
    assert report["energy_kwh"] == pytest.approx(2.0)
    assert report["energy_measured"] is False
    assert report["energy_source"].startswith("mixed:")
    assert report["provenance"]["co2e_kg"].startswith("estimated")
    measured = build_report(ranks[:1], 10.0, EnergyConfig())
    assert measured["energy_source"] == "measured:nvml"
    assert measured["provenance"]["water_l"].startswith("measured")


def test_rapl_meter_handles_counter_wrap(tmp_path):
    pkg = tmp_path / "intel-rapl:0"
    sub = tmp_path / "intel-rapl:0:0"  # a sub-domain: must not be double counted
    for d in (pkg, sub):
        d.mkdir()
        (d / "max_energy_range_uj").write_text("1000000\n")
    (pkg / "energy_uj").write_text("900000\n")
    (sub / "energy_uj").write_text("0\n")
    meter = _RaplMeter(tmp_path)
    assert meter.available and len(meter.domains) == 1
    (pkg / "energy_uj").write_text("950000\n")
    meter.poll()
    (pkg / "energy_uj").write_text("50000\n")  # wrapped past 1 J
    meter.poll()
    assert meter.joules == pytest.approx(0.05 + 0.1)


def test_training_run_writes_energy_json(tmp_path):
    module, data = build("vision", seed=0, global_batch=8)
    cfg = TrainerConfig(
        run_dir=str(tmp_path),
        accelerator="cpu",
        devices=1,
        max_steps=3,
        enable_progress_bar=False,
        energy=EnergyConfig(poll_interval_s=0.01, rapl_root=str(tmp_path / "none")),
    )
    fit(cfg, module, data)
    report = json.loads((tmp_path / "energy.json").read_text())
    assert report.keys() >= REPORT_FIELDS
    assert report["energy_source"] == "estimated:tdp-utilization"
    assert report["energy_measured"] is False
    assert report["energy_kwh"] > 0
    assert report["devices"][0]["assumed_tdp_watts"] > 0
    assert report["co2e_kg"] == pytest.approx(report["energy_kwh"] * 1.2 * 0.332)


def test_training_run_uses_rapl_when_readable(tmp_path):
    pkg = tmp_path / "rapl" / "intel-rapl:0"
    pkg.mkdir(parents=True)
    (pkg / "max_energy_range_uj").write_text("100000000000\n")
    (pkg / "energy_uj").write_text("0\n")

    import lightning as L

    class Bump(L.Callback):  # the package burns 1 J per step
        def on_train_batch_end(self, *args):
            value = int((pkg / "energy_uj").read_text())
            (pkg / "energy_uj").write_text(f"{value + 1_000_000}\n")

    module, data = build("vision", seed=0, global_batch=8)
    cfg = TrainerConfig(
        run_dir=str(tmp_path / "run"),
        accelerator="cpu",
        devices=1,
        max_steps=4,
        enable_progress_bar=False,
        energy=EnergyConfig(poll_interval_s=0, rapl_root=str(tmp_path / "rapl")),
    )
    fit(cfg, module, data, callbacks=[Bump()])
    report = json.loads((tmp_path / "run" / "energy.json").read_text())
    assert report["energy_source"] == "measured:rapl"
    assert report["energy_measured"] is True
    assert report["energy_kwh"] * 3.6e6 == pytest.approx(4.0)

"""Energy, carbon and water of a training run.

Where the energy comes from, in order of preference, per device:

* NVIDIA GPU: NVML's cumulative energy counter (``measured:nvml``), or NVML power samples
  integrated over time on chips without the counter (``measured:nvml-power``).
* CPU: the RAPL package counters under ``/sys/class/powercap`` when readable (``measured:rapl``).
  RAPL measures the whole socket, every process on it, so only local rank 0 reads it.
* Otherwise: TDP x utilisation x time (``estimated:tdp-utilization``), with utilisation from
  NVML or, on CPU, from this process's CPU time.

Conversions follow the OLMo environmental-impact reporting: facility energy = E x PUE,
CO2e = E x PUE x carbon intensity, water = E x PUE x (WUE on-site + WUE off-site). Defaults are
the OLMo papers' figures (PUE 1.2, 0.332 kgCO2e/kWh, WUE 0 on-site and 1.29 L/kWh off-site).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import psutil
import torch

from earthplat.traincore.errors import TrainCoreConfigError

RAPL_ROOT = Path("/sys/class/powercap")


@dataclass
class EnergyConfig:
    """Conversion factors and fallbacks of the energy report."""

    pue: float = 1.2
    """Power usage effectiveness of the data centre."""
    carbon_intensity_kg_per_kwh: float = 0.332
    """Grid carbon intensity, kgCO2e per kWh."""
    wue_onsite_l_per_kwh: float = 0.0
    """On-site water usage effectiveness (cooling), litres per kWh."""
    wue_offsite_l_per_kwh: float = 1.29
    """Off-site water usage effectiveness (electricity generation), litres per kWh."""
    cpu_tdp_watts: float | None = None
    """CPU TDP used when nothing is measured; ``None`` assumes 5 W per logical core."""
    gpu_tdp_watts: float | None = None
    """GPU TDP used when NVML energy is unavailable; ``None`` uses NVML's power limit or 300 W."""
    poll_interval_s: float = 5.0
    """How often counters are read (RAPL counters wrap, power samples are integrated)."""
    rapl_root: str = str(RAPL_ROOT)
    """Where the powercap tree lives (configurable for tests and containers)."""

    def __post_init__(self) -> None:
        for name in (
            "pue",
            "carbon_intensity_kg_per_kwh",
            "wue_onsite_l_per_kwh",
            "wue_offsite_l_per_kwh",
            "poll_interval_s",
        ):
            if getattr(self, name) < 0:
                raise TrainCoreConfigError(f"energy.{name} must be >= 0")
        if self.pue < 1.0:
            raise TrainCoreConfigError(f"energy.pue must be >= 1.0 (got {self.pue})")


class _RaplMeter:
    """Sums top-level RAPL package domains, handling counter wrap-around."""

    def __init__(self, root: Path) -> None:
        self.domains: list[tuple[Path, int]] = []
        for d in sorted(root.glob("intel-rapl:*")):
            if d.name.count(":") != 1:  # sub-domains (core, uncore, dram) are inside the package
                continue
            energy, max_range = d / "energy_uj", d / "max_energy_range_uj"
            try:
                int(energy.read_text())
                self.domains.append((energy, int(max_range.read_text())))
            except (OSError, ValueError):
                continue
        self._last = [self._read(p) for p, _ in self.domains]
        self.joules = 0.0

    @staticmethod
    def _read(path: Path) -> int:
        return int(path.read_text())

    @property
    def available(self) -> bool:
        return bool(self.domains)

    def poll(self) -> None:
        for i, (path, max_range) in enumerate(self.domains):
            now = self._read(path)
            delta = now - self._last[i]
            if delta < 0:  # wrapped
                delta += max_range
            self.joules += delta / 1e6
            self._last[i] = now


class _NvmlMeter:
    """One CUDA device through NVML: energy counter, else power samples x time."""

    def __init__(self, index: int, tdp_override: float | None) -> None:
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self.joules = 0.0
        self._last_t = time.monotonic()
        try:
            self._last_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.source = "measured:nvml"
        except pynvml.NVMLError:
            self._last_mj = None
            self.source = "measured:nvml-power"
        self.tdp = tdp_override
        if self.tdp is None:
            try:
                self.tdp = pynvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0
            except pynvml.NVMLError:
                self.tdp = 300.0

    def poll(self) -> None:
        now = time.monotonic()
        if self._last_mj is not None:
            mj = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.joules += (mj - self._last_mj) / 1000.0
            self._last_mj = mj
        else:
            try:
                watts = self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0
            except self.nvml.NVMLError:
                util = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu / 100.0
                watts = self.tdp * util
                self.source = "estimated:tdp-utilization"
            self.joules += watts * (now - self._last_t)
        self._last_t = now


class _CpuEstimate:
    """TDP x (this process's CPU time / (wall time x logical cores))."""

    def __init__(self, tdp_watts: float | None) -> None:
        self.cores = psutil.cpu_count(logical=True) or os.cpu_count() or 1
        self.tdp = tdp_watts if tdp_watts is not None else 5.0 * self.cores
        self.proc = psutil.Process()
        self._cpu0 = self._cpu_seconds()
        self._t0 = time.monotonic()

    def _cpu_seconds(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    @property
    def joules(self) -> float:
        wall = max(1e-9, time.monotonic() - self._t0)
        utilization = min(1.0, (self._cpu_seconds() - self._cpu0) / (wall * self.cores))
        return self.tdp * utilization * wall

    def poll(self) -> None:
        pass


def carbon_and_water(energy_kwh: float, cfg: EnergyConfig) -> dict[str, float]:
    """The OLMo conversions of IT energy (kWh) into facility energy, CO2e and water."""
    facility_kwh = energy_kwh * cfg.pue
    return {
        "facility_energy_kwh": facility_kwh,
        "co2e_kg": facility_kwh * cfg.carbon_intensity_kg_per_kwh,
        "water_l": facility_kwh * (cfg.wue_onsite_l_per_kwh + cfg.wue_offsite_l_per_kwh),
    }


class EnergyCallback(L.Callback):
    """Measures (or estimates) energy across all ranks; writes ``energy.json`` on rank 0."""

    def __init__(
        self, config: EnergyConfig | None = None, run_dir: str | Path | None = None
    ) -> None:
        self.config = config or EnergyConfig()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.report: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _make_meter(self, trainer: L.Trainer, device: torch.device) -> tuple[Any, str, str]:
        if device.type == "cuda":
            try:
                meter = _NvmlMeter(device.index or 0, self.config.gpu_tdp_watts)
                return meter, meter.source, f"cuda:{device.index or 0}"
            except Exception:  # NVML missing or refused: fall through to the estimate below
                pass
        if device.type == "cpu":
            if trainer.local_rank == 0:
                rapl = _RaplMeter(Path(self.config.rapl_root))
                if rapl.available:
                    return rapl, "measured:rapl", "cpu-package"
            elif _RaplMeter(Path(self.config.rapl_root)).available:
                return None, "measured:rapl (counted by local rank 0)", "cpu-package"
        return _CpuEstimate(self.config.cpu_tdp_watts), "estimated:tdp-utilization", device.type

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._meter, self._source, self._device = self._make_meter(trainer, pl_module.device)
        self._t0 = time.monotonic()
        self._stop.clear()
        if self._meter is not None and self.config.poll_interval_s > 0:
            self._thread = threading.Thread(
                target=self._poll_loop, daemon=True, name="energy-meter"
            )
            self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.config.poll_interval_s):
            try:
                self._meter.poll()
            except Exception:  # a counter that stops answering must not kill training
                return

    def _finish(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        joules = 0.0
        if self._meter is not None:
            self._meter.poll()
            joules = float(self._meter.joules)
        extra = {}
        if isinstance(self._meter, _CpuEstimate | _NvmlMeter):
            extra["assumed_tdp_watts"] = self._meter.tdp
        return {
            "device": self._device,
            "source": self._source,
            "joules": joules,
            "measured": self._source.startswith("measured"),
            **extra,
        }

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        mine = self._finish()
        per_rank: list[dict[str, Any]] = [mine]
        if trainer.world_size > 1 and torch.distributed.is_initialized():
            per_rank = [{} for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather_object(per_rank, mine)
        self.report = build_report(per_rank, time.monotonic() - self._t0, self.config)
        if trainer.is_global_zero:
            r = self.report
            pl_module.print(
                f"energy: {r['energy_kwh']:.3g} kWh ({r['energy_source']}), "
                f"{r['co2e_kg']:.3g} kgCO2e, {r['water_l']:.3g} L water"
            )
            if self.run_dir is not None:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                (self.run_dir / "energy.json").write_text(json.dumps(self.report, indent=2))
            for logger in trainer.loggers:
                logger.log_metrics(
                    {f"energy/{k}": self.report[k] for k in ("energy_kwh", "co2e_kg", "water_l")},
                    step=trainer.global_step,
                )


def build_report(
    per_rank: list[dict[str, Any]], duration_s: float, cfg: EnergyConfig
) -> dict[str, Any]:
    """Combine per-rank readings into the report written as ``energy.json``."""
    joules = sum(r["joules"] for r in per_rank)
    energy_kwh = joules / 3.6e6
    sources = sorted({r["source"] for r in per_rank})
    measured = all(r["measured"] for r in per_rank)
    report: dict[str, Any] = {
        "duration_s": duration_s,
        "energy_kwh": energy_kwh,
        "energy_source": sources[0] if len(sources) == 1 else "mixed: " + ", ".join(sources),
        "energy_measured": measured,
        "devices": per_rank,
        **carbon_and_water(energy_kwh, cfg),
        "factors": {
            k: v
            for k, v in asdict(cfg).items()
            if k
            in (
                "pue",
                "carbon_intensity_kg_per_kwh",
                "wue_onsite_l_per_kwh",
                "wue_offsite_l_per_kwh",
            )
        },
    }
    # derived figures inherit the provenance of the energy they are computed from
    kind = "measured" if measured else "estimated"
    report["provenance"] = {
        "energy_kwh": report["energy_source"],
        "facility_energy_kwh": f"{kind} energy x configured PUE",
        "co2e_kg": f"{kind} energy x configured PUE x configured carbon intensity",
        "water_l": f"{kind} energy x configured PUE x configured WUE (on-site + off-site)",
    }
    return report

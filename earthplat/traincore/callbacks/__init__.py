"""Callbacks every training run of the core gets."""

from earthplat.traincore.callbacks.config_saver import ConfigSaverCallback
from earthplat.traincore.callbacks.data_progress import DataProgressCallback
from earthplat.traincore.callbacks.energy import EnergyCallback, EnergyConfig
from earthplat.traincore.callbacks.rng_state import RngStateCallback
from earthplat.traincore.callbacks.throughput import ThroughputCallback

__all__ = [
    "ConfigSaverCallback",
    "DataProgressCallback",
    "EnergyCallback",
    "EnergyConfig",
    "RngStateCallback",
    "ThroughputCallback",
]

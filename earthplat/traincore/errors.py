"""The one exception hierarchy of the training core."""


class TrainCoreError(Exception):
    """Base class of every error the training core raises on purpose."""


class TrainCoreConfigError(TrainCoreError, ValueError):
    """A configuration value is invalid; the message names the field and what to use instead."""


class DistributedTestError(TrainCoreError, RuntimeError):
    """A rank of ``run_distributed_test`` failed; the message carries that rank's traceback."""

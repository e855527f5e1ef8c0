"""The one exception hierarchy of ``earthplat`` (outside the training core, which has its own).

Every message says what was wrong and what to do about it.
"""


class EarthplatError(Exception):
    """Base class of the errors earthplat raises on purpose."""


class SensorError(EarthplatError, KeyError):
    """An unknown modality, band or composite."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(EarthplatError, ValueError):
    """Input data that cannot be used: unreadable, without a CRS, outside the area, ..."""


class NoDataError(DataError):
    """A window or period that no source covers."""


class WindowError(DataError):
    """An invalid window specification (AOI, points, polygons, time range)."""


class PretrainConfigError(EarthplatError, ValueError):
    """An invalid pretraining sampling or data configuration."""


class SensorFileError(SensorError, ValueError):
    """A custom-sensor YAML file that cannot be used; the message names the file and the field."""

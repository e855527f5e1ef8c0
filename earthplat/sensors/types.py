"""The types of the sensor registry: bands, display composites and modalities."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Band:
    """One spectral (or derived) band."""

    name: str
    """Canonical band name, e.g. ``B04``, ``VV``."""
    common_name: str | None
    """STAC ``eo`` common name (``red``, ``nir08``...), ``None`` where none exists."""
    wavelength_um: float | None
    """Centre wavelength in micrometres (``None`` for SAR and maps)."""
    gsd_m: float
    """Native ground sample distance in metres."""
    mean: float
    """Normalisation mean, in stored units (DN, dB, metres, class code)."""
    std: float
    """Normalisation standard deviation, in stored units."""
    aliases: tuple[str, ...] = ()
    """Other names the band goes by in STAC catalogues and files (asset keys, ``B4``, ``b04``)."""


@dataclass(frozen=True)
class Composite:
    """Three bands (or band expressions) rendered as RGB with a value range per channel."""

    name: str
    """Preset name (``true_color``, ``false_color``...)."""
    bands: tuple[str, str, str]
    """Band names; ``A-B`` means the difference of two bands (e.g. ``VV-VH`` in dB)."""
    ranges: tuple[tuple[float, float], ...]
    """(low, high) per channel in stored units, mapped to 0..255."""
    description: str = ""


@dataclass(frozen=True)
class Modality:
    """A sensor product or a map, as the models and the data pipeline see it."""

    name: str
    """Registry name (``sentinel2_l2a``); lowercase letters, digits and ``_``."""
    bands: tuple[Band, ...]
    """Every band, in the canonical order of the modality."""
    band_sets: tuple[tuple[str, ...], ...]
    """Groups tokenised together (one token per patch, time step and band set)."""
    multitemporal: bool
    """Time series (imagery) or static (maps, elevation)."""
    decode_only: bool = False
    """Maps are prediction targets only, never encoder inputs."""
    units: str = ""
    """What a stored value means (``TOA reflectance x 10000``, ``backscatter dB``)."""
    dtype: str = "uint16"
    """Storage dtype of materialised layers."""
    nodata: float | None = 0
    """Value that marks invalid pixels in materialised layers (``None``: NaN for float dtypes)."""
    categorical: bool = False
    """Class codes rather than continuous values (resampled with nearest neighbour)."""
    classes: dict[int, str] = field(default_factory=dict)
    """Class code -> name, for categorical maps."""
    composites: tuple[Composite, ...] = ()
    """Display presets (UI tiles, previews)."""
    description: str = ""
    """One line for people."""
    family: str = ""
    """The instrument family shared by the product levels of one sensor (``sentinel2`` for both
    L1C and L2A); ``detect_product`` tells the members of a family apart. Empty for maps."""
    product_ids: tuple[str, ...] = ()
    """Case-insensitive names of this product in metadata, STAC and file names (``MSIL2A``,
    ``Level-2A``, ``sentinel-2-l2a``), matched on token boundaries (see ``detect_product``)."""

    # --- lookups -----------------------------------------------------------------------
    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    def band(self, name: str) -> Band:
        """Band by canonical name, common name or alias (case-insensitive)."""
        key = name.strip()
        for b in self.bands:
            if key.upper() == b.name.upper():
                return b
        lowered = key.lower()
        for b in self.bands:
            if lowered == (b.common_name or "").lower() or lowered in (
                a.lower() for a in b.aliases
            ):
                return b
        from earthplat.errors import SensorError

        raise SensorError(
            f"{self.name} has no band {name!r}; its bands are {', '.join(self.band_names)}"
        )

    def canonical(self, names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        return tuple(self.band(n).name for n in names)

    def composite(self, name: str) -> Composite:
        for c in self.composites:
            if c.name == name:
                return c
        from earthplat.errors import SensorError

        known = ", ".join(c.name for c in self.composites) or "none"
        raise SensorError(f"{self.name} has no composite {name!r}; known: {known}")

    def stats(self, bands: tuple[str, ...] | None = None) -> tuple[list[float], list[float]]:
        chosen = [self.band(b) for b in (bands or self.band_names)]
        return [b.mean for b in chosen], [b.std for b in chosen]

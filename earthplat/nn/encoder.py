"""The OlmoEarth-style encoder: one token per (patch, time step, band set), packed ViT blocks.

Reading order: the token layout, outputs and encodings (``earthplat.nn.tokens``) -> encoder
config -> encoder (its inputs are ``earthplat.batch.ModalityInput`` objects).

Each band set of each modality has its own flexible patch projection. Tokens carry four
encodings, each a quarter of the width: a learnable band-set embedding, a sin-cos of the time
index, a circular month encoding and a 2-D sin-cos of the patch position in metres. Tokens the
caller does not keep (masked, missing, or from decode-only maps) are removed *before* the
blocks, not attended with a mask; the blocks then run on packed rows (``attention.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from earthplat.batch import ModalityInput
from earthplat.errors import SensorError
from earthplat.nn.attention import Block, PackLayout
from earthplat.nn.patch_embed import RESIZE_MODES, FlexiPatchEmbed
from earthplat.nn.tokens import EncoderOutput, TokenLayout, Tokens, token_encodings
from earthplat.sensors import Modality, get_modality

# --- configuration -----------------------------------------------------------------------------
DEFAULT_MODALITIES = (
    "sentinel2_l2a",
    "sentinel1",
    "landsat",
    "worldcover",
    "dem",
    "openstreetmap",
    "canopy_height",
    "cdl",
    "worldcereal",
)
"""OlmoEarth v1's modalities: three sensors and six maps (the maps are decode-only targets)."""
ENCODING_STYLES = ("earthplat", "olmoearth")
TOKEN_PRESENCE = ("any_pixel", "top_left")
"""How a partly valid patch decides whether its token is encoded
(``EncoderConfig.token_presence``)."""


@dataclass
class EncoderConfig:
    """Shape of the encoder. Named sizes follow OlmoEarth v1 (width / depth / heads)."""

    embed_dim: int = 128
    """Token width; divisible by 4 (four encodings) and by ``num_heads``."""
    depth: int = 4
    """ViT blocks."""
    num_heads: int = 8
    """Attention heads."""
    mlp_ratio: float = 4.0
    """MLP hidden width over token width."""
    max_patch_size: int = 8
    """Largest patch size (the stored kernel size); any 1..max works at run time."""
    drop_path: float = 0.0
    """Stochastic depth rate."""
    modalities: tuple[str, ...] = DEFAULT_MODALITIES
    """Modalities with a patch projection. Maps (decode-only) get projections too: they are
    the targets of their tokens during pretraining."""
    max_time_steps: int = 64
    """Longest time series the time-index encoding is meant for (documentation; no table)."""
    band_sets: dict[str, tuple[tuple[str, ...], ...]] | None = None
    """Per modality, the band sets tokenised together, overriding the sensor registry's (the
    later OlmoEarth releases group all Sentinel-2 bands into one set: a third of the tokens).
    Modalities not named keep the registry's band sets."""
    patch_resize: str = "kernel"
    """How patches smaller than ``max_patch_size`` are embedded: ``kernel`` (the stored kernel
    resampled, ours) or ``image`` (the image upsampled, as OlmoEarth's weights were trained)."""
    pixel_hidden: tuple[int, ...] = ()
    """Widths of a per-pixel MLP before the patch projection (OlmoEarth v1.1); needs
    ``patch_resize="image"``."""
    encodings: str = "earthplat"
    """Formulas of the fixed encodings: ``earthplat`` or ``olmoearth`` (see ``token_encodings``)."""
    project_tokens: bool = True
    """Features are ``project(norm(x))`` (ours); False: ``norm(x)``, with the projection applied
    to the pooled vector only (``EncoderOutput.projected``), as OlmoEarth's encoder does."""
    encoder_inputs: tuple[str, ...] | None = None
    """Modalities the weights were trained to encode (published OlmoEarth v1: S2 L2A, S1,
    Landsat). ``forward`` refuses any other input unless it is in ``extra_inputs``. None: every
    modality that is not decode-only."""
    missing_bands: str = "drop"
    """Bands an input lacks (``ModalityInput.bands``): ``drop`` (ours: an incomplete band set
    gives no tokens), ``nearest`` or ``zero`` (filled as OlmoEarth v1 resp. v1.1+ were trained;
    see ``earthplat.sensors.fill``)."""
    token_presence: str = "any_pixel"
    """When a token of a partly valid patch is encoded: ``any_pixel`` (ours: any valid pixel
    in the patch) or ``top_left`` (its top-left pixel is valid, as OlmoEarth's encoder reads
    the mask)."""
    extra_inputs: tuple[str, ...] = ()
    """Modalities accepted beyond ``encoder_inputs``, on the user's explicit request: a map is
    then encoded, and an L1C input runs through the L2A projections of its sensor family. Each
    output names the ones it used (``EncoderOutput.untrained_inputs``)."""

    def __post_init__(self) -> None:
        from earthplat.traincore.errors import TrainCoreConfigError

        if self.patch_resize not in RESIZE_MODES:
            raise TrainCoreConfigError(
                f"patch_resize={self.patch_resize!r}; choose one of {', '.join(RESIZE_MODES)}"
            )
        if self.encodings not in ENCODING_STYLES:
            raise TrainCoreConfigError(
                f"encodings={self.encodings!r}; choose one of {', '.join(ENCODING_STYLES)}"
            )
        from earthplat.sensors.fill import FILL_POLICIES

        if self.token_presence not in TOKEN_PRESENCE:
            raise TrainCoreConfigError(
                f"token_presence={self.token_presence!r}; choose one of {', '.join(TOKEN_PRESENCE)}"
            )
        if self.missing_bands not in FILL_POLICIES:
            raise TrainCoreConfigError(
                f"missing_bands={self.missing_bands!r}; choose one of {', '.join(FILL_POLICIES)}"
            )
        self.pixel_hidden = tuple(int(h) for h in self.pixel_hidden)
        if self.pixel_hidden and self.patch_resize != "image":
            raise TrainCoreConfigError("pixel_hidden needs patch_resize='image'")
        if self.band_sets is not None:
            self.band_sets = {
                get_modality(name).name: tuple(
                    get_modality(name).canonical(tuple(group)) for group in groups
                )
                for name, groups in self.band_sets.items()
            }
        if self.encoder_inputs is not None:
            self.encoder_inputs = tuple(get_modality(m).name for m in self.encoder_inputs)
        self.extra_inputs = tuple(get_modality(m).name for m in self.extra_inputs)

        if self.embed_dim % 4 or (self.embed_dim // 4) % 4:
            raise TrainCoreConfigError(
                f"embed_dim={self.embed_dim} must be divisible by 16 (four encoding quarters, "
                "each a 2-D sin-cos)"
            )
        if self.embed_dim % self.num_heads:
            raise TrainCoreConfigError(
                f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}"
            )
        if not 1 <= self.max_patch_size <= 16:
            raise TrainCoreConfigError("max_patch_size must lie in 1..16")
        self.modalities = tuple(get_modality(m).name for m in self.modalities)
        unknown = sorted(set(self.band_sets or {}) - set(self.modalities))
        if unknown:
            raise TrainCoreConfigError(
                f"band_sets names {', '.join(unknown)}, which are not among the modalities"
            )

    def modality_band_sets(self, name: str) -> tuple[tuple[str, ...], ...]:
        """The band sets a modality is tokenised in: the override, else the registry's."""
        return (self.band_sets or {}).get(name) or get_modality(name).band_sets

    @classmethod
    def pico(cls, **kw) -> EncoderConfig:
        """A CPU-test size: 64 wide, 2 blocks, 4 heads."""
        return cls(embed_dim=64, depth=2, num_heads=4, **kw)

    @classmethod
    def nano(cls, **kw) -> EncoderConfig:
        return cls(embed_dim=128, depth=4, num_heads=8, **kw)

    @classmethod
    def tiny(cls, **kw) -> EncoderConfig:
        return cls(embed_dim=192, depth=12, num_heads=3, **kw)

    @classmethod
    def base(cls, **kw) -> EncoderConfig:
        return cls(embed_dim=768, depth=12, num_heads=12, **kw)

    @classmethod
    def large(cls, **kw) -> EncoderConfig:
        return cls(embed_dim=1024, depth=24, num_heads=16, **kw)

    def build(self) -> Encoder:
        return Encoder(self)


# --- the encoder -------------------------------------------------------------------------------
class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.embed_dim
        self.modalities: list[Modality] = [get_modality(m) for m in config.modalities]
        self.bandsets: list[tuple[str, int, tuple[int, ...]]] = []
        """(modality, set index, channel indices into the modality's band order)."""
        self.patch_embed = nn.ModuleDict()
        for m in self.modalities:
            order = {b: i for i, b in enumerate(m.band_names)}
            for s, bands in enumerate(config.modality_band_sets(m.name)):
                self.bandsets.append((m.name, s, tuple(order[b] for b in bands)))
                self.patch_embed[f"{m.name}__{s}"] = FlexiPatchEmbed(
                    len(bands), d, config.max_patch_size, config.patch_resize, config.pixel_hidden
                )
        self.bandset_embed = nn.Parameter(torch.zeros(len(self.bandsets), d // 4))
        nn.init.trunc_normal_(self.bandset_embed, std=0.02)
        dpr = torch.linspace(0, config.drop_path, config.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(d, config.num_heads, config.mlp_ratio, drop_path=r) for r in dpr
        )
        self.norm = nn.LayerNorm(d)
        self.project = nn.Linear(d, d)  # tokens into the output space heads and losses read
        self.apply(_init_linear)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    # --- tokens ------------------------------------------------------------------------------
    def channel_map(self, inputs: dict[str, ModalityInput]) -> dict[tuple[str, int], list[int]]:
        """(modality, band set) -> channel indices in the input, for band sets fully present."""
        known = {m.name for m in self.modalities}
        unknown = [n for n in inputs if get_modality(n).name not in known]
        if unknown:
            raise SensorError(
                f"the encoder has no patch projection for {', '.join(unknown)}; "
                f"its modalities are {', '.join(sorted(known))}"
            )
        out = {}
        for name, s, default in self.bandsets:
            if name not in inputs:
                continue
            bands = inputs[name].bands
            if bands is None:
                out[(name, s)] = list(default)
                continue
            where = {get_modality(name).band(b).name: i for i, b in enumerate(bands)}
            wanted = self.config.modality_band_sets(name)[s]
            if all(b in where for b in wanted):
                out[(name, s)] = [where[b] for b in wanted]
        return out

    def layout(
        self,
        shapes: dict[str, tuple[int, int, int]],
        patch_size: int,
        device: torch.device,
        present: set[tuple[str, int]] | None = None,
    ) -> TokenLayout:
        """Token layout for modalities of (T, H, W), in this encoder's band-set order."""
        parts: dict[str, list[torch.Tensor]] = {
            k: [] for k in ("bandset", "modality", "t", "row", "col", "dec")
        }
        slices = {}
        start = 0
        for g, (name, s, _) in enumerate(self.bandsets):
            if name not in shapes or (present is not None and (name, s) not in present):
                continue
            t, hh, ww = shapes[name]
            h, w = hh // patch_size, ww // patch_size
            n = t * h * w
            tt, rr, cc = torch.meshgrid(
                torch.arange(t, device=device),
                torch.arange(h, device=device),
                torch.arange(w, device=device),
                indexing="ij",
            )
            mi = [m.name for m in self.modalities].index(name)
            parts["bandset"].append(torch.full((n,), g, device=device))
            parts["modality"].append(torch.full((n,), mi, device=device))
            parts["t"].append(tt.reshape(-1))
            parts["row"].append(rr.reshape(-1))
            parts["col"].append(cc.reshape(-1))
            parts["dec"].append(torch.full((n,), self.modalities[mi].decode_only, device=device))
            slices[(name, s)] = (start, t, h, w, start + n)
            start += n
        if not slices:
            raise SensorError(
                "the batch holds none of the encoder's modalities: "
                + ", ".join(m.name for m in self.modalities)
            )
        cat = {k: torch.cat(v) for k, v in parts.items()}
        return TokenLayout(
            cat["bandset"],
            cat["modality"],
            cat["t"],
            cat["row"],
            cat["col"],
            cat["dec"].bool(),
            slices,
        )

    def tokenize(
        self,
        inputs: dict[str, ModalityInput],
        patch_size: int,
        gsd_m: float = 10.0,
        embed: nn.ModuleDict | None = None,
        with_encodings: bool = True,
    ) -> Tokens:
        """Patch-embed every band set and add encodings (``embed`` swaps the projections, e.g.
        for the frozen target projections, which get no encodings)."""
        embed = self.patch_embed if embed is None else embed
        channels = self.channel_map(inputs)
        shapes = {}
        for name, inp in inputs.items():
            if inp.data.ndim != 5:
                raise ValueError(
                    f"{name}: data must be [B, T, C, H, W], got {tuple(inp.data.shape)}"
                )
            shapes[name] = (inp.data.shape[1], inp.data.shape[3], inp.data.shape[4])
        any_input = next(iter(inputs.values())).data
        layout = self.layout(shapes, patch_size, any_input.device, present=set(channels))
        b = any_input.shape[0]
        xs, months, missing = [], [], []
        for name, s, _ in self.bandsets:
            if (name, s) not in layout.slices:
                continue
            inp = inputs[name]
            _, t, h, w, _ = layout.slices[(name, s)]
            pix = inp.data[:, :, channels[(name, s)]]  # [B, T, c, H, W]
            tok = embed[f"{name}__{s}"](pix.flatten(0, 1), patch_size)  # [B*T, h, w, D]
            xs.append(tok.reshape(b, t * h * w, -1))
            months.append(inp.timestamps[:, :, 1, None].expand(b, t, h * w).reshape(b, -1))
            valid = inp.valid.flatten(0, 1)[:, None]  # [B*T, 1, H, W]
            if self.config.token_presence == "top_left":
                p = patch_size
                v = valid[..., : h * p : p, : w * p : p].float()  # [B*T, 1, h, w]
            else:
                v = F.max_pool2d(valid.float(), patch_size)
            missing.append(v.reshape(b, t * h * w) == 0)
        x = torch.cat(xs, dim=1)
        month = torch.cat(months, dim=1).long()
        if with_encodings:
            timed = torch.tensor([m.multitemporal for m in self.modalities], device=x.device)
            enc = token_encodings(
                layout,
                month,
                patch_size,
                gsd_m,
                self.bandset_embed,
                self.config.encodings,
                timed[layout.modality],
            )
            x = x + enc.to(x.dtype)
        return Tokens(x, month, torch.cat(missing, dim=1), layout, patch_size)

    # --- forward -----------------------------------------------------------------------------
    def encode_tokens(
        self, tokens: Tokens, keep: torch.Tensor, allow_maps: bool = False
    ) -> EncoderOutput:
        """Run the blocks on the kept tokens only ([B, N] bool); ``allow_maps`` lets tokens of
        decode-only maps through (accepted with ``extra_inputs``)."""
        if (keep & tokens.missing).any():
            raise ValueError("missing tokens cannot be encoded")
        if not allow_maps and (keep & tokens.layout.decode_only[None]).any():
            raise ValueError("tokens of decode-only maps cannot be encoded")
        b, n, d = tokens.x.shape
        layout, flat = PackLayout.from_keep(keep)
        x = tokens.x.reshape(b * n, d)[flat]  # [Ntot, D]
        for block in self.blocks:
            x = block(x, layout)
        x = self.norm(x)
        if self.config.project_tokens:
            x = self.project(x)
        features = x.new_zeros(b * n, d).index_copy(0, flat, x).reshape(b, n, d)
        pooled = x.new_zeros(b, d).index_add(0, layout.batch, x)
        pooled = pooled / layout.counts.clamp_min(1)[:, None].to(x.dtype)
        projected = None if self.config.project_tokens else self.project(pooled)
        return EncoderOutput(features, keep, pooled, tokens, projected)

    # --- inputs as trained -------------------------------------------------------------------
    def trained_inputs(self) -> tuple[str, ...]:
        """The modalities the weights were trained to encode."""
        if self.config.encoder_inputs is not None:
            return self.config.encoder_inputs
        return tuple(m.name for m in self.modalities if not m.decode_only)

    def route_inputs(
        self, inputs: dict[str, ModalityInput]
    ) -> tuple[dict[str, ModalityInput], tuple[str, ...]]:
        """Check the inputs against what the weights were trained to encode.

        Returns the inputs keyed by the encoder's modalities (an accepted L1C input moves to
        its family's L2A projections) and the untrained modalities used. Raises
        ``SensorError`` with the fix for a modality the weights never encoded. Encoders that
        declare no ``encoder_inputs`` (ours) pass inputs through: their maps are tokenised for
        pretraining targets and simply not encoded."""
        if self.config.encoder_inputs is None:
            return self._fill_bands(inputs), ()
        trained = self.trained_inputs()
        known = {m.name for m in self.modalities}
        routed: dict[str, ModalityInput] = {}
        untrained: list[str] = []
        for raw, inp in inputs.items():
            spec = get_modality(raw)
            name = spec.name
            if name in trained:
                routed[name] = inp
                continue
            kin = [t for t in trained if spec.family and get_modality(t).family == spec.family]
            target = name if name in known else (kin[0] if kin else None)
            if name not in self.config.extra_inputs or target is None:
                if kin:
                    fix = (
                        f"materialise {kin[0]} instead (the weights were trained on "
                        f"{kin[0]}, and {name} values differ), or accept {name} explicitly "
                        f"with extra_inputs=('{name}',) (recorded in every output)"
                    )
                elif name in known:
                    fix = (
                        f"leave it out (it was a decode-only target in pretraining), or accept "
                        f"it explicitly with extra_inputs=('{name}',) (recorded in every output)"
                    )
                else:
                    fix = "leave it out: the encoder has no patch projection for it"
                raise SensorError(
                    f"this encoder was trained to encode {', '.join(trained)}, not {name}; {fix}"
                )
            bands = inp.bands if inp.bands is not None else spec.band_names
            target_bands = {b.upper() for b in get_modality(target).band_names}
            take = [i for i, b in enumerate(bands) if spec.band(b).name.upper() in target_bands]
            routed[target] = ModalityInput(
                inp.data[:, :, take], inp.valid, inp.timestamps, tuple(bands[i] for i in take)
            )
            untrained.append(name)
        return self._fill_bands(routed), tuple(untrained)

    def _fill_bands(self, inputs: dict[str, ModalityInput]) -> dict[str, ModalityInput]:
        """Inputs with the bands they lack filled (``EncoderConfig.missing_bands``)."""
        if self.config.missing_bands == "drop":
            return inputs
        from earthplat.sensors.fill import fill_missing_bands

        known = {m.name for m in self.modalities}
        out = {}
        for name, inp in inputs.items():
            spec = get_modality(name)
            if inp.bands is None or spec.name not in known:
                out[name] = inp
                continue
            data, bands = fill_missing_bands(
                inp.data, tuple(inp.bands), spec, self.config.missing_bands, band_axis=2
            )
            # filled bands are zero where the pixel is invalid, like every other band (the
            # reference fills before masking); else a fill value would leak into neighbouring
            # patches through the image resize
            data = data * inp.valid[:, :, None].to(data.dtype)
            out[name] = ModalityInput(data, inp.valid, inp.timestamps, bands)
        return out

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        patch_size: int = 4,
        keep: torch.Tensor | None = None,
        gsd_m: float = 10.0,
    ) -> EncoderOutput:
        """Encode a batch. Without ``keep`` every present, non-map token is encoded (the
        inference path: no masking). Inputs are checked against what the weights were trained
        to encode first (``route_inputs``)."""
        inputs, untrained = self.route_inputs(inputs)
        tokens = self.tokenize(inputs, patch_size, gsd_m)
        if keep is None:
            encodable = ~tokens.layout.decode_only
            trained = set(self.trained_inputs())
            for i, m in enumerate(self.modalities):
                if untrained and m.name in inputs and m.name not in trained:  # accepted map
                    encodable |= tokens.layout.modality == i
            keep = ~tokens.missing & encodable[None]
        out = self.encode_tokens(tokens, keep, allow_maps=bool(untrained))
        out.untrained_inputs = untrained
        return out


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)

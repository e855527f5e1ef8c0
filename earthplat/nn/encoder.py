"""The OlmoEarth-style encoder: one token per (patch, time step, band set), packed ViT blocks.

Reading order: token layout -> encoder config -> encoder (its inputs are
``earthplat.batch.ModalityInput`` objects).

Each band set of each modality has its own flexible patch projection. Tokens carry four
encodings, each a quarter of the width: a learnable band-set embedding, a sin-cos of the time
index, a circular month encoding and a 2-D sin-cos of the patch position in metres. Tokens the
caller does not keep (masked, missing, or from decode-only maps) are removed *before* the
blocks, not attended with a mask; the blocks then run on packed rows (``attention.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from earthplat.batch import ModalityInput
from earthplat.errors import SensorError
from earthplat.nn.attention import Block, PackLayout
from earthplat.nn.encodings import month_encoding, sincos_1d, sincos_2d
from earthplat.nn.patch_embed import FlexiPatchEmbed
from earthplat.sensors import Modality, get_modality


@dataclass
class TokenLayout:
    """The token sequence of one batch shape, in order modality -> band set -> t -> row -> col."""

    bandset: torch.Tensor
    """[N] index into the encoder's band sets."""
    modality: torch.Tensor
    """[N] index into the encoder's modalities."""
    t: torch.Tensor
    """[N] time index."""
    row: torch.Tensor
    """[N] patch row."""
    col: torch.Tensor
    """[N] patch column."""
    decode_only: torch.Tensor
    """[N] bool: the token belongs to a map (never encoded)."""
    slices: dict[tuple[str, int], tuple[int, int, int, int, int]] = field(default_factory=dict)
    """(modality, band set) -> (start, T, h, w, end) in the sequence."""

    @property
    def n(self) -> int:
        return self.bandset.numel()


@dataclass
class Tokens:
    x: torch.Tensor
    """[B, N, D] patch embeddings plus encodings."""
    month: torch.Tensor
    """[B, N] month of each token."""
    missing: torch.Tensor
    """[B, N] bool: no valid pixel in the token's patch."""
    layout: TokenLayout
    patch_size: int


@dataclass
class EncoderOutput:
    features: torch.Tensor
    """[B, N, D] encoded tokens (zeros where a token was not encoded)."""
    encoded: torch.Tensor
    """[B, N] bool: which tokens went through the encoder."""
    pooled: torch.Tensor
    """[B, D] mean of the encoded tokens."""
    tokens: Tokens

    def feature_map(self, modality: str | None = None) -> torch.Tensor:
        """[B, D, h, w]: per patch, the mean of its encoded tokens over time and band sets."""
        layout = self.tokens.layout
        chosen = [k for k in layout.slices if modality is None or k[0] == modality]
        if not chosen:
            raise SensorError(f"no tokens of modality {modality!r} in this output")
        h, w = layout.slices[chosen[0]][2:4]
        b, _, d = self.features.shape
        total = self.features.new_zeros(b, h * w, d)
        count = self.features.new_zeros(b, h * w, 1)
        for key in chosen:
            start, t, hh, ww, end = layout.slices[key]
            if (hh, ww) != (h, w):
                raise ValueError("modalities with different grids need modality= in feature_map")
            f = self.features[:, start:end].reshape(b, t, hh * ww, d)
            m = self.encoded[:, start:end].reshape(b, t, hh * ww, 1).to(f.dtype)
            total += (f * m).sum(1)
            count += m.sum(1)
        fmap = total / count.clamp_min(1)
        return fmap.transpose(1, 2).reshape(b, d, h, w)


def token_encodings(
    layout: TokenLayout,
    month: torch.Tensor,
    patch_size: int,
    gsd_m: float,
    bandset_table: torch.Tensor,
) -> torch.Tensor:
    """[B, N, 4q] with q the table's width: band-set | time index | month | position."""
    q = bandset_table.shape[1]
    scale = patch_size * gsd_m / 10.0
    rows = (layout.row.float() + 0.5) * scale  # patch centres in 10 m units
    cols = (layout.col.float() + 0.5) * scale
    static = torch.cat([bandset_table[layout.bandset], sincos_1d(layout.t, q)], dim=-1)
    position = sincos_2d(rows, cols, q)  # [N, q]
    b = month.shape[0]
    return torch.cat(
        [
            static[None].expand(b, -1, -1),
            month_encoding(month, q),
            position[None].expand(b, -1, -1),
        ],
        dim=-1,
    )


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

    def __post_init__(self) -> None:
        from earthplat.traincore.errors import TrainCoreConfigError

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
            for s, bands in enumerate(m.band_sets):
                self.bandsets.append((m.name, s, tuple(order[b] for b in bands)))
                self.patch_embed[f"{m.name}__{s}"] = FlexiPatchEmbed(
                    len(bands), d, config.max_patch_size
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
            wanted = get_modality(name).band_sets[s]
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
            v = F.max_pool2d(inp.valid.flatten(0, 1)[:, None].float(), patch_size)  # [B*T,1,h,w]
            missing.append(v.reshape(b, t * h * w) == 0)
        x = torch.cat(xs, dim=1)
        month = torch.cat(months, dim=1).long()
        if with_encodings:
            enc = token_encodings(layout, month, patch_size, gsd_m, self.bandset_embed)
            x = x + enc.to(x.dtype)
        return Tokens(x, month, torch.cat(missing, dim=1), layout, patch_size)

    # --- forward -----------------------------------------------------------------------------
    def encode_tokens(self, tokens: Tokens, keep: torch.Tensor) -> EncoderOutput:
        """Run the blocks on the kept tokens only ([B, N] bool)."""
        if (keep & tokens.missing).any():
            raise ValueError("missing tokens cannot be encoded")
        if (keep & tokens.layout.decode_only[None]).any():
            raise ValueError("tokens of decode-only maps cannot be encoded")
        b, n, d = tokens.x.shape
        layout, flat = PackLayout.from_keep(keep)
        x = tokens.x.reshape(b * n, d)[flat]  # [Ntot, D]
        for block in self.blocks:
            x = block(x, layout)
        x = self.project(self.norm(x))
        features = x.new_zeros(b * n, d).index_copy(0, flat, x).reshape(b, n, d)
        pooled = x.new_zeros(b, d).index_add(0, layout.batch, x)
        pooled = pooled / layout.counts.clamp_min(1)[:, None].to(x.dtype)
        return EncoderOutput(features, keep, pooled, tokens)

    def forward(
        self,
        inputs: dict[str, ModalityInput],
        patch_size: int = 4,
        keep: torch.Tensor | None = None,
        gsd_m: float = 10.0,
    ) -> EncoderOutput:
        """Encode a batch. Without ``keep`` every present, non-map token is encoded (the
        inference path: no masking)."""
        tokens = self.tokenize(inputs, patch_size, gsd_m)
        if keep is None:
            keep = ~tokens.missing & ~tokens.layout.decode_only[None]
        return self.encode_tokens(tokens, keep)


def _init_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)

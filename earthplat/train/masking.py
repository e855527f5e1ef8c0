"""Masking strategies: which tokens the encoder sees and which the predictor must predict.

Every strategy returns two [B, N] bool masks, ``encode`` and ``decode``, with these invariants
(tested for every registered strategy): missing tokens are in neither; map (decode-only) tokens
are never encoded and are always decoded when present; encode and decode are disjoint; every
sample encodes at least one token. Randomness comes from an explicit ``torch.Generator``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from earthplat.nn.tokens import Tokens

MaskFn = Callable[[Tokens, "MaskingConfig", torch.Generator], tuple[torch.Tensor, torch.Tensor]]
MASKING_STRATEGIES: dict[str, MaskFn] = {}


def register_masking(name: str):
    def wrap(fn: MaskFn) -> MaskFn:
        MASKING_STRATEGIES[name] = fn
        return fn

    return wrap


@dataclass
class MaskingConfig:
    """Which strategy, and what share of the maskable tokens to encode and to decode."""

    strategy: str = "random"
    """One of ``MASKING_STRATEGIES``: random, space, time, modality_cross."""
    encode_ratio: float = 0.5
    """Share of each sample's maskable tokens given to the encoder."""
    decode_ratio: float = 0.5
    """Share predicted by the predictor (the rest of the maskable tokens is dropped)."""

    def __post_init__(self) -> None:
        from earthplat.traincore.errors import TrainCoreConfigError

        if self.strategy not in MASKING_STRATEGIES:
            raise TrainCoreConfigError(
                f"unknown masking strategy {self.strategy!r}; use one of "
                + ", ".join(sorted(MASKING_STRATEGIES))
            )
        if not (
            0 < self.encode_ratio < 1
            and 0 < self.decode_ratio <= 1
            and self.encode_ratio + self.decode_ratio <= 1.0 + 1e-9
        ):
            raise TrainCoreConfigError(
                "need 0 < encode_ratio < 1, 0 < decode_ratio and encode_ratio + decode_ratio <= 1"
            )

    def __call__(self, tokens: Tokens, generator: torch.Generator):
        encode, decode = MASKING_STRATEGIES[self.strategy](tokens, self, generator)
        return _finish(tokens, encode, decode, generator)


def _maskable(tokens: Tokens) -> torch.Tensor:
    return ~tokens.missing & ~tokens.layout.decode_only[None]


def _split_by_score(score: torch.Tensor, maskable: torch.Tensor, cfg: MaskingConfig):
    """Per sample, rank maskable tokens by ``score``: the first share encodes, the next
    decodes."""
    score = score.masked_fill(~maskable, float("inf"))
    rank = score.argsort(dim=1).argsort(dim=1)  # [B, N] rank of each token
    count = maskable.sum(dim=1, keepdim=True).float()
    n_enc = (count * cfg.encode_ratio).round().clamp_min(1)
    n_dec = (count * cfg.decode_ratio).round()
    encode = maskable & (rank < n_enc)
    decode = maskable & (rank >= n_enc) & (rank < n_enc + n_dec)
    return encode, decode


def _uniform(shape, tokens: Tokens, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator).to(tokens.x.device)


@register_masking("random")
def random_masking(tokens: Tokens, cfg: MaskingConfig, generator: torch.Generator):
    b, n = tokens.missing.shape
    return _split_by_score(_uniform((b, n), tokens, generator), _maskable(tokens), cfg)


def _grouped(tokens: Tokens, cfg: MaskingConfig, group: torch.Tensor, generator):
    """Tokens sharing a group id (per sample) share a score: whole groups go together."""
    b = tokens.missing.shape[0]
    groups = int(group.max()) + 1
    per_group = _uniform((b, groups), tokens, generator)  # [B, G]
    score = per_group.gather(1, group[None].expand(b, -1))
    # within a group keep a tiny random order so the rounding boundary splits at most one group
    score = score + 1e-6 * _uniform(score.shape, tokens, generator)
    return _split_by_score(score, _maskable(tokens), cfg)


@register_masking("space")
def space_masking(tokens: Tokens, cfg: MaskingConfig, generator: torch.Generator):
    """Whole patch positions: a location is seen (all times, all band sets) or not."""
    lay = tokens.layout
    width = int(lay.col.max()) + 1
    return _grouped(tokens, cfg, lay.row * width + lay.col, generator)


@register_masking("time")
def time_masking(tokens: Tokens, cfg: MaskingConfig, generator: torch.Generator):
    """Whole time steps: a period is seen (everywhere, all band sets) or not."""
    return _grouped(tokens, cfg, tokens.layout.t, generator)


@register_masking("modality_cross")
def modality_cross_masking(tokens: Tokens, cfg: MaskingConfig, generator: torch.Generator):
    """Band sets are split per sample into encoded and decoded ones, then random within: the
    model must predict one band set (or modality) from others."""
    b, n = tokens.missing.shape
    lay = tokens.layout
    maskable = _maskable(tokens)
    sets = int(lay.bandset.max()) + 1
    present = torch.zeros(b, sets, dtype=torch.bool, device=maskable.device)
    present.scatter_reduce_(1, lay.bandset[None].expand(b, -1), maskable, reduce="amax")
    score = _uniform((b, sets), tokens, generator).masked_fill(~present, 2.0)
    n_present = present.sum(1, keepdim=True)
    n_src = (n_present.float() * 0.5).ceil().clamp(1)
    source = (score.argsort(1).argsort(1) < n_src) & present  # band sets to encode from
    # with a single band set present, fall back to random masking inside it
    single = n_present == 1
    src_tok = source.gather(1, lay.bandset[None].expand(b, -1)) | single
    dst_tok = ~source.gather(1, lay.bandset[None].expand(b, -1)) | single
    random = _uniform((b, n), tokens, generator)
    enc, _ = _split_by_score(random, maskable & src_tok, cfg)
    dec_scores = random.masked_fill(enc, float("inf"))
    _, dec = _split_by_score(
        dec_scores, maskable & dst_tok & ~enc, MaskingConfig("random", 1e-9, cfg.decode_ratio)
    )
    return enc, dec


def _finish(tokens: Tokens, encode: torch.Tensor, decode: torch.Tensor, generator):
    """Enforce the invariants every strategy must meet."""
    present_maps = ~tokens.missing & tokens.layout.decode_only[None]
    encode = encode & ~tokens.missing & ~tokens.layout.decode_only[None]
    decode = (decode | present_maps) & ~encode & ~tokens.missing
    empty = encode.sum(1) == 0
    if empty.any():  # give each empty sample one maskable token (never a map or missing one)
        maskable = _maskable(tokens)
        pick = torch.where(maskable, _uniform(maskable.shape, tokens, generator), -1.0).argmax(1)
        fix = torch.zeros_like(encode)
        fix[torch.arange(encode.shape[0]), pick] = True
        fix &= maskable & empty[:, None]
        encode = encode | fix
        decode = decode & ~fix
    return encode, decode

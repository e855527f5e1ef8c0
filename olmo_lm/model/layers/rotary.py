"""Rotary position embeddings, with the frequency scalings long-context OLMo configs use.

Channels are rotated in (first half, second half) pairs, the NeoX/Llama layout the published
checkpoints were trained with. Scalings (``RopeScalingConfig.kind``):

- ``linear``: positions divided by ``factor`` (all frequencies slowed equally).
- ``llama3``: low frequencies divided by ``factor``, high ones kept, a smooth ramp between.
- ``yarn``: YaRN (Peng et al., 2023): per-dimension blend of interpolated and extrapolated
  frequencies by how many turns a dimension makes over the original context, plus an attention
  temperature (``attention_factor``) that multiplies cos and sin. Olmo 3's 7B and 32B extend
  8k -> 64k with yarn, factor 8, on the full-attention layers only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from earthplat.traincore.errors import TrainCoreConfigError

_KINDS = ("linear", "llama3", "yarn")


@dataclass
class RopeScalingConfig:
    """A RoPE frequency scaling for context extension."""

    kind: str = "yarn"
    """``linear``, ``llama3`` or ``yarn``."""
    factor: float = 8.0
    """How many times longer than ``original_max_seq_len`` the extended context is."""
    original_max_seq_len: int = 8192
    """Context length the model was pretrained at (the frequencies it knows)."""
    attention_factor: float | None = None
    """yarn: multiplier of cos/sin; ``None`` derives ``0.1 ln(factor) + 1``."""
    beta_fast: float = 32.0
    """yarn: dimensions turning more than this many times keep their frequency."""
    beta_slow: float = 1.0
    """yarn: dimensions turning fewer than this many times are fully interpolated."""
    low_freq_factor: float = 1.0
    """llama3: wavelengths above ``original / low_freq_factor`` are divided by ``factor``."""
    high_freq_factor: float = 4.0
    """llama3: wavelengths below ``original / high_freq_factor`` are kept."""
    truncate: bool = True
    """yarn: round the correction range outward to whole dimensions (the published default)."""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise TrainCoreConfigError(
                f"rope scaling kind {self.kind!r} is unknown; use one of {_KINDS}"
            )
        if self.factor <= 0:
            raise TrainCoreConfigError("rope_scaling.factor must be > 0")


def inverse_frequencies(
    head_dim: int, theta: float, scaling: RopeScalingConfig | None = None
) -> tuple[torch.Tensor, float]:
    """Per channel-pair angular frequencies ``[head_dim / 2]`` and the cos/sin multiplier."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inv_freq = 1.0 / theta**exponents
    if scaling is None:
        return inv_freq, 1.0
    if scaling.kind == "linear":
        return inv_freq / scaling.factor, 1.0
    if scaling.kind == "llama3":
        return _llama3(inv_freq, scaling), 1.0
    return _yarn(head_dim, theta, scaling)


def _llama3(inv_freq: torch.Tensor, s: RopeScalingConfig) -> torch.Tensor:
    low_wavelen = s.original_max_seq_len / s.low_freq_factor
    high_wavelen = s.original_max_seq_len / s.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq)
    smooth = (s.original_max_seq_len / wavelen - s.low_freq_factor) / (
        s.high_freq_factor - s.low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, smoothed, scaled)


def _yarn(head_dim: int, theta: float, s: RopeScalingConfig) -> tuple[torch.Tensor, float]:
    def dim_of(turns: float) -> float:
        # the dimension whose wavelength fits ``turns`` times in the original context
        return (
            head_dim
            * math.log(s.original_max_seq_len / (turns * 2 * math.pi))
            / (2 * math.log(theta))
        )

    low, high = dim_of(s.beta_fast), dim_of(s.beta_slow)
    if s.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001  # a zero-width ramp would divide by zero
    ramp = ((torch.arange(head_dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    base = theta ** (torch.arange(0, head_dim, 2).float() / head_dim)
    extrapolated, interpolated = 1.0 / base, 1.0 / (s.factor * base)
    keep = 1 - ramp  # 1 where a dimension turns fast enough to keep its frequency
    inv_freq = interpolated * (1 - keep) + extrapolated * keep
    attention_factor = s.attention_factor
    if attention_factor is None:
        attention_factor = 0.1 * math.log(s.factor) + 1.0 if s.factor > 1 else 1.0
    return inv_freq, float(attention_factor)


class RotaryEmbedding(nn.Module):
    """cos and sin ``[B, T, head_dim]`` for absolute positions ``[B, T]``.

    Angles are computed in float32 from the positions on every call (no cache to outgrow), which
    is also what makes cached decoding at position p bitwise equal to a full forward's row p.
    """

    def __init__(
        self, head_dim: int, theta: float, scaling: RopeScalingConfig | None = None
    ) -> None:
        super().__init__()
        self.head_dim, self.theta, self.scaling = head_dim, theta, scaling
        inv_freq, self.attention_scaling = inverse_frequencies(head_dim, theta, scaling)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def reset_buffers(self) -> None:
        """Recompute ``inv_freq`` (after building on the meta device and materialising)."""
        inv_freq, _ = inverse_frequencies(self.head_dim, self.theta, self.scaling)
        self.inv_freq = inv_freq.to(self.inv_freq.device)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = positions.float()[..., None] * self.inv_freq.float()  # [B, T, D/2]
        angles = torch.cat((angles, angles), dim=-1)  # [B, T, D]
        return angles.cos() * self.attention_scaling, angles.sin() * self.attention_scaling


def _rotate(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    # x * cos + (x2, x1) * (-sin1, sin2): one full multiply and two half multiply-adds
    half = x.shape[-1] // 2
    out = x * cos
    out[..., :half].addcmul_(x[..., half:], signed_sin[..., :half])
    out[..., half:].addcmul_(x[..., :half], signed_sin[..., half:])
    return out


class _RotaryFunction(torch.autograd.Function):
    """The rotation as one function: forward rotates by the angles, backward by their negatives
    (a rotation's transpose), so nothing but cos/sin is kept for backward and no rotated copy,
    negation or concatenation is built."""

    @staticmethod
    def forward(ctx, x, cos, signed_sin):
        ctx.save_for_backward(cos, signed_sin)
        return _rotate(x, cos, signed_sin)

    @staticmethod
    def backward(ctx, grad):
        cos, signed_sin = ctx.saved_tensors
        return _rotate(grad, cos, -signed_sin), None, None


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x [B, H, T, D]`` by cos/sin ``[B, T, D]`` (computed in float32): with
    ``x = (x1, x2)`` halves, ``(x1 cos - x2 sin, x2 cos + x1 sin)``."""
    cos, sin = cos[:, None].float(), sin[:, None].float()  # [B, 1, T, D]
    half = sin.shape[-1] // 2
    signed_sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
    return _RotaryFunction.apply(x.float(), cos, signed_sin).to(x.dtype)

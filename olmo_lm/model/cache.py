"""Decoding state: per-layer KV caches (full or a rolling window) and Gated DeltaNet state.

Caches are indexed by *column* (the index of a token in the padded batch), the same for every
row, so left-padded prompts write in lockstep; each slot also stores the absolute *position*
of its token per row (``-1`` for empty slots and padding), and attention masks are computed
from positions alone. That makes slot order irrelevant, which is what lets the sliding-window
cache be a ring of ``window`` slots overwritten in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


class KVCache:
    """All keys and values of a full-attention layer, preallocated to ``capacity`` columns."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.k: torch.Tensor | None = None  # [B, Hkv, S, D]
        self.v: torch.Tensor | None = None
        self.pos: torch.Tensor | None = None  # [B, S], -1 = empty or padding
        self.length = 0

    def _allocate(self, k: torch.Tensor, v: torch.Tensor, slots: int) -> None:
        b, h, _, d = k.shape
        self.k = k.new_zeros(b, h, slots, d)
        self.v = v.new_zeros(b, h, slots, v.shape[-1])
        self.pos = torch.full((b, slots), -1, dtype=torch.long, device=k.device)

    def update(
        self, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Append ``k, v [B, Hkv, T, D]`` at positions ``[B, T]``; return every key so far."""
        t = k.shape[2]
        if self.k is None:
            self._allocate(k, v, self.capacity)
        end = self.length + t
        if end > self.capacity:
            raise ValueError(
                f"KV cache of {self.capacity} tokens is full; create the cache with a larger "
                "capacity (prompt length + max_new_tokens)"
            )
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        self.pos[:, self.length : end] = pos
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end], self.pos[:, :end]


class RollingKVCache(KVCache):
    """The last ``window`` columns of a sliding-window layer, in a ring overwritten in place.

    A query at position p sees keys in (p - window, p], so the ``window`` newest columns are all
    any later query can need; memory stays ``window`` slots however long the generation runs.
    """

    def __init__(self, window: int) -> None:
        super().__init__(capacity=window)
        self.window = window

    def update(self, k, v, pos):
        t = k.shape[2]
        if self.k is None:
            self._allocate(k, v, self.window)
        # attention of this step: everything still in the ring plus all new keys (a prefill
        # longer than the window needs its own earlier tokens, which the ring cannot hold)
        keys = torch.cat((self.k, k), dim=2)
        values = torch.cat((self.v, v), dim=2)
        positions = torch.cat((self.pos, pos), dim=1)
        keep = min(t, self.window)
        cols = torch.arange(self.length + t - keep, self.length + t, device=k.device)
        slots = cols % self.window
        self.k[:, :, slots] = k[:, :, t - keep :]
        self.v[:, :, slots] = v[:, :, t - keep :]
        self.pos[:, slots] = pos[:, t - keep :]
        self.length += t
        return keys, values, positions


@dataclass
class RecurrentState:
    """Gated DeltaNet decoding state: the short-convolution window and the delta-rule memory."""

    conv: torch.Tensor | None = None
    """The last ``kernel - 1`` conv inputs ``[B, C, K - 1]`` (zeros before the first token)."""
    memory: torch.Tensor | None = None
    """The recurrent state ``[B, H, Dk, Dv]``."""
    length: int = 0
    """Columns consumed."""


@dataclass
class ModelCache:
    """One cache per layer plus, per row, how many real (non-padding) tokens were consumed."""

    layers: list[KVCache | RecurrentState]
    seen: torch.Tensor | None = None
    """``[B]`` real tokens consumed per row (the next token's position)."""
    length: int = 0
    """Columns consumed (the same for every row)."""
    extra: dict = field(default_factory=dict)

    @classmethod
    def for_model(cls, config, capacity: int) -> ModelCache:
        """Empty caches for ``config``'s layers, full ones holding ``capacity`` columns."""
        layers: list[KVCache | RecurrentState] = []
        for kind in config.resolved_layer_types:
            if kind == "gated_deltanet":
                layers.append(RecurrentState())
            elif kind == "sliding_attention" and config.sliding_window < capacity:
                layers.append(RollingKVCache(config.sliding_window))
            else:
                layers.append(KVCache(capacity))
        return cls(layers)

    def memory_bytes(self) -> int:
        """Bytes held by the cache tensors (for reporting)."""
        total = 0
        for layer in self.layers:
            tensors = (
                (layer.conv, layer.memory)
                if isinstance(layer, RecurrentState)
                else (layer.k, layer.v, layer.pos)
            )
            total += sum(t.numel() * t.element_size() for t in tensors if t is not None)
        return total

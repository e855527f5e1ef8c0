"""The predictor: decode queries cross-attend to the visible encoder tokens.

A decode query is a learnable mask token plus the encodings of the token to predict (band set,
time index, month, position) at the predictor's width. Queries never attend to each other; each
reads only the visible tokens of its own sample. The output, one per decoded token and so one
per band set, lives in the target space (the encoder's width).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from earthplat.nn.attention import Block, PackLayout
from earthplat.nn.encoder import Encoder, _init_linear
from earthplat.nn.tokens import EncoderOutput, token_encodings


@dataclass
class PredictorConfig:
    """Shape of the predictor (OlmoEarth v1: the encoder's width; depth 4 for nano)."""

    embed_dim: int | None = None
    """Width; ``None`` uses the encoder's."""
    depth: int = 4
    """Cross-attention blocks."""
    num_heads: int | None = None
    """Heads; ``None`` uses the encoder's."""
    mlp_ratio: float = 4.0
    """MLP hidden width over token width."""

    def build(self, encoder: Encoder) -> Predictor:
        return Predictor(self, encoder)


class Predictor(nn.Module):
    def __init__(self, config: PredictorConfig, encoder: Encoder) -> None:
        super().__init__()
        enc_d = encoder.embed_dim
        d = config.embed_dim or enc_d
        heads = config.num_heads or encoder.config.num_heads
        self.config = config
        self.embed_dim = d
        self.encoder_to_predictor = nn.Linear(enc_d, d)
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.bandset_embed = nn.Parameter(torch.zeros(len(encoder.bandsets), d // 4))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.bandset_embed, std=0.02)
        self.blocks = nn.ModuleList(
            Block(d, heads, config.mlp_ratio, cross=True, kv_dim=d) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, enc_d)
        self.apply(_init_linear)

    def forward(
        self, encoded: EncoderOutput, decode: torch.Tensor, gsd_m: float = 10.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the tokens marked in ``decode`` ([B, N] bool).

        Returns ([Qtot, D_enc] predictions, [Qtot] flat indices into B*N of the decoded tokens).
        """
        tokens = encoded.tokens
        b, n, _ = encoded.features.shape
        q_layout, q_flat = PackLayout.from_keep(decode)
        kv_layout, kv_flat = PackLayout.from_keep(encoded.encoded)
        kv = self.encoder_to_predictor(encoded.features.reshape(b * n, -1)[kv_flat])
        enc = token_encodings(
            tokens.layout, tokens.month, tokens.patch_size, gsd_m, self.bandset_embed
        )  # [B, N, d]
        q = self.mask_token + enc.reshape(b * n, -1)[q_flat]  # [Qtot, d]
        for block in self.blocks:
            q = block(q, q_layout, kv, kv_layout)
        return self.head(self.norm(q)), q_flat

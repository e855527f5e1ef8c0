"""The encoders a fine-tune can start from (``GET /api/v1/encoders``)."""

from __future__ import annotations

from pydantic import BaseModel


class EncoderPublic(BaseModel):
    id: str
    """``preset:NAME``, ``model:ID`` or ``olmoearth:NAME``: the ``finetune`` job's ``encoder``
    value."""
    name: str
    kind: str
    """``preset`` (a named size, random init), ``export`` (a registered model's encoder) or
    ``olmoearth`` (a published checkpoint under an encoder root of the data dir)."""
    modalities: list[str]
    """Modalities it encodes (a preset: the project's sensors, else its default modalities; a
    model: those it was trained with; a published checkpoint: those its release was trained to
    encode). Empty for a checkpoint that does not load."""
    params: int | None = None
    """Parameters of the encoder with those modalities (``None``: it does not load)."""
    embed_dim: int | None = None
    depth: int | None = None
    num_heads: int | None = None
    usable: bool = True
    """Whether a fine-tune can start from it; ``False`` with ``error`` for a published
    checkpoint that does not load."""
    error: str | None = None
    """Why a published checkpoint does not load (its fix: a complete v1/v1.1 download)."""
    version: str | None = None
    """A published checkpoint's release (``v1``, ``v1.1``...: from ``earthplat.json``, else
    read from its config)."""
    licence: str | None = None
    """A published checkpoint's licence (``earthplat.json`` or its LICENSE file's title;
    ``unknown`` when neither says)."""
    size_bytes: int | None = None
    """A published checkpoint's ``weights.pth`` size."""
    model_id: int | None = None
    project_id: int | None = None
    task_type: str | None = None
    base_encoder: str | None = None
    """What the model's own encoder started from."""
    created_at: str | None = None

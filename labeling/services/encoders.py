"""Encoders a fine-tune can start from: the encoder presets (``earthplat.nn.registry``) and the
registered models whose export holds an earthplat encoder.

An encoder is named by an id: ``preset:NAME`` (random init at a named size) or ``model:ID``
(the encoder weights of registered model ``ID``; the new model records it as its parent).
``apply_encoder`` turns an id into the fine-tune config's backbone; ``encoder_of`` reads the id
back from a resolved config, which is what the model registry and the throughput estimates
key on.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.models import ModelEntry
from labeling.services.errors import InvalidInputError

ENCODER_ID = r"^(preset:[A-Za-z0-9_]{1,64}|model:[1-9][0-9]{0,9})$"
"""The id pattern (``preset:nano``, ``model:12``)."""
_SCHEDULE_KEYS = ("freeze", "unfreeze_fraction", "modality")
"""Backbone keys that say how an encoder is trained, not which: kept when it is replaced."""


def parse_encoder(encoder_id: str) -> tuple[str, str | int]:
    """``("preset", NAME)`` or ``("model", ID)``."""
    if not re.match(ENCODER_ID, encoder_id or ""):
        raise InvalidInputError(
            f"encoder {encoder_id!r} is not an encoder id",
            fix="give preset:NAME or model:ID (GET /api/v1/encoders lists them)",
        )
    kind, value = encoder_id.split(":", 1)
    return kind, (int(value) if kind == "model" else value)


# --- presets -------------------------------------------------------------------------------
def count_params(config) -> int:
    """Parameters of the encoder ``config`` (an ``EncoderConfig``) builds, without building
    it: counted on a one- and a two-block build (the blocks are identical), so even ``large``
    costs a fraction of a second and little memory. Cached per config."""
    return _count_params(tuple(sorted(asdict(config).items())))


@lru_cache(maxsize=256)
def _count_params(fields: tuple) -> int:
    from earthplat.nn.encoder import EncoderConfig

    config = EncoderConfig(**dict(fields))
    one, two = (
        sum(p.numel() for p in replace(config, depth=d).build().parameters()) for d in (1, 2)
    )
    return one + (config.depth - 1) * (two - one)


def _describe(config) -> dict[str, Any]:
    return {
        "modalities": list(config.modalities),
        "params": count_params(config),
        "embed_dim": config.embed_dim,
        "depth": config.depth,
        "num_heads": config.num_heads,
    }


def preset_encoders(modalities: list[str] | None = None) -> list[dict[str, Any]]:
    """Every registered preset, sized for ``modalities`` (default: the encoder's own)."""
    from earthplat.nn.registry import ENCODER_PRESETS

    out = []
    for name, make in ENCODER_PRESETS.items():
        config = make(modalities=tuple(modalities)) if modalities else make()
        out.append({"id": f"preset:{name}", "name": name, "kind": "preset", **_describe(config)})
    return out


# --- registered models ----------------------------------------------------------------------
def model_encoder_config(entry: ModelEntry) -> dict[str, Any] | None:
    """The ``EncoderConfig`` fields of a registered model's exported earthplat encoder
    (``task.json``), or ``None`` when it has none (no export, a timm backbone)."""
    if not entry.model_dir:
        return None
    path = Path(entry.model_dir) / "task.json"
    try:
        spec = json.loads(path.read_text())["spec"]
    except (OSError, ValueError, KeyError):
        return None
    backbone = spec.get("backbone") or {}
    if backbone.get("name", "earthplat") != "earthplat" or not backbone.get("encoder"):
        return None
    return dict(backbone["encoder"])


def model_encoder(entry: ModelEntry) -> dict[str, Any] | None:
    """The ``/encoders`` item of a registered model, or ``None`` if it holds no encoder."""
    fields = model_encoder_config(entry)
    if fields is None:
        return None
    from earthplat.nn.encoder import EncoderConfig

    config = EncoderConfig(**{**fields, "modalities": tuple(fields.get("modalities") or ())})
    return {
        "id": f"model:{entry.id}",
        "name": entry.name,
        "kind": "export",
        **_describe(config),
        "model_id": entry.id,
        "project_id": entry.project_id,
        "task_type": entry.task_type,
        "base_encoder": encoder_of(entry.config or {}, parent_id=entry.parent_id),
        "created_at": entry.created_at.isoformat() if entry.created_at else None,
    }


def model_encoders(session: Session, *, project_ids: list[int] | None) -> list[dict[str, Any]]:
    """The registered models of ``project_ids`` (plus project-less ones; ``None``: all) that
    can be a fine-tune's base, oldest first."""
    query = select(ModelEntry).order_by(ModelEntry.id)
    if project_ids is not None:
        query = query.where(
            ModelEntry.project_id.in_(project_ids) | ModelEntry.project_id.is_(None)
        )
    return [item for entry in session.scalars(query) if (item := model_encoder(entry))]


def check_encoder(session: Session, *, encoder_id: str, project_id: int | None) -> None:
    """A 422 naming the problem unless ``encoder_id`` can start a fine-tune of the project."""
    kind, value = parse_encoder(encoder_id)
    if kind == "preset":
        from earthplat.nn.registry import ENCODER_PRESETS

        if value not in ENCODER_PRESETS:
            raise InvalidInputError(
                f"no encoder preset {value!r}",
                fix=f"use one of {', '.join(f'preset:{n}' for n in ENCODER_PRESETS)}",
            )
        return
    entry = session.get(ModelEntry, value)
    if entry is None or entry.project_id not in (None, project_id):
        raise InvalidInputError(
            f"project {project_id} has no model {value}",
            fix="list the encoders a fine-tune can start from: GET /api/v1/encoders?project_id=ID",
        )
    if model_encoder_config(entry) is None:
        raise InvalidInputError(
            f"model {value} holds no exported earthplat encoder (no task.json with an earthplat "
            "backbone in its model_dir)",
            fix="start from a preset or from a model fine-tuned with an earthplat encoder",
        )


def apply_encoder(cfg: dict, encoder_id: str, *, model_dir: str | None = None) -> None:
    """Point the fine-tune config's backbone at ``encoder_id`` (in place): a preset's named
    size, or the exported encoder at ``model_dir`` (``backbone.pretrained``). How the
    backbone is trained (``freeze``...) stays as the config says."""
    from earthplat.train.finetune import set_dotted

    kind, value = parse_encoder(encoder_id)
    init = (cfg.get("model") or {}).get("init_args", cfg.get("model") or {})
    old = dict(init.get("backbone") or {})
    backbone: dict[str, Any] = {"name": "earthplat"}
    backbone.update({k: old[k] for k in _SCHEDULE_KEYS if k in old})
    if kind == "preset":
        backbone["encoder"] = {"preset": value}
    else:
        if not model_dir:
            raise InvalidInputError(f"model {value} has no exported model to start from")
        backbone["pretrained"] = model_dir
    set_dotted(cfg, "model.backbone", backbone)


def encoder_of(cfg: dict, *, parent_id: int | None = None) -> str | None:
    """The encoder id a fine-tune config starts from: ``model:ID`` (``parent_id``, the model
    whose export is ``backbone.pretrained``), ``preset:NAME``, ``timm:MODEL``,
    ``pretrained:PATH`` (an encoder export outside the registry), ``custom`` (an encoder
    given field by field), or ``None`` (no model section)."""
    platform = cfg.get("platform") or {}
    if platform.get("encoder"):
        return platform["encoder"]
    model = cfg.get("model")
    if not isinstance(model, dict):
        return None
    init = model.get("init_args", model)
    backbone = init.get("backbone") or {"name": "earthplat", "encoder": {"preset": "nano"}}
    if backbone.get("name", "earthplat") == "timm":
        return f"timm:{backbone.get('model', 'resnet18')}"
    if backbone.get("pretrained"):
        return f"model:{parent_id}" if parent_id else f"pretrained:{backbone['pretrained']}"
    preset = (backbone.get("encoder") or {}).get("preset")
    return f"preset:{preset}" if preset else "custom"

"""Encoders a fine-tune can start from: the encoder presets (``earthplat.nn.registry``), the
registered models whose export holds an earthplat encoder, and the published OlmoEarth
checkpoints placed under the data dir.

An encoder is named by an id: ``preset:NAME`` (random init at a named size), ``model:ID``
(the encoder weights of registered model ``ID``; the new model records it as its parent) or
``olmoearth:NAME`` (the published checkpoint in directory ``NAME`` of an encoder root:
``DATA_DIR/encoders/NAME/{config.json,weights.pth}``, then the folders of the
``EARTHPLAT_ENCODER_ROOTS`` setting; the first root holding a name wins). Beside the weights,
an optional ``LICENSE`` file or an ``earthplat.json`` with ``{"licence": ..., "version": ...}``
says under which terms they may be used (``"unknown"`` otherwise) and overrides the release
read from the config. A directory that does not load is listed with its error and refused as
a fine-tune's base.
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

ENCODER_ID = (
    r"^(preset:[A-Za-z0-9_]{1,64}|model:[1-9][0-9]{0,9}"
    r"|olmoearth:[A-Za-z0-9][A-Za-z0-9_.-]{0,127})$"
)
"""The id pattern (``preset:nano``, ``model:12``, ``olmoearth:OlmoEarth-v1-Base``)."""
ENCODERS_DIR = "encoders"
"""``DATA_DIR/encoders``: the first encoder root (one published checkpoint per directory)."""
SIDECAR = "earthplat.json"
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENCE.txt")
_SCHEDULE_KEYS = ("freeze", "unfreeze_fraction", "modality")
"""Backbone keys that say how an encoder is trained, not which: kept when it is replaced."""


def parse_encoder(encoder_id: str) -> tuple[str, str | int]:
    """``("preset", NAME)``, ``("model", ID)`` or ``("olmoearth", NAME)``."""
    if not re.match(ENCODER_ID, encoder_id or ""):
        raise InvalidInputError(
            f"encoder {encoder_id!r} is not an encoder id",
            fix="give preset:NAME, model:ID or olmoearth:NAME (GET /api/v1/encoders lists them)",
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
    backbone = spec.get("backbone") or {}  # olmoearth: published weights, fine-tuned by us
    if backbone.get("name", "earthplat") not in ("earthplat", "olmoearth"):
        return None
    if not backbone.get("encoder"):
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


# --- published OlmoEarth checkpoints --------------------------------------------------------
def encoder_roots(data_dir: str | Path, extra: str | None = None) -> list[Path]:
    """Where published checkpoints are looked for: ``DATA_DIR/encoders``, then the folders of
    ``extra`` (``os.pathsep``- or comma-separated, the ``encoder_roots`` setting)."""
    roots = [Path(data_dir).expanduser().resolve() / ENCODERS_DIR]
    if extra and extra.strip():
        from earthplat.data.sources.roots import parse_roots

        roots += parse_roots(extra)
    return list(dict.fromkeys(roots))


def roots_of(settings) -> list[Path]:
    """``encoder_roots`` of the platform's settings (``api.settings.Settings``)."""
    return encoder_roots(settings.data_dir, getattr(settings, "encoder_roots", None))


def published_dirs(roots: list[Path]) -> dict[str, Path]:
    """Name -> directory of every (non-hidden) directory of the roots; the first root holding
    a name wins, so the data dir's copy shadows an extra root's."""
    found: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            if path.is_dir() and not path.name.startswith(".") and path.name not in found:
                found[path.name] = path
    return found


def licence_of(path: Path) -> str:
    """The ``licence`` of ``earthplat.json``, else the first line of a LICENSE file (its title,
    e.g. ``Apache License``), else ``"unknown"``."""
    sidecar = _sidecar(path)
    if isinstance(sidecar.get("licence"), str) and sidecar["licence"].strip():
        return sidecar["licence"].strip()[:200]
    for name in LICENSE_FILES:
        try:
            text = (path / name).read_text(errors="replace")
        except OSError:
            continue
        first = next((line.strip() for line in text.splitlines() if line.strip()), "")
        if first:
            return first[:200]
    return "unknown"


def _sidecar(path: Path) -> dict[str, Any]:
    try:
        value = json.loads((path / SIDECAR).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def published_encoder(path: Path) -> dict[str, Any]:
    """The ``/encoders`` item of the checkpoint directory ``path``: ``usable`` with its facts,
    or not, with ``error`` saying why it does not load (never raised: one broken download
    must not hide the others). Cached per directory until one of its files changes."""
    from earthplat.nn.olmoearth_ckpt import CONFIG, WEIGHTS

    stamp = []
    for name in (CONFIG, WEIGHTS, SIDECAR, *LICENSE_FILES):
        try:
            st = (path / name).stat()
        except OSError:
            continue
        stamp.append((name, st.st_mtime_ns, st.st_size))
    return dict(_published_encoder(str(path), tuple(stamp)))


@lru_cache(maxsize=64)
def _published_encoder(path_text: str, stamp: tuple) -> dict[str, Any]:
    from earthplat.errors import EarthplatError
    from earthplat.nn.olmoearth_ckpt import inspect_published

    path = Path(path_text)
    item: dict[str, Any] = {
        "id": f"olmoearth:{path.name}",
        "name": path.name,
        "kind": "olmoearth",
        "licence": licence_of(path),
        "modalities": [],
        "usable": False,
        "error": None,
    }
    if not re.match(ENCODER_ID, item["id"]):
        item["error"] = (
            f"the directory name {path.name!r} cannot be an encoder id; rename it to letters, "
            "digits, '_', '.' and '-' only"
        )
        return item
    try:
        facts = inspect_published(path)
    except (EarthplatError, OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        item["error"] = f"{type(e).__name__}: {e}" if not isinstance(e, EarthplatError) else str(e)
        return item
    version = _sidecar(path).get("version")
    return {
        **item,
        "version": version if isinstance(version, str) and version else facts["version"],
        "modalities": facts["modalities"],
        "params": facts["params"],
        "embed_dim": facts["embed_dim"],
        "depth": facts["depth"],
        "num_heads": facts["num_heads"],
        "size_bytes": facts["size_bytes"],
        "usable": True,
    }


def published_encoders(roots: list[Path]) -> list[dict[str, Any]]:
    """Every checkpoint directory of the roots, usable or not, by name."""
    return [published_encoder(path) for path in published_dirs(roots).values()]


def published_checkpoint(name: str, roots: list[Path]) -> Path:
    """The directory of the usable published checkpoint ``name``, or a 422 naming why not."""
    path = published_dirs(roots).get(name)
    if path is None:
        where = ", ".join(str(r) for r in roots)
        raise InvalidInputError(
            f"no published OlmoEarth checkpoint {name!r} under {where}",
            fix=f"put its config.json and weights.pth in {roots[0] / name} (GET /api/v1/encoders "
            "lists the checkpoints found)",
        )
    item = published_encoder(path)
    if not item["usable"]:
        raise InvalidInputError(
            f"published checkpoint {name!r} does not load: {item['error']}",
            fix="replace its files with a complete download of a v1 or v1.1 release",
        )
    return path


def check_encoder(
    session: Session,
    *,
    encoder_id: str,
    project_id: int | None,
    roots: list[Path] | None = None,
) -> None:
    """A 422 naming the problem unless ``encoder_id`` can start a fine-tune of the project.
    An ``olmoearth:NAME`` is looked up in ``roots`` when given (the worker, which knows the
    settings, always resolves it: ``published_checkpoint``)."""
    kind, value = parse_encoder(encoder_id)
    if kind == "olmoearth":
        if roots is not None:
            published_checkpoint(str(value), roots)
        return
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


def apply_encoder(
    cfg: dict, encoder_id: str, *, model_dir: str | None = None, checkpoint: str | None = None
) -> None:
    """Point the fine-tune config's backbone at ``encoder_id`` (in place): a preset's named
    size, the exported encoder at ``model_dir`` (``backbone.pretrained``), or the published
    checkpoint directory ``checkpoint`` (backbone ``olmoearth``; its ``extra_inputs`` are
    kept). How the backbone is trained (``freeze``...) stays as the config says."""
    from earthplat.train.finetune import set_dotted

    kind, value = parse_encoder(encoder_id)
    init = (cfg.get("model") or {}).get("init_args", cfg.get("model") or {})
    old = dict(init.get("backbone") or {})
    backbone: dict[str, Any] = {"name": "earthplat"}
    backbone.update({k: old[k] for k in _SCHEDULE_KEYS if k in old})
    if kind == "olmoearth":
        if not checkpoint:
            raise InvalidInputError(f"published checkpoint {value!r} has no directory")
        backbone.update(name="olmoearth", checkpoint=str(checkpoint))
        if old.get("extra_inputs"):
            backbone["extra_inputs"] = list(old["extra_inputs"])
    elif kind == "preset":
        backbone["encoder"] = {"preset": value}
    else:
        if not model_dir:
            raise InvalidInputError(f"model {value} has no exported model to start from")
        backbone["pretrained"] = model_dir
    set_dotted(cfg, "model.backbone", backbone)


def encoder_of(cfg: dict, *, parent_id: int | None = None) -> str | None:
    """The encoder id a fine-tune config starts from: ``model:ID`` (``parent_id``, the model
    whose export is ``backbone.pretrained``), ``preset:NAME``, ``olmoearth:NAME`` (a
    published checkpoint: its directory's name, or its ``hf://`` id), ``timm:MODEL``,
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
    if backbone.get("name") == "olmoearth":
        source = str(backbone.get("checkpoint") or "")
        return f"olmoearth:{source if source.startswith('hf://') else Path(source).name}"
    if backbone.get("pretrained"):
        return f"model:{parent_id}" if parent_id else f"pretrained:{backbone['pretrained']}"
    preset = (backbone.get("encoder") or {}).get("preset")
    return f"preset:{preset}" if preset else "custom"

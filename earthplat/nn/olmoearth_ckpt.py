"""Published OlmoEarth checkpoints in and out of our encoder.

The published layout (Hugging Face ``allenai/OlmoEarth-v1-Nano`` ... ``-v1_3-Base``) is a
directory with ``config.json`` (the whole training config; the model under ``"model"``, a
``LatentMIMConfig`` with an ``encoder_config``) and ``weights.pth`` (the state dict of the whole
model; the encoder's tensors under ``encoder.``). The facts below (config field names, tensor
names and layouts, which modalities the family encodes, how missing bands were filled) were read
from ``olmoearth-pretrain-minimal`` 0.1.5; the code is ours and never imports that package.

What our encoder expresses: absolute sin-cos encodings, conv or linear patch projections with an
optional per-pixel MLP (v1.1), any band grouping per modality (``tokenization_config``), one
projection layer. Anything else (RoPE of v1.2+, register tokens, QK norm, the v1.3 attention
pooler, post-projection MLPs, modalities without a home in the sensor registry) is refused by
name before any tensor is read: a checkpoint loads completely or not at all.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from earthplat.errors import EarthplatError
from earthplat.nn.encoder import Encoder, EncoderConfig

CONFIG, WEIGHTS = "config.json", "weights.pth"
HF_PREFIX = "hf://"

REFERENCE_NAMES = {
    "sentinel2_l2a": "sentinel2_l2a",
    "sentinel1": "sentinel1",
    "landsat": "landsat",
    "worldcover": "worldcover",
    "srtm": "dem",
    "openstreetmap_raster": "openstreetmap",
    "wri_canopy_height_map": "canopy_height",
    "cdl": "cdl",
    "worldcereal": "worldcereal",
}
"""OlmoEarth modality name -> our registry's. Their default band sets equal the registry's
(checked against the reference's constants in the parity tests)."""
OUR_NAMES = {ours: theirs for theirs, ours in REFERENCE_NAMES.items()}

FAMILY_ENCODER_INPUTS = ("sentinel2_l2a", "sentinel1", "landsat")
"""What every published release (v1 to v1.3) was trained to encode; the rest of its modalities
were decode-only targets. Used when a config does not record ``only_decode_modalities``."""

_UNSUPPORTED = {
    "num_register_tokens": (0, "register tokens"),
    "qk_norm": (False, "QK normalisation"),
    "attention_pooler_config": (None, "the attention pooler (v1.3)"),
    "post_proj_hidden_sizes": (None, "an MLP after the patch projection"),
    "num_projection_layers": (1, "a projection head of more than one layer"),
}


# --- reading ---------------------------------------------------------------------------------
def resolve_published(path: str | Path) -> Path:
    """A local directory, or ``hf://owner/name`` through huggingface_hub's cache. Offline
    (``HF_HUB_OFFLINE=1``, or no network) a repo that is not cached fails at once, saying
    where to put the two files."""
    text = str(path)
    if not text.startswith(HF_PREFIX):
        return Path(path)
    repo = text[len(HF_PREFIX) :].strip("/")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as e:  # pragma: no cover - huggingface_hub is a dependency
        raise EarthplatError("hf:// paths need huggingface_hub: pip install huggingface_hub") from e
    import os

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    try:
        files = [
            hf_hub_download(repo_id=repo, filename=name, local_files_only=offline)
            for name in (CONFIG, WEIGHTS)
        ]
    except (LocalEntryNotFoundError, OSError) as e:
        from huggingface_hub.constants import HF_HUB_CACHE

        raise EarthplatError(
            f"{text}: {CONFIG} and {WEIGHTS} are not in the Hugging Face cache ({HF_HUB_CACHE}) "
            "and could not be downloaded. Download them where there is network "
            f"(huggingface-cli download {repo} {CONFIG} {WEIGHTS}) and copy the cache there, "
            "or put both files in a directory and pass that directory instead"
        ) from e
    return Path(files[0]).parent


def is_published(path: str | Path) -> bool:
    """Whether ``path`` is an ``hf://`` id or a directory in the published layout."""
    if str(path).startswith(HF_PREFIX):
        return True
    root = Path(path)
    return (root / CONFIG).is_file() and (root / WEIGHTS).is_file()


def read_config(root: Path) -> dict:
    cfg = json.loads((root / CONFIG).read_text())
    if "model" not in cfg or "encoder_config" not in cfg["model"]:
        raise EarthplatError(
            f"{root / CONFIG} is not an OlmoEarth training config (no model.encoder_config)"
        )
    return cfg


def encoder_config_from_published(cfg: dict, extra_inputs: tuple[str, ...] = ()) -> EncoderConfig:
    """Our ``EncoderConfig`` for a published training config, or ``EarthplatError`` naming
    what ours cannot express."""
    enc = cfg["model"]["encoder_config"]
    problems = []
    position = enc.get("spatial_pos_encoding") or enc.get("position_encoding", "absolute")
    if position != "absolute":
        problems.append(f"position_encoding={position!r} (only 'absolute' sin-cos encodings)")
    for key, (default, what) in _UNSUPPORTED.items():
        value = enc.get(key, default)
        if value not in (default, [], None):
            problems.append(f"{key}={value!r} ({what})")
    names = list(enc["supported_modality_names"])
    homeless = [n for n in names if n not in REFERENCE_NAMES]
    if homeless:
        problems.append(f"modalities {', '.join(homeless)} (no home in the sensor registry)")
    d = int(enc["embedding_size"])
    if d % 16:
        problems.append(f"embedding_size={d} (needs a multiple of 16)")
    if problems:
        raise EarthplatError(
            "this OlmoEarth checkpoint uses what earthplat's encoder cannot run exactly: "
            + "; ".join(problems)
            + ". Use a release with absolute encodings (v1, v1.1) or the reference package"
        )
    overrides = ((enc.get("tokenization_config") or {}).get("overrides")) or {}
    band_sets = {
        REFERENCE_NAMES[name]: tuple(tuple(g) for g in spec["band_groups"])
        for name, spec in overrides.items()
        if name in names
    }
    hidden = tuple(enc.get("patch_embed_hidden_sizes") or ())
    return EncoderConfig(
        embed_dim=d,
        depth=int(enc["depth"]),
        num_heads=int(enc["num_heads"]),
        mlp_ratio=float(enc.get("mlp_ratio", 1.0)),
        max_patch_size=int(enc.get("max_patch_size", 8)),
        drop_path=float(enc.get("drop_path", 0.0)),
        modalities=tuple(REFERENCE_NAMES[n] for n in names),
        max_time_steps=int(enc.get("max_sequence_length", 12)),
        band_sets=band_sets or None,
        patch_resize="image",
        pixel_hidden=hidden,
        encodings="olmoearth",
        project_tokens=False,
        encoder_inputs=encoder_inputs_of(cfg),
        missing_bands="zero" if float(enc.get("band_dropout_rate", 0.0)) > 0 else "nearest",
        token_presence="top_left",
        extra_inputs=tuple(extra_inputs),
    )


def encoder_inputs_of(cfg: dict) -> tuple[str, ...]:
    """Our names of the modalities the encoder was trained on: supported minus the config's
    ``only_decode_modalities``, else the family's (``FAMILY_ENCODER_INPUTS``)."""
    names = cfg["model"]["encoder_config"]["supported_modality_names"]
    decode_only = None
    for section in ("train_module", "data_loader"):
        strategy = (cfg.get(section) or {}).get("masking_config", {}).get("strategy_config", {})
        if strategy.get("only_decode_modalities") is not None:
            decode_only = strategy["only_decode_modalities"]
            break
    if decode_only is None:
        chosen = [n for n in names if n in FAMILY_ENCODER_INPUTS]
    else:
        chosen = [n for n in names if n not in decode_only]
    return tuple(REFERENCE_NAMES[n] for n in chosen if n in REFERENCE_NAMES)


def state_from_published(state: dict[str, torch.Tensor], encoder: Encoder) -> dict:
    """The reference's ``encoder.*`` tensors as our encoder's state dict; every one is used
    and every one of ours is filled, or ``EarthplatError`` says which are not."""
    src = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    if not src:
        raise EarthplatError("weights.pth holds no encoder.* tensors")
    used: set[str] = {"composite_encodings.pos_embed"}  # a legacy table the reference drops
    out: dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in src:
            raise EarthplatError(f"weights.pth lacks encoder.{key}, which the config implies")
        used.add(key)
        return src[key]

    m = encoder.config.max_patch_size
    embeds = []
    for name, s, _ in encoder.bandsets:
        theirs = OUR_NAMES[name]
        base = f"patch_embeddings.per_modality_embeddings.{theirs}.{theirs}__{s}."
        ours = encoder.patch_embed[f"{name}__{s}"]
        w = take(base + "proj.weight")
        d = ours.weight.shape[0]
        if w.ndim == 2:  # linear over (p1 p2 c) -> conv [D, C, p, p]
            w = w.reshape(d, m, m, -1).permute(0, 3, 1, 2)
        if tuple(w.shape) != tuple(ours.weight.shape):
            raise EarthplatError(
                f"encoder.{base}proj.weight has shape {tuple(w.shape)}; the config implies "
                f"{tuple(ours.weight.shape)}"
            )
        out[f"patch_embed.{name}__{s}.weight"] = w.contiguous()
        out[f"patch_embed.{name}__{s}.bias"] = take(base + "proj.bias")
        if ours.pixel_mlp is not None:
            for i, layer in enumerate(ours.pixel_mlp):
                if isinstance(layer, torch.nn.Linear):
                    for p in ("weight", "bias"):
                        out[f"patch_embed.{name}__{s}.pixel_mlp.{i}.{p}"] = take(
                            f"{base}pixel_proj.{i}.{p}"
                        )
    for name in encoder.config.modalities:
        table = take(f"composite_encodings.per_modality_channel_embeddings.{OUR_NAMES[name]}")
        embeds.append(table)
    out["bandset_embed"] = torch.cat(embeds)
    month = take("composite_encodings.month_embed.weight")
    if not torch.allclose(month, olmoearth_month_table(month.shape[1]), atol=1e-6):
        raise EarthplatError("encoder month table differs from the sin-cos table it must hold")
    for i in range(encoder.config.depth):
        b = f"blocks.{i}."
        for part in ("norm1", "norm2", "attn.q", "attn.proj", "mlp.fc1", "mlp.fc2"):
            for p in ("weight", "bias"):
                out[f"{b}{part}.{p}"] = take(f"{b}{part}.{p}")
        for p in ("weight", "bias"):
            out[f"{b}attn.kv.{p}"] = torch.cat([take(f"{b}attn.k.{p}"), take(f"{b}attn.v.{p}")])
    for p in ("weight", "bias"):
        out[f"norm.{p}"] = take(f"norm.{p}")
        out[f"project.{p}"] = take(f"project_and_aggregate.projection.0.{p}")
    left = sorted(set(src) - used)
    if left:
        raise EarthplatError(
            "weights.pth has encoder tensors earthplat cannot place: "
            + ", ".join(f"encoder.{k}" for k in left[:5])
            + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        )
    return out


def olmoearth_month_table(dim: int) -> torch.Tensor:
    """[12, dim]: the frozen month table (sines, then cosines, of month * 2 pi / 12)."""
    angles = torch.arange(12, dtype=torch.float32) / (12 / (2 * math.pi))
    half = dim // 2
    return torch.cat(
        [angles.sin()[:, None].expand(12, half), angles.cos()[:, None].expand(12, half)], 1
    )


def load_published(
    path: str | Path, map_location: str | torch.device = "cpu", extra_inputs: tuple[str, ...] = ()
) -> Encoder:
    """Our encoder with a published checkpoint's weights (a directory or ``hf://id``)."""
    root = resolve_published(path)
    if not is_published(root):
        raise EarthplatError(f"{root} holds no {CONFIG} + {WEIGHTS} (the published layout)")
    config = encoder_config_from_published(read_config(root), extra_inputs)
    encoder = config.build()
    state = torch.load(root / WEIGHTS, map_location="cpu", weights_only=True)
    encoder.load_state_dict(state_from_published(state, encoder), strict=True)
    return encoder.to(map_location).eval()


def release_of(enc: dict) -> str:
    """The release an encoder config belongs to, from what it uses: the v1.3 attention pooler,
    the RoPE of v1.2, band-set overrides or per-pixel MLPs of v1.1, else v1."""
    if enc.get("attention_pooler_config") is not None:
        return "v1.3"
    if (enc.get("spatial_pos_encoding") or enc.get("position_encoding", "absolute")) != "absolute":
        return "v1.2"
    overrides = (enc.get("tokenization_config") or {}).get("overrides") or {}
    return "v1.1" if overrides or enc.get("patch_embed_hidden_sizes") else "v1"


def describe_published(path: str | Path) -> dict[str, Any]:
    """Name, version, modalities and size of a published checkpoint, from its config and file
    sizes only (no tensor is read)."""
    root = Path(path)
    cfg = read_config(root)
    enc = cfg["model"]["encoder_config"]
    return {
        "name": root.name,
        "version": release_of(enc),
        "modalities": list(encoder_inputs_of(cfg)),
        "embed_dim": int(enc["embedding_size"]),
        "depth": int(enc["depth"]),
        "num_heads": int(enc["num_heads"]),
        "size_bytes": (root / WEIGHTS).stat().st_size,
    }


def inspect_published(path: str | Path) -> dict[str, Any]:
    """``describe_published`` plus ``params``, after checking that the checkpoint loads: the
    config is one our encoder expresses and every tensor of ``weights.pth`` has its place and
    shape (``EarthplatError`` otherwise). Cheap even for Large: the weights are memory-mapped
    (no tensor data is read) and only a one-block encoder is built, whose block shapes stand
    for every block (they are identical)."""
    from dataclasses import replace

    root = Path(path)
    for name in (CONFIG, WEIGHTS):
        if not (root / name).is_file():
            raise EarthplatError(
                f"{root} holds no {name} (the published layout is {CONFIG} + {WEIGHTS})"
            )
    facts = describe_published(root)
    config = encoder_config_from_published(read_config(root))
    small = replace(config, depth=1).build()
    small.config = config  # state_from_published walks every block of the real depth
    expected = {}
    for key, value in small.state_dict().items():
        if key.startswith("blocks.0."):
            for i in range(config.depth):
                expected[f"blocks.{i}." + key[len("blocks.0.") :]] = tuple(value.shape)
        else:
            expected[key] = tuple(value.shape)
    try:
        state = torch.load(root / WEIGHTS, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a legacy (non-zip) file cannot be memory-mapped
        state = torch.load(root / WEIGHTS, map_location="cpu", weights_only=True)
    mapped = state_from_published(state, small)
    wrong = [
        f"{k} {tuple(v.shape)} (the config implies {expected[k]})"
        for k, v in mapped.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    missing = sorted(set(expected) - set(mapped))
    if wrong or missing:
        raise EarthplatError(
            f"{root / WEIGHTS} does not match its {CONFIG}: "
            + "; ".join(wrong[:3] + [f"no tensor for {k}" for k in missing[:3]])
        )
    return {**facts, "params": sum(math.prod(shape) for shape in expected.values())}


# --- writing ---------------------------------------------------------------------------------
_CLASSES = {
    "model": "olmoearth_pretrain.nn.latent_mim.LatentMIMConfig",
    "encoder": "olmoearth_pretrain.nn.flexi_vit.EncoderConfig",
    "decoder": "olmoearth_pretrain.nn.flexi_vit.PredictorConfig",
    "tokenization": "olmoearth_pretrain.nn.tokenization.TokenizationConfig",
    "group": "olmoearth_pretrain.nn.tokenization.ModalityTokenization",
}


def published_config(encoder: Encoder) -> dict:
    """The training config (``{"model": ...}``) the reference rebuilds this encoder from. Our
    predictor is not part of an encoder export: the decoder it names is a depth-0 placeholder
    (its tensors in ``weights.pth`` are untrained) so that the reference's strict loader
    accepts the file; the target is the frozen projection only."""
    cfg = encoder.config
    if cfg.encodings != "olmoearth" or cfg.patch_resize != "image" or cfg.project_tokens:
        raise EarthplatError(
            "only an encoder with OlmoEarth's conventions (encodings='olmoearth', "
            "patch_resize='image', project_tokens=False; e.g. one loaded from a published "
            "checkpoint and fine-tuned) has an equal in the published layout; an encoder "
            "pretrained with earthplat's conventions computes different tokens"
        )
    names = [OUR_NAMES[m] for m in cfg.modalities]
    groups = {
        OUR_NAMES[m]: {"_CLASS_": _CLASSES["group"], "band_groups": [list(g) for g in sets]}
        for m, sets in (cfg.band_sets or {}).items()
    }
    tokenization = {"_CLASS_": _CLASSES["tokenization"], "overrides": groups}
    encoder_config = {
        "_CLASS_": _CLASSES["encoder"],
        "supported_modality_names": names,
        "embedding_size": cfg.embed_dim,
        "max_patch_size": cfg.max_patch_size,
        "min_patch_size": 1,
        "num_heads": cfg.num_heads,
        "mlp_ratio": cfg.mlp_ratio,
        "depth": cfg.depth,
        "drop_path": cfg.drop_path,
        "max_sequence_length": cfg.max_time_steps,
        "use_linear_patch_embed": bool(cfg.pixel_hidden),
        "patch_embed_hidden_sizes": list(cfg.pixel_hidden) or None,
        "band_dropout_rate": 0.2 if cfg.missing_bands == "zero" else 0.0,
        "tokenization_config": tokenization,
        "position_encoding": "absolute",
    }
    decoder_config = {
        "_CLASS_": _CLASSES["decoder"],
        "supported_modality_names": names,
        "encoder_embedding_size": cfg.embed_dim,
        "decoder_embedding_size": cfg.embed_dim,
        "depth": 0,
        "mlp_ratio": cfg.mlp_ratio,
        "num_heads": cfg.num_heads,
        "max_sequence_length": cfg.max_time_steps,
        "tokenization_config": tokenization,
    }
    decode_only = [OUR_NAMES[m] for m in cfg.modalities if m not in encoder.trained_inputs()]
    return {
        "model": {
            "_CLASS_": _CLASSES["model"],
            "encoder_config": encoder_config,
            "decoder_config": decoder_config,
            "projection_only_target": True,
        },
        "train_module": {
            "masking_config": {"strategy_config": {"only_decode_modalities": decode_only}}
        },
    }


def published_state(encoder: Encoder, linear: bool) -> dict[str, torch.Tensor]:
    """Our encoder's tensors under the reference's names (the inverse of
    ``state_from_published``), plus the placeholder decoder and the frozen target."""
    ours = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    out: dict[str, torch.Tensor] = {}
    cfg = encoder.config
    q = cfg.embed_dim // 4
    embeds = {}
    start = 0
    for name in cfg.modalities:
        n = len(cfg.modality_band_sets(name))
        embeds[OUR_NAMES[name]] = ours["bandset_embed"][start : start + n].clone()
        start += n
    for name, s, _ in encoder.bandsets:
        theirs = OUR_NAMES[name]
        base = f"patch_embeddings.per_modality_embeddings.{theirs}.{theirs}__{s}."
        w = ours[f"patch_embed.{name}__{s}.weight"]
        if linear:
            w = w.permute(0, 2, 3, 1).reshape(w.shape[0], -1)
        out[base + "proj.weight"] = w.contiguous()
        out[base + "proj.bias"] = ours[f"patch_embed.{name}__{s}.bias"]
        for key, value in ours.items():
            prefix = f"patch_embed.{name}__{s}.pixel_mlp."
            if key.startswith(prefix):
                out[base + "pixel_proj." + key[len(prefix) :]] = value
    for name, table in embeds.items():
        out[f"composite_encodings.per_modality_channel_embeddings.{name}"] = table
    out["composite_encodings.month_embed.weight"] = olmoearth_month_table(q)
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        for part in ("norm1", "norm2", "attn.q", "attn.proj", "mlp.fc1", "mlp.fc2"):
            for p in ("weight", "bias"):
                out[f"{b}{part}.{p}"] = ours[f"{b}{part}.{p}"]
        for p in ("weight", "bias"):
            k, v = ours[f"{b}attn.kv.{p}"].chunk(2)
            out[f"{b}attn.k.{p}"], out[f"{b}attn.v.{p}"] = k.contiguous(), v.contiguous()
    for p in ("weight", "bias"):
        out[f"norm.{p}"] = ours[f"norm.{p}"]
        out[f"project_and_aggregate.projection.0.{p}"] = ours[f"project.{p}"]
    state = {f"encoder.{k}": v for k, v in out.items()}
    for k, v in out.items():  # the frozen target: the patch projections only
        if k.startswith("patch_embeddings."):
            state[f"target_encoder.{k}"] = v.clone()
    d = cfg.embed_dim
    state.update(  # the depth-0 placeholder decoder (untrained; see published_config)
        {
            "decoder.composite_encodings.month_embed.weight": olmoearth_month_table(q),
            "decoder.encoder_to_decoder_embed.weight": torch.eye(d),
            "decoder.encoder_to_decoder_embed.bias": torch.zeros(d),
            "decoder.to_output_embed.weight": torch.eye(d),
            "decoder.to_output_embed.bias": torch.zeros(d),
            "decoder.input_norm.weight": torch.ones(d),
            "decoder.input_norm.bias": torch.zeros(d),
            "decoder.norm.weight": torch.ones(d),
            "decoder.norm.bias": torch.zeros(d),
            "decoder.mask_token": torch.zeros(d),
            **{
                f"decoder.composite_encodings.per_modality_channel_embeddings.{n}": t * 0
                for n, t in embeds.items()
            },
        }
    )
    return state


def export_published(encoder: Encoder, out_dir: str | Path, linear: bool = False) -> Path:
    """Write ``config.json`` + ``weights.pth`` in the published layout (loadable by
    ``olmoearth_pretrain_minimal.load_model_from_path``). ``linear`` stores the patch
    projections as ``nn.Linear`` (v1.1+) instead of conv kernels (v1); with a per-pixel MLP
    they are always linear, as the reference requires."""
    linear = linear or bool(encoder.config.pixel_hidden)
    cfg = published_config(encoder)
    cfg["model"]["encoder_config"]["use_linear_patch_embed"] = linear
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG).write_text(json.dumps(cfg, indent=2))
    torch.save(published_state(encoder, linear), out / WEIGHTS)
    return out

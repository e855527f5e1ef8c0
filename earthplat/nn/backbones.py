"""Backbones for task models: what turns a batch of modalities into feature maps.

Reading order: output -> earthplat encoder backbone -> timm CNN backbone -> registry.

A backbone takes ``dict[str, ModalityInput]`` (inputs padded to a multiple of
``size_multiple`` by the task model) and returns ``BackboneOutput``: feature maps finest first,
their strides in input pixels, and a pooled vector. Backbones are built from the plain dict
stored in ``TaskSpec.backbone`` (``{"name": ..., ...kwargs}``), so an exported task model
rebuilds without the training stack. Pretrained weights (``pretrained=``) are loaded only when
a model is first built for training; a saved task model carries its own weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from earthplat.errors import EarthplatError
from earthplat.nn.encoder import Encoder, EncoderConfig, ModalityInput
from earthplat.sensors import get_modality

FREEZE_MODES = ("none", "frozen", "warmup")


@dataclass
class BackboneOutput:
    features: list[torch.Tensor]
    """Feature maps, finest first, each [B, C_i, h_i, w_i]."""
    strides: list[float]
    """Input pixels per feature cell of each map."""
    pooled: torch.Tensor
    """[B, D] one vector per sample (window tasks)."""
    pixels: torch.Tensor | None = None
    """[B, C, H, W] the input bands themselves, stacked as ``stack_inputs`` does; set by the
    task model only for heads that read pixels (``wants_pixels``)."""


class Backbone(nn.Module):
    """Base class: subclasses set ``channels``, ``strides``, ``pooled_dim``, ``size_multiple``."""

    channels: list[int]
    strides: list[float]
    pooled_dim: int
    size_multiple: int = 1
    """Inputs are padded to a multiple of this many pixels before ``forward``."""

    def forward(self, inputs: dict[str, ModalityInput]) -> BackboneOutput:  # pragma: no cover
        raise NotImplementedError


# --- our encoder ------------------------------------------------------------------------------
def resolve_encoder_config(cfg: dict) -> tuple[EncoderConfig, Encoder | None]:
    """The encoder config of a backbone dict and, when ``pretrained`` names an encoder export
    dir or a pretraining checkpoint, the pretrained encoder itself.

    ``encoder`` is a dict of ``EncoderConfig`` fields, optionally with ``preset`` (pico, nano,
    ...) whose named size the other fields override."""
    pretrained = cfg.get("pretrained")
    if pretrained:
        encoder = load_pretrained_encoder(pretrained)
        return encoder.config, encoder
    fields = dict(cfg.get("encoder") or {})
    preset = fields.pop("preset", None)
    if "modalities" in fields:
        fields["modalities"] = tuple(fields["modalities"])
    if preset is None:
        return EncoderConfig(**fields), None
    from earthplat.nn.registry import ENCODER_PRESETS

    if preset not in ENCODER_PRESETS:
        raise EarthplatError(f"unknown encoder preset {preset!r}; known: {list(ENCODER_PRESETS)}")
    return ENCODER_PRESETS[preset](**fields), None


def load_pretrained_encoder(path: str | Path) -> Encoder:
    """An encoder export dir (``earthplat export``), the encoder of an exported task model
    (``export_task_model``: a fine-tuned model starts another fine-tune), or a pretraining
    ``.ckpt``."""
    from earthplat.nn.export import encoder_from_checkpoint, load_encoder

    p = Path(path)
    if p.is_dir() and (p / "task.json").exists():
        from earthplat.nn.task_model import load_task_model  # it imports this module

        backbone = load_task_model(p).backbone
        if not isinstance(backbone, EarthplatBackbone):
            raise EarthplatError(
                f"{p} is a task model with a {type(backbone).__name__}, not an earthplat "
                "encoder; start from an earthplat model, an encoder export or a preset"
            )
        return backbone.encoder.train()
    if p.is_dir():
        return load_encoder(p)
    if p.suffix == ".ckpt" and p.exists():
        return encoder_from_checkpoint(p)
    raise EarthplatError(
        f"pretrained encoder {p} not found: give an encoder export dir, an exported task model "
        "or a pretrain .ckpt"
    )


class EarthplatBackbone(Backbone):
    """Our encoder; one feature map at stride ``patch_size`` (mean over time and band sets)."""

    def __init__(
        self,
        encoder: Encoder,
        patch_size: int = 4,
        gsd_m: float = 10.0,
        modality: str | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= patch_size <= encoder.config.max_patch_size:
            raise EarthplatError(
                f"patch_size {patch_size} is outside 1..{encoder.config.max_patch_size} "
                "(the encoder's max_patch_size)"
            )
        self.encoder = encoder
        self.patch_size, self.gsd_m, self.modality = patch_size, gsd_m, modality
        self.channels = [encoder.embed_dim]
        self.strides = [float(patch_size)]
        self.pooled_dim = encoder.embed_dim
        self.size_multiple = patch_size

    def forward(self, inputs: dict[str, ModalityInput]) -> BackboneOutput:
        out = self.encoder(inputs, patch_size=self.patch_size, gsd_m=self.gsd_m)
        return BackboneOutput([out.feature_map(self.modality)], self.strides, out.pooled)


def build_earthplat(
    cfg: dict, inputs: dict[str, list[str]], patch_size: int, gsd_m: float, load_pretrained: bool
) -> EarthplatBackbone:
    """Our encoder (its modalities default to the task's inputs)."""
    cfg = cfg if load_pretrained else _no_weights(cfg)
    if not cfg.get("pretrained") and "modalities" not in (cfg.get("encoder") or {}):
        cfg = {**cfg, "encoder": {**(cfg.get("encoder") or {}), "modalities": list(inputs)}}
    config, pretrained = resolve_encoder_config(cfg)
    encoder = pretrained if pretrained is not None else config.build()
    return EarthplatBackbone(encoder, patch_size, gsd_m, cfg.get("modality"))


def _no_weights(cfg: dict) -> dict:
    out = dict(cfg)
    if out.get("pretrained"):
        if "encoder" not in out:
            raise EarthplatError("a backbone with pretrained= needs its resolved encoder config")
        out["pretrained"] = None
    return out


# --- timm CNNs ---------------------------------------------------------------------------------
def stack_inputs(
    inputs: dict[str, ModalityInput], wanted: dict[str, list[str]], num_periods: int
) -> torch.Tensor:
    """[B, sum(T*C), H, W]: the ``wanted`` bands of each modality, its last ``num_periods``
    periods (zeros before a short series), invalid pixels zeroed."""
    parts = []
    for name, bands in wanted.items():
        if name not in inputs:
            raise EarthplatError(f"the batch has no {name}; this model reads {list(wanted)}")
        inp = inputs[name]
        mod = get_modality(name)
        have = [mod.band(b).name for b in (inp.bands or mod.band_names)]
        missing = [b for b in bands if mod.band(b).name not in have]
        if missing:
            raise EarthplatError(f"{name} lacks bands {missing} the model was trained on")
        idx = [have.index(mod.band(b).name) for b in bands]
        x = inp.data[:, :, idx] * inp.valid[:, :, None].to(inp.data.dtype)  # [B, T, C, H, W]
        x = x[:, -num_periods:]
        if x.shape[1] < num_periods:
            pad = x.new_zeros(x.shape[0], num_periods - x.shape[1], *x.shape[2:])
            x = torch.cat([pad, x], dim=1)
        parts.append(x.flatten(1, 2))
    return torch.cat(parts, dim=1)


class TimmBackbone(Backbone):
    """A timm CNN over the channels of ``inputs`` stacked as (modality, period, band)."""

    def __init__(
        self, model: str, inputs: dict[str, list[str]], num_periods: int = 1, **timm_kwargs
    ) -> None:
        super().__init__()
        import timm

        self.inputs = {get_modality(k).name: list(v) for k, v in inputs.items()}
        self.num_periods = num_periods
        in_chans = sum(len(b) for b in self.inputs.values()) * num_periods
        self.net = timm.create_model(
            model, pretrained=False, in_chans=in_chans, features_only=True, **timm_kwargs
        )
        info = self.net.feature_info
        self.channels = list(info.channels())
        self.strides = [float(r) for r in info.reduction()]
        self.pooled_dim = self.channels[-1]
        self.size_multiple = int(max(self.strides))

    def stack(self, inputs: dict[str, ModalityInput]) -> torch.Tensor:
        return stack_inputs(inputs, self.inputs, self.num_periods)

    def forward(self, inputs: dict[str, ModalityInput]) -> BackboneOutput:
        feats = self.net(self.stack(inputs))
        return BackboneOutput(list(feats), self.strides, feats[-1].mean(dim=(2, 3)))


# --- registry ----------------------------------------------------------------------------------
BackboneBuilder = Callable[..., Backbone]


def _earthplat(cfg: dict, spec, load_pretrained: bool) -> Backbone:
    return build_earthplat(cfg, spec.inputs, spec.patch_size, spec.gsd_m, load_pretrained)


def _olmoearth(cfg: dict, spec, load_pretrained: bool) -> Backbone:
    """Published OlmoEarth weights: ``checkpoint`` is a directory in the published layout
    (``config.json`` + ``weights.pth``) or ``hf://allenai/OlmoEarth-v1-Base``; ``extra_inputs``
    accepts modalities the weights were not trained to encode. A saved task model rebuilds
    from its resolved ``encoder`` config without the checkpoint."""
    if not load_pretrained and cfg.get("encoder"):
        config, _ = resolve_encoder_config({"encoder": cfg["encoder"]})
        encoder = config.build()
    else:
        checkpoint = cfg.get("checkpoint")
        if not checkpoint:
            raise EarthplatError(
                "backbone olmoearth needs checkpoint: a directory with config.json and "
                "weights.pth (the published layout) or hf://allenai/OlmoEarth-v1-Base"
            )
        from earthplat.nn.export import load_encoder

        encoder = load_encoder(checkpoint, extra_inputs=tuple(cfg.get("extra_inputs") or ()))
        encoder.train()
    return EarthplatBackbone(encoder, spec.patch_size, spec.gsd_m, cfg.get("modality"))


def _timm(cfg: dict, spec, load_pretrained: bool) -> Backbone:
    if cfg.get("pretrained"):
        raise EarthplatError(
            "timm backbones start from random weights here (no downloads); drop "
            "backbone.pretrained or use the earthplat backbone"
        )
    skip = ("name", "model", "pretrained", "encoder", *_SCHEDULE_KEYS)
    kwargs = {k: v for k, v in cfg.items() if k not in skip}
    return TimmBackbone(cfg.get("model", "resnet18"), spec.inputs, spec.num_periods, **kwargs)


_SCHEDULE_KEYS = ("freeze", "unfreeze_fraction")
BACKBONES: dict[str, BackboneBuilder] = {
    "earthplat": _earthplat,
    "olmoearth": _olmoearth,
    "timm": _timm,
}
"""Backbone name -> builder(backbone dict, TaskSpec, load_pretrained)."""


def build_backbone(spec, load_pretrained: bool = False) -> Backbone:
    """The backbone named by ``spec.backbone["name"]``."""
    cfg = dict(spec.backbone)
    name = cfg.get("name", "earthplat")
    if name not in BACKBONES:
        raise EarthplatError(f"unknown backbone {name!r}; registered: {', '.join(BACKBONES)}")
    freeze = cfg.get("freeze", "none")
    if freeze not in FREEZE_MODES:
        raise EarthplatError(f"backbone freeze {freeze!r} is not one of {FREEZE_MODES}")
    return BACKBONES[name](cfg, spec, load_pretrained)


def resolved_backbone_dict(cfg: dict, backbone: Backbone) -> dict:
    """``cfg`` with the encoder config written out (so a saved spec rebuilds without the
    pretrained source)."""
    out = dict(cfg)
    if isinstance(backbone, EarthplatBackbone):
        enc = asdict(backbone.encoder.config)
        enc["modalities"] = list(enc["modalities"])
        out["encoder"] = enc
    return out

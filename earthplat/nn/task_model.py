"""Task models (backbone + head) with their spec, saved and loaded without Lightning.

Reading order: ``TaskSpec`` -> ``TaskModel`` -> export -> load.

``TaskSpec`` is everything needed to rebuild a model and feed it (modalities and bands, patch
and chip size, periods, class schema); it is stored as ``task.json`` beside
``model.safetensors`` and in the hparams of ``earthplat finetune`` checkpoints. ``load_task_model``
accepts an export dir, a finetune ``.ckpt`` or run dir, and an encoder export or pretraining
checkpoint (an "embedding" model with an identity head). It never imports Lightning.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from earthplat.errors import EarthplatError
from earthplat.nn.backbones import BackboneOutput, build_backbone, stack_inputs
from earthplat.nn.encoder import ModalityInput
from earthplat.nn.heads import build_head, decode_centernet
from earthplat.sensors import get_modality
from earthplat.tasks import TASKS

WEIGHTS, SPEC = "model.safetensors", "task.json"


@dataclass
class TaskSpec:
    """What a task model is, what it reads and how it was trained (Contract C)."""

    task: str
    """A task of the registry (``earthplat.tasks.TASKS``)."""
    inputs: dict[str, list[str]]
    """Modality -> band names, in the order the model expects."""
    num_outputs: int
    """Classes / regression targets / embedding dim."""
    classes: list[dict] = field(default_factory=list)
    """Class schema ``[{"value", "label", "color"}]``; index i = position (empty for
    regression and embedding)."""
    patch_size: int = 4
    """Encoder patch size in pixels (1 for timm CNNs)."""
    chip_size: int = 64
    """Training window size in pixels; inference tiles at this size."""
    num_periods: int = 1
    """Time steps the model was trained with."""
    gsd_m: float = 10.0
    """Ground sample distance of the inputs in metres."""
    backbone: dict = field(default_factory=lambda: {"name": "earthplat"})
    """``{"name": "earthplat", "encoder": {...EncoderConfig fields}, "freeze": ...}`` or
    ``{"name": "timm", "model": "resnet18"}``."""
    head: dict = field(default_factory=lambda: {"name": "linear"})
    """``{"name": "linear"|"mlp"|"upernet"|"centernet"|"identity", ...kwargs}``."""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise EarthplatError(f"unknown task {self.task!r}; one of {', '.join(TASKS)}")
        if not self.inputs:
            raise EarthplatError("TaskSpec.inputs is empty: name the modalities and bands")
        self.inputs = {get_modality(k).name: list(v) for k, v in self.inputs.items()}
        if TASKS[self.task].class_task and self.classes and len(self.classes) != self.num_outputs:
            raise EarthplatError(f"{len(self.classes)} classes but num_outputs={self.num_outputs}")
        if self.num_outputs < 1:
            raise EarthplatError("num_outputs must be >= 1")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


class TaskModel(nn.Module):
    """Backbone + head. Inputs are padded (invalid, zero) to the backbone's size multiple;
    dense outputs are cropped back to the input pixels."""

    def __init__(self, spec: TaskSpec, load_pretrained: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = build_backbone(spec, load_pretrained)
        head = dict(spec.head)
        # regression heads predict standardised values; these map them to target units
        self.target_offset = float(head.pop("target_offset", 0.0))
        self.target_scale = float(head.pop("target_scale", 1.0))
        in_pixels = sum(len(b) for b in spec.inputs.values()) * spec.num_periods
        self.head = build_head(head, self.backbone, spec.num_outputs, spec.task, in_pixels)
        self.wants_pixels = bool(getattr(self.head, "wants_pixels", False))

    def pad(self, inputs: dict[str, ModalityInput]) -> tuple[dict[str, ModalityInput], int, int]:
        """Inputs padded right/bottom to the size multiple, and the original H, W."""
        first = next(iter(inputs.values())).data
        h, w = first.shape[-2:]
        m = self.backbone.size_multiple
        ph, pw = math.ceil(h / m) * m - h, math.ceil(w / m) * m - w
        if not (ph or pw):
            return inputs, h, w
        padded = {
            k: ModalityInput(
                F.pad(v.data, (0, pw, 0, ph)),
                F.pad(v.valid, (0, pw, 0, ph)),
                v.timestamps,
                v.bands,
            )
            for k, v in inputs.items()
        }
        return padded, h, w

    def features(self, inputs: dict[str, ModalityInput]) -> BackboneOutput:
        return self.backbone(self.pad(inputs)[0])

    def forward(self, inputs: dict[str, ModalityInput]) -> torch.Tensor | dict:
        padded, h, w = self.pad(inputs)
        hp, wp = next(iter(padded.values())).data.shape[-2:]
        feats = self.backbone(padded)
        if self.wants_pixels:
            feats.pixels = stack_inputs(padded, self.spec.inputs, self.spec.num_periods)
        out = self.head(feats, (hp, wp))
        kind = TASKS[self.spec.task]
        if kind.target in ("value", "value_map"):  # regressions: back to the target's units
            out = out * self.target_scale + self.target_offset
        if kind.output == "detections":  # cells covering the input, not the padding
            s = self.detection_stride
            hh, ww = math.ceil(h / s), math.ceil(w / s)
            return {k: v[..., :hh, :ww] for k, v in out.items()}
        if kind.dense:
            return out[..., :h, :w]  # [B, K, H, W]
        return out

    @property
    def detection_stride(self) -> float:
        return float(getattr(self.head, "stride", 1))

    def decode_detections(
        self,
        out: dict[str, torch.Tensor],
        threshold: float = 0.3,
        max_per_image: int = 100,
        image_size: tuple[int, int] | None = None,
    ) -> list[list[dict]]:
        """Boxes ``dict(x0, y0, x1, y1, label, score)`` in input pixels, per sample."""
        return decode_centernet(out, self.detection_stride, threshold, max_per_image, image_size)

    def set_backbone_trainable(self, trainable: bool) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(trainable)


# --- save / load -----------------------------------------------------------------------------
def export_task_model(
    model: TaskModel, out_dir: str | Path, state: dict[str, torch.Tensor] | None = None
) -> Path:
    """Write ``model.safetensors`` and ``task.json`` into ``out_dir``. ``state``: the weights
    to write instead of ``model.state_dict()`` (e.g. gathered from FSDP2 shards)."""
    from safetensors.torch import save_file

    import earthplat

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = model.state_dict() if state is None else state
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    save_file(state, out / WEIGHTS, metadata={"format": "pt"})
    payload = {"spec": model.spec.to_dict(), "earthplat_version": earthplat.__version__}
    (out / SPEC).write_text(json.dumps(payload, indent=2))
    return out


def load_task_model(path: str | Path, map_location: str | torch.device = "cpu") -> TaskModel:
    """Rebuild a task model from an export dir, a finetune ``.ckpt`` or run dir, or an encoder
    export dir / pretraining checkpoint, or a published OlmoEarth checkpoint (a directory
    with config.json + weights.pth, ``hf://...``, optionally prefixed ``olmoearth:``) -> an
    embedding model."""
    from earthplat.nn import olmoearth_ckpt

    ref = str(path).removeprefix("olmoearth:")
    if olmoearth_ckpt.is_published(ref) or str(path).startswith("olmoearth:"):
        return embedding_model(olmoearth_ckpt.load_published(ref)).to(map_location)
    p = Path(path)
    if p.is_dir() and (p / SPEC).exists():
        from safetensors.torch import load_file

        spec = TaskSpec.from_dict(json.loads((p / SPEC).read_text())["spec"])
        return _with_state(spec, load_file(p / WEIGHTS), p, map_location)
    if p.is_dir() and (p / "encoder.safetensors").exists():
        from earthplat.nn.export import load_encoder

        extra = json.loads((p / "config.json").read_text())
        return embedding_model(load_encoder(p), extra).to(map_location)
    if p.is_dir() and (p / ".metadata").exists():  # torch.distributed.checkpoint layout
        return _from_checkpoint(read_sharded_checkpoint(p), p, map_location)
    if p.is_dir():
        return load_task_model(run_checkpoint(p), map_location)
    if p.is_file():
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
        return _from_checkpoint(ckpt, p, map_location)
    raise EarthplatError(
        f"{p} is not a task model: give an export dir (task.json), a finetune run dir or "
        ".ckpt, or an encoder export dir"
    )


def run_checkpoint(run_dir: Path) -> Path:
    """The checkpoint of a finetune run dir: the best one recorded in ``metrics.json``, else
    ``checkpoints/last.ckpt``."""
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        best = json.loads(metrics.read_text()).get("best_checkpoint")
        if best and (run_dir / best).exists():  # relative to the run dir (or absolute)
            return run_dir / best
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.exists():
        return last
    raise EarthplatError(f"{run_dir} holds no task.json, encoder export or checkpoints/last.ckpt")


def read_sharded_checkpoint(p: Path) -> dict:
    """A Lightning FSDP2 checkpoint directory (torch.distributed.checkpoint shards plus
    ``meta.pt``) as one in-memory checkpoint dict, in a single process."""
    import tempfile

    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    with tempfile.TemporaryDirectory(prefix="earthplat-dcp-") as tmp:
        whole = Path(tmp) / "checkpoint.pt"
        from torch.distributed.checkpoint.api import CheckpointException

        try:
            dcp_to_torch_save(p, whole)
        except (Exception, CheckpointException) as err:  # the latter is a BaseException
            reason = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            raise EarthplatError(
                f"{p} looks like a sharded (FSDP) checkpoint but cannot be read ({reason}); "
                "load the run's exported model dir (RUN_DIR/model) instead"
            ) from err
        ckpt = torch.load(whole, map_location="cpu", weights_only=True)
    meta = p / "meta.pt"
    if meta.exists():
        ckpt.update(torch.load(meta, map_location="cpu", weights_only=True))
    return ckpt


def _from_checkpoint(ckpt: dict, p: Path, map_location) -> TaskModel:
    hp = ckpt.get("hyper_parameters", {})
    if hp.get("task_spec"):
        spec = TaskSpec.from_dict(hp["task_spec"])
        prefix = "model."
        state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        return _with_state(spec, state, p, map_location)
    if "encoder" in hp:
        if p.is_dir():
            raise EarthplatError(
                f"{p} is a sharded pretraining checkpoint; load the encoder export of its run "
                "(earthplat pretrain writes RUN_DIR/encoder) instead"
            )
        from earthplat.nn.export import encoder_from_checkpoint

        return embedding_model(encoder_from_checkpoint(p), hp).to(map_location)
    raise EarthplatError(f"{p} is neither a finetune nor a pretraining checkpoint")


def embedding_model(encoder, extra: dict | None = None) -> TaskModel:
    """An embedding ``TaskModel`` around ``encoder`` (its sensor modalities, all bands)."""
    extra = extra or {}
    cfg = asdict(encoder.config)
    cfg["modalities"] = list(cfg["modalities"])
    inputs = {n: list(get_modality(n).band_names) for n in encoder.trained_inputs()}
    spec = TaskSpec(
        task="embedding",
        inputs=inputs,
        num_outputs=encoder.embed_dim,
        patch_size=int(extra.get("patch_size", 4)),
        chip_size=int(extra.get("chip_size", 64)),
        num_periods=int(extra.get("num_periods", 1)),
        gsd_m=float(extra.get("gsd_m", 10.0)),
        backbone={"name": "earthplat", "encoder": cfg},
        head={"name": "identity"},
    )
    model = TaskModel(spec)
    model.backbone.encoder.load_state_dict(encoder.state_dict())
    return model.eval()


def _with_state(spec: TaskSpec, state: dict, src: Path, map_location) -> TaskModel:
    model = TaskModel(spec)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise EarthplatError(
            f"{src}: weights do not match task.json (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    return model.to(map_location).eval()

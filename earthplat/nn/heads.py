"""Heads for task models: feature maps -> task outputs.

Reading order: simple feature pyramid -> PPM -> UPerNet decoder -> heads -> CenterNet decode ->
registry.

Every head is built as ``HEADS[name](backbone, num_outputs, dense, **kwargs)`` and called as
``head(out: BackboneOutput, size: (H, W))``: window heads return [B, K]; dense heads return
[B, K, H, W] on the (padded) input grid; the CenterNet head returns a dict at ``stride``.
Layers come from timm (``ConvNormAct``, ``LayerNorm2d``) and torchvision
(``FeaturePyramidNetwork``); only the wiring lives here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct, LayerNorm2d
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

from earthplat.errors import EarthplatError
from earthplat.nn.backbones import Backbone, BackboneOutput
from earthplat.tasks import TASKS


# --- necks -------------------------------------------------------------------------------------
class SimpleFeaturePyramid(nn.Module):
    """ViTDet's pyramid from one patch map: x4 and x2 by transposed convs, x1, x0.5 by pooling."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.up4 = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 2, 2, stride=2),
            LayerNorm2d(dim // 2),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 2, dim // 4, 2, stride=2),
        )
        self.up2 = nn.ConvTranspose2d(dim, dim // 2, 2, stride=2)
        self.down2 = nn.MaxPool2d(2, ceil_mode=True)  # a 1x1 map stays 1x1
        self.channels = [dim // 4, dim // 2, dim, dim]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # x: [B, D, h, w]
        return [self.up4(x), self.up2(x), x, self.down2(x)]


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling on the coarsest map (UPerNet's global context)."""

    def __init__(self, in_ch: int, ch: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), ConvNormAct(in_ch, ch, 1)) for b in bins
        )
        self.fuse = ConvNormAct(in_ch + ch * len(bins), ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [
            F.interpolate(s(x), size, mode="bilinear", align_corners=False) for s in self.stages
        ]
        return self.fuse(torch.cat([x, *pooled], dim=1))


class UPerNetDecoder(nn.Module):
    """Pyramid (ViT: simple pyramid; CNN: its last four maps) -> PPM on the coarsest -> FPN
    lateral + top-down -> all levels upsampled to the finest and fused. Output: [B, ch, h0, w0]
    at stride ``self.stride``."""

    def __init__(self, backbone: Backbone, channels: int = 64) -> None:
        super().__init__()
        if len(backbone.channels) == 1:
            self.pyramid: nn.Module | None = SimpleFeaturePyramid(backbone.channels[0])
            in_ch = self.pyramid.channels
            self.stride = backbone.strides[0] / 4
        else:
            self.pyramid = None
            in_ch = list(backbone.channels[-4:])
            self.stride = backbone.strides[-len(in_ch)]
        self.ppm = PyramidPooling(in_ch[-1], channels)
        self.fpn = FeaturePyramidNetwork([*in_ch[:-1], channels], channels)
        self.fuse = ConvNormAct(channels * len(in_ch), channels, 3)
        self.channels = channels

    def forward(self, out: BackboneOutput) -> torch.Tensor:
        levels = self.pyramid(out.features[-1]) if self.pyramid else out.features[-4:]
        levels = [*levels[:-1], self.ppm(levels[-1])]
        fpn = list(self.fpn({str(i): x for i, x in enumerate(levels)}).values())
        size = fpn[0].shape[-2:]
        ups = [fpn[0]] + [
            F.interpolate(x, size, mode="bilinear", align_corners=False) for x in fpn[1:]
        ]
        return self.fuse(torch.cat(ups, dim=1))  # [B, ch, h0, w0]


def _upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size, mode="bilinear", align_corners=False)


# --- heads -------------------------------------------------------------------------------------
class LinearHead(nn.Module):
    """Window: pooled -> K. Dense: per-cell 1x1 conv on the last map, bilinear to pixels.

    ``norm=True`` puts a LayerNorm (no affine) before the projection, as linear probes of
    frozen encoders do: it standardises features whose scale the probe cannot change."""

    def __init__(self, backbone: Backbone, num_outputs: int, dense: bool, norm: bool = False):
        super().__init__()
        self.dense = dense
        if dense:
            c = backbone.channels[-1]
            self.norm: nn.Module = LayerNorm2d(c, affine=False) if norm else nn.Identity()
            self.proj: nn.Module = nn.Conv2d(c, num_outputs, 1)
        else:
            d = backbone.pooled_dim
            self.norm = nn.LayerNorm(d, elementwise_affine=False) if norm else nn.Identity()
            self.proj = nn.Linear(d, num_outputs)

    def forward(self, out: BackboneOutput, size: tuple[int, int]) -> torch.Tensor:
        if self.dense:
            return _upsample(self.proj(self.norm(out.features[-1])), size)  # [B, K, H, W]
        return self.proj(self.norm(out.pooled))  # [B, K]


class MLPHead(nn.Module):
    """Window regression / classification: pooled -> hidden -> K."""

    def __init__(
        self,
        backbone: Backbone,
        num_outputs: int,
        dense: bool,
        hidden: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dense:
            raise EarthplatError("the mlp head is for window tasks; use linear or upernet")
        self.net = nn.Sequential(
            nn.Linear(backbone.pooled_dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_outputs),
        )

    def forward(self, out: BackboneOutput, size: tuple[int, int]) -> torch.Tensor:
        return self.net(out.pooled)  # [B, K]


class PixelSkip(nn.Module):
    """Full-resolution input skip: the input bands through two 3x3 convs, concatenated with the
    decoder's features upsampled to the pixels, and fused by a 3x3 conv. It gives a patch
    decoder the sub-patch detail (thin water bodies, field edges) that a patch of 4 x 4 pixels
    averages away."""

    def __init__(self, in_pixels: int, channels: int, width: int) -> None:
        super().__init__()
        if in_pixels < 1:
            raise EarthplatError("pixel_skip needs the model's input bands (in_pixels >= 1)")
        self.stem = nn.Sequential(ConvNormAct(in_pixels, width, 3), ConvNormAct(width, width, 3))
        self.fuse = ConvNormAct(channels + width, channels, 3)

    def forward(self, feats: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        up = _upsample(feats, tuple(pixels.shape[-2:]))
        return self.fuse(torch.cat([up, self.stem(pixels)], dim=1))  # [B, ch, H, W]


class UPerNetHead(nn.Module):
    """UPerNet decoder + 1x1 classifier, upsampled to the input pixels.

    ``pixel_skip=N`` adds a full-resolution branch of width N over the input bands
    (``PixelSkip``); the task model then hands the head the stacked inputs."""

    def __init__(
        self,
        backbone: Backbone,
        num_outputs: int,
        dense: bool,
        channels: int = 64,
        pixel_skip: int = 0,
        in_pixels: int = 0,
    ) -> None:
        super().__init__()
        if not dense:
            raise EarthplatError("the upernet head is for pixel tasks; use linear or mlp")
        self.decoder = UPerNetDecoder(backbone, channels)
        self.skip = PixelSkip(in_pixels, channels, pixel_skip) if pixel_skip else None
        self.wants_pixels = self.skip is not None
        self.classifier = nn.Conv2d(channels, num_outputs, 1)

    def forward(self, out: BackboneOutput, size: tuple[int, int]) -> torch.Tensor:
        feats = self.decoder(out)
        if self.skip is not None:
            if out.pixels is None:
                raise EarthplatError("this upernet head has pixel_skip but got no pixels")
            feats = self.skip(feats, out.pixels)
        return _upsample(self.classifier(feats), size)  # [B, K, H, W]


class CenterNetHead(nn.Module):
    """CenterNet: class-centre heatmap, box size (in ``stride`` cells) and sub-cell offset,
    predicted on the UPerNet decoder's features resampled to ``stride`` input pixels per cell."""

    def __init__(
        self,
        backbone: Backbone,
        num_outputs: int,
        dense: bool,
        channels: int = 64,
        stride: int = 4,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.decoder = UPerNetDecoder(backbone, channels)

        def branch(k: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, k, 1),
            )

        self.heatmap, self.size, self.offset = branch(num_outputs), branch(2), branch(2)
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - 0.1) / 0.1))  # prior 0.1

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return math.ceil(size[0] / self.stride), math.ceil(size[1] / self.stride)

    def forward(self, out: BackboneOutput, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        x = _upsample(self.decoder(out), self.output_size(size))
        return {"heatmap": self.heatmap(x), "size": self.size(x), "offset": self.offset(x)}


class IdentityHead(nn.Module):
    """Embedding extraction: the backbone's last feature map as it is."""

    def __init__(self, backbone: Backbone, num_outputs: int, dense: bool) -> None:
        super().__init__()

    def forward(self, out: BackboneOutput, size: tuple[int, int]) -> torch.Tensor:
        return out.features[-1]  # [B, D, h, w]


def decode_centernet(
    out: dict[str, torch.Tensor],
    stride: float,
    threshold: float = 0.3,
    max_per_image: int = 100,
    image_size: tuple[int, int] | None = None,
) -> list[list[dict]]:
    """Peaks of the heatmap (3x3 max-pool NMS) as boxes in input pixels, per sample."""
    heat = out["heatmap"].sigmoid()  # [B, K, h, w]
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    b, k, h, w = heat.shape
    scores, idx = peaks.flatten(1).topk(min(max_per_image, k * h * w), dim=1)
    results = []
    for i in range(b):
        dets = []
        for score, j in zip(scores[i].tolist(), idx[i].tolist(), strict=True):
            if score < threshold:
                break
            label, cell = divmod(j, h * w)
            y, x = divmod(cell, w)
            ox, oy = out["offset"][i, :, y, x].tolist()
            bw, bh = (out["size"][i, :, y, x].clamp_min(0) * stride).tolist()
            cx, cy = (x + ox) * stride, (y + oy) * stride
            box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
            if image_size is not None:
                box = [min(max(v, 0.0), float(image_size[1 - n % 2])) for n, v in enumerate(box)]
            x0, y0, x1, y1 = box
            dets.append(dict(x0=x0, y0=y0, x1=x1, y1=y1, label=label, score=score))
        results.append(dets)
    return results


# --- registry ----------------------------------------------------------------------------------
HEADS: dict[str, type[nn.Module]] = {
    "linear": LinearHead,
    "mlp": MLPHead,
    "upernet": UPerNetHead,
    "centernet": CenterNetHead,
    "identity": IdentityHead,
}
"""Head name -> class(backbone, num_outputs, dense, **kwargs)."""

HEAD_TASKS: dict[str, tuple[str, ...]] = {
    "linear": ("classification", "multilabel", "regression", "segmentation", "pixel_regression"),
    "mlp": ("classification", "multilabel", "regression"),
    "upernet": ("segmentation", "pixel_regression"),
    "centernet": ("detection",),
    "identity": ("embedding",),
}
"""Which tasks each head serves (the tests run every pair)."""


def build_head(
    cfg: dict, backbone: Backbone, num_outputs: int, task: str, in_pixels: int = 0
) -> nn.Module:
    """``in_pixels``: how many input channels ``BackboneOutput.pixels`` carries (for heads with
    a pixel skip)."""
    cfg = dict(cfg)
    name = cfg.pop("name", "linear")
    if name not in HEADS:
        raise EarthplatError(f"unknown head {name!r}; registered: {', '.join(HEADS)}")
    if task not in HEAD_TASKS[name]:
        raise EarthplatError(
            f"head {name!r} does not serve task {task!r}; it serves {HEAD_TASKS[name]}"
        )
    dense = TASKS[task].dense
    if cfg.get("pixel_skip"):
        if name != "upernet":
            raise EarthplatError(f"pixel_skip is an option of the upernet head, not of {name!r}")
        cfg["in_pixels"] = in_pixels
    return HEADS[name](backbone, num_outputs, dense, **cfg)

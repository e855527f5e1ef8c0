"""Flexible patch embedding: one kernel at the largest patch size serves every patch size.

A token of a p x p patch is defined as the token the full-size kernel gives for that patch
upsampled (bicubic) to the full size. Because upsampling is linear, this folds into the kernel:
``W_p = W_max @ U_p`` with ``U_p`` the (max^2 x p^2) upsampling matrix, so no pixel is ever
upsampled and the cost of a small patch stays small. (FlexiViT resizes kernels the other way,
with a pseudo-inverse, which is exact only when enlarging patches; here patches only shrink
below the stored size, where this form is exact by construction.)

``resize="image"`` is OlmoEarth's definition instead, which its published weights were trained
with: the whole image is upsampled (bicubic, antialiased) by max/p before the stored kernel
runs, so a token also sees the pixels next to its patch. Only that mode takes a per-pixel MLP
before patchification (``pixel_hidden``, OlmoEarth v1.1), which cannot fold into a kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def upsample_matrix(p: int, size: int, device=None) -> torch.Tensor:
    """[size*size, p*p]: column j is basis pixel j of a p x p patch upsampled to size x size."""
    eye = torch.eye(p * p, device=device, dtype=torch.float32).reshape(p * p, 1, p, p)
    up = F.interpolate(eye, size=(size, size), mode="bicubic", align_corners=False)
    return up.reshape(p * p, size * size).T.contiguous()


RESIZE_MODES = ("kernel", "image")
"""How a patch smaller than the stored kernel is embedded (see the module docstring)."""


class FlexiPatchEmbed(nn.Module):
    """[N, C, H, W] pixels -> [N, H/p, W/p, D] tokens for any patch size 1..max."""

    def __init__(
        self,
        in_chans: int,
        embed_dim: int,
        max_patch_size: int = 8,
        resize: str = "kernel",
        pixel_hidden: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize={resize!r}; choose one of {', '.join(RESIZE_MODES)}")
        if pixel_hidden and resize != "image":
            raise ValueError("a per-pixel MLP (pixel_hidden) needs resize='image'")
        self.in_chans = in_chans
        self.max_patch_size = max_patch_size
        self.resize = resize
        layers: list[nn.Module] = []
        width = in_chans
        for h in pixel_hidden:  # Linear -> ReLU per pixel, weights shared across pixels
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.pixel_mlp = nn.Sequential(*layers) if layers else None
        self.weight = nn.Parameter(torch.empty(embed_dim, width, max_patch_size, max_patch_size))
        self.bias = nn.Parameter(torch.zeros(embed_dim))
        nn.init.xavier_uniform_(self.weight.view(embed_dim, -1))
        self._matrices: dict[tuple[int, torch.device], torch.Tensor] = {}

    def _apply(self, fn, recurse: bool = True):
        self._matrices.clear()  # derived from the device; rebuilt lazily after a move
        return super()._apply(fn)

    def kernel(self, patch_size: int) -> torch.Tensor:
        """The [D, C, p, p] kernel for patch size p."""
        m = self.max_patch_size
        if not 1 <= patch_size <= m:
            raise ValueError(f"patch size {patch_size} outside 1..{m}")
        if patch_size == m:
            return self.weight
        key = (patch_size, self.weight.device)
        if key not in self._matrices:
            self._matrices[key] = upsample_matrix(patch_size, m, self.weight.device)
        up = self._matrices[key].to(self.weight.dtype)  # [m*m, p*p]
        d, c = self.weight.shape[:2]
        return (self.weight.reshape(d, c, m * m) @ up).reshape(d, c, patch_size, patch_size)

    def forward(self, x: torch.Tensor, patch_size: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % patch_size or w % patch_size:
            raise ValueError(f"a {h}x{w} input is not divisible by patch size {patch_size}")
        if self.resize == "kernel":
            out = F.conv2d(x, self.kernel(patch_size), self.bias, stride=patch_size)
            return out.permute(0, 2, 3, 1)  # [N, h, w, D]
        m = self.max_patch_size
        if not 1 <= patch_size <= m:
            raise ValueError(f"patch size {patch_size} outside 1..{m}")
        if patch_size != m:  # [N, C, H, W] -> [N, C, H*m/p, W*m/p]
            size = (h // patch_size * m, w // patch_size * m)
            x = F.interpolate(x, size=size, mode="bicubic", antialias=True)
        if self.pixel_mlp is not None:
            x = self.pixel_mlp(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        out = F.conv2d(x, self.weight, self.bias, stride=m)  # [N, D, h, w]
        return out.permute(0, 2, 3, 1)  # [N, h, w, D]

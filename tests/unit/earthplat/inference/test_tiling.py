"""Tiles, chunks and blending weights cover the area exactly, whatever the sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from earthplat.inference.errors import InferenceError
from earthplat.inference.tiling import Blender, TilePlan

PLANS = [
    TilePlan(100, 70, chip=32, overlap=8, chunk=40),
    TilePlan(64, 64, chip=32, overlap=0, chunk=64),
    TilePlan(37, 130, chip=16, overlap=4, chunk=48, scale=4),
    TilePlan(90, 90, chip=32, overlap=0, chunk=50, scale=32),
]


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.height}x{p.width}/s{p.scale}")
def test_chunks_partition_the_area(plan: TilePlan) -> None:
    cover = np.zeros((plan.height, plan.width), int)
    for ch in plan.chunks():
        cover[ch.row : ch.row + ch.height, ch.col : ch.col + ch.width] += 1
        assert ch.row % plan.scale == 0 and ch.col % plan.scale == 0
    assert (cover == 1).all()


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.height}x{p.width}/s{p.scale}")
def test_tiles_cover_every_chunk_and_blend_to_identity(plan: TilePlan) -> None:
    for ch in plan.chunks():
        blender = Blender(plan, ch, 1)
        n = plan.chip // plan.scale
        for r, c in plan.tiles(ch):
            blender.add(r, c, np.full((1, n, n), 3.0, np.float32))
        out = blender.result()
        assert out.shape == (1, -(-ch.height // plan.scale), -(-ch.width // plan.scale))
        np.testing.assert_allclose(out, 3.0, rtol=1e-6)  # weights normalise everywhere


def test_weights_ramp_over_the_overlap_only() -> None:
    w = TilePlan(64, 64, chip=16, overlap=4, chunk=64).weights()
    assert w.shape == (16, 16) and (w > 0).all()
    assert w[8, 8] == 1.0 and w[0, 8] < w[1, 8] < w[3, 8] <= 1.0
    np.testing.assert_allclose(w, w[::-1, ::-1])
    assert (TilePlan(64, 64, chip=16, overlap=0, chunk=64).weights() == 1).all()


def test_owned_spans_partition_each_axis() -> None:
    plan = TilePlan(100, 100, chip=32, overlap=8, chunk=100)
    starts = plan.starts(100)
    spans = [plan.owned(s, 100) for s in starts]
    assert spans[0][0] == 0 and spans[-1][1] == float("inf")
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_invalid_plans_say_what_to_change() -> None:
    with pytest.raises(InferenceError, match="overlap"):
        TilePlan(64, 64, chip=16, overlap=16, chunk=64)
    with pytest.raises(InferenceError, match="multiple of the output scale"):
        TilePlan(64, 64, chip=16, overlap=2, chunk=64, scale=4)

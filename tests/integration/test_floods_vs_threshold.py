"""Issue 5's flood test: on the real Sen1Floods11 chip, a segmentation model fine-tuned on the
west half beats the best per-pixel water threshold on the held-out east half.

It runs ``bench.floods_vs_threshold`` itself (the shipped nano + UPerNet config with its pixel
skip, S2 + S1, 200 steps, seeded), so the benchmark and this test cannot drift apart. The
threshold is chosen on the training pixels only, and both are scored on the same held-out
pixels. At 100 steps the margin (0.758-0.779 across seeds and optimizer kernels, against a
0.751 baseline) was within run-to-run noise; at 200 steps it is 0.784."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_finetuned_model_beats_the_per_pixel_threshold_on_held_out_water(shared_data, tmp_path):
    from bench.floods_vs_threshold import main

    out = tmp_path / "floods.md"
    report = main(["--steps", "200", "--work", str(tmp_path / "work"), "--out", str(out)])

    baseline, model = report["baseline_chosen"], report["model"]
    # the fair baseline: the best of VV, VH, NDWI and MNDWI on the *training* pixels
    assert baseline == max(report["baseline"], key=lambda r: r["train_iou"])
    assert baseline["test_iou"] > 0.6  # a real, competitive threshold, not a strawman
    assert report["windows"] == {"train+val": 27, "test": 36}
    assert report["test_pixels"] > 100_000
    print(
        f"held-out water IoU: model {model['test_iou_water']:.3f}, "
        f"threshold {baseline['feature']} {baseline['test_iou']:.3f}"
    )
    assert model["test_iou_water"] > baseline["test_iou"] + 0.01
    # the report the note quotes is written with both numbers
    text = out.read_text()
    assert f"{model['test_iou_water']:.3f}" in text and f"{baseline['test_iou']:.3f}" in text
    assert json.loads(out.with_suffix(".json").read_text())["model"]["steps"] == 200

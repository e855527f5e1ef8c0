"""Every registered head, on every task it serves, over both backbone kinds: forward +
backward on a tiny input, and output geometry on odd input sizes."""

import pytest
import torch

from earthplat.errors import EarthplatError
from earthplat.nn.heads import HEAD_TASKS, HEADS, SimpleFeaturePyramid, decode_centernet
from earthplat.nn.task_model import TaskModel
from tests.unit.earthplat.nn.data import make_inputs
from tests.unit.earthplat.nn.task_data import PICO, RESNET, S2, make_spec

PAIRS = [(h, t) for h in HEADS for t in HEAD_TASKS[h]]
CASES = [(h, t, PICO) for h, t in PAIRS] + [
    (h, HEAD_TASKS[h][0], RESNET) for h in HEADS if h != "identity"
]  # every head on every task with our encoder; each head once on a timm CNN


def _expected(task, out, b, size, k, model):
    if task in ("classification", "multilabel", "regression"):
        assert out.shape == (b, k)
    elif task in ("segmentation", "pixel_regression"):
        assert out.shape == (b, k, size, size)
    elif task == "detection":
        s = model.detection_stride
        h = out["heatmap"].shape[-1]
        assert out["heatmap"].shape[:2] == (b, k) and h * s >= size and (h - 1) * s < size
        assert out["size"].shape[1] == out["offset"].shape[1] == 2
    else:
        assert out.shape[:2] == (b, 64)


@pytest.mark.parametrize(
    ("head", "task", "backbone"), CASES, ids=[f"{h}-{t}-{b['name']}" for h, t, b in CASES]
)
def test_head_forward_backward(head, task, backbone):
    torch.manual_seed(0)
    model = TaskModel(make_spec(task, head, backbone))
    inputs = make_inputs(b=2, t=2, size=20, modalities=(S2,))
    out = model(inputs)
    _expected(task, out, 2, 20, model.spec.num_outputs, model)
    tensors = out.values() if isinstance(out, dict) else [out]
    sum(t.float().square().mean() for t in tensors).backward()
    grads = [p.grad for p in model.head.parameters()]
    if grads:  # the identity head has no parameters
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    enc = [p.grad for p in model.backbone.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in enc)


@pytest.mark.parametrize("patch_size", [2, 4, 8])
@pytest.mark.parametrize("head", ["linear", "upernet"])
def test_dense_outputs_on_the_input_grid(patch_size, head):
    torch.manual_seed(0)
    model = TaskModel(make_spec("segmentation", head, patch_size=patch_size)).eval()
    for size in (36, 17):
        out = model(make_inputs(b=1, t=2, size=size, modalities=(S2,), missing=False))
        assert out.shape == (1, 3, size, size)
        assert torch.isfinite(out).all()


def test_simple_feature_pyramid_scales():
    levels = SimpleFeaturePyramid(64)(torch.randn(1, 64, 5, 5))
    assert [tuple(x.shape[-2:]) for x in levels] == [(20, 20), (10, 10), (5, 5), (3, 3)]
    assert [x.shape[1] for x in levels] == [16, 32, 64, 64]


def test_head_refuses_a_task_it_does_not_serve():
    with pytest.raises(EarthplatError, match="does not serve"):
        TaskModel(make_spec("classification", "upernet"))
    with pytest.raises(EarthplatError, match="unknown head"):
        TaskModel(make_spec("classification", "nope"))
    with pytest.raises(EarthplatError, match="option of the upernet head"):
        TaskModel(make_spec("segmentation", "linear", head_kwargs={"pixel_skip": 8}))


def test_centernet_decode_places_boxes_in_input_pixels():
    heat = torch.full((1, 2, 8, 8), -10.0)
    heat[0, 1, 3, 5] = 5.0  # class 1 peak at row 3, col 5
    size = torch.zeros(1, 2, 8, 8)
    size[0, :, 3, 5] = torch.tensor([2.0, 1.0])  # 2 x 1 cells
    offset = torch.zeros(1, 2, 8, 8)
    offset[0, :, 3, 5] = torch.tensor([0.5, 0.25])
    dets = decode_centernet({"heatmap": heat, "size": size, "offset": offset}, stride=4)
    assert len(dets[0]) == 1
    d = dets[0][0]
    assert d["label"] == 1 and d["score"] > 0.99
    cx, cy = (5 + 0.5) * 4, (3 + 0.25) * 4
    assert d["x0"] == pytest.approx(cx - 4) and d["x1"] == pytest.approx(cx + 4)
    assert d["y0"] == pytest.approx(cy - 2) and d["y1"] == pytest.approx(cy + 2)


@pytest.mark.parametrize("dense", [False, True])
def test_linear_probe_norm_makes_the_head_scale_free(dense):
    from earthplat.nn.backbones import BackboneOutput
    from earthplat.nn.heads import LinearHead

    torch.manual_seed(0)
    bb = TaskModel(make_spec("classification", "linear")).backbone
    head = LinearHead(bb, 3, dense, norm=True)
    fmap, pooled = torch.randn(2, 64, 4, 4), torch.randn(2, 64)

    def run(scale):
        return head(BackboneOutput([fmap * scale], [4.0], pooled * scale), (16, 16))

    torch.testing.assert_close(run(1.0), run(10.0), rtol=1e-4, atol=1e-4)
    plain = LinearHead(bb, 3, dense)
    out = plain(BackboneOutput([fmap], [4.0], pooled), (16, 16))
    assert not torch.allclose(
        out, plain(BackboneOutput([fmap * 10.0], [4.0], pooled * 10.0), (16, 16))
    )


def test_pixel_skip_carries_sub_patch_detail_to_the_output():
    """With the patch features held fixed, changing one input pixel changes the prediction at
    that pixel through the skip; the plain UPerNet head cannot see it at all."""
    from earthplat.nn.backbones import BackboneOutput

    torch.manual_seed(0)
    model = TaskModel(make_spec("segmentation", "upernet", head_kwargs={"pixel_skip": 8}))
    model.eval()
    assert model.wants_pixels
    in_ch = len(model.spec.inputs[S2]) * model.spec.num_periods
    fmap, pooled = torch.randn(1, 64, 4, 4), torch.randn(1, 64)
    pixels = torch.randn(1, in_ch, 16, 16)
    bumped = pixels.clone()
    bumped[0, :, 9, 6] += 3.0
    with torch.no_grad():
        a = model.head(BackboneOutput([fmap], [4.0], pooled, pixels), (16, 16))
        b = model.head(BackboneOutput([fmap], [4.0], pooled, bumped), (16, 16))
    change = (a - b).abs().sum(1)[0]  # [H, W]
    assert change[9, 6] > 0.01
    assert change[0, 0] == 0 and change[15, 15] == 0  # outside the two 3x3 convs' reach
    with pytest.raises(EarthplatError, match="got no pixels"):
        model.head(BackboneOutput([fmap], [4.0], pooled), (16, 16))


@pytest.mark.parametrize("size", [36, 17])
def test_pixel_skip_model_on_odd_inputs_and_round_trip(tmp_path, size):
    from earthplat.nn.task_model import export_task_model, load_task_model

    torch.manual_seed(0)
    model = TaskModel(make_spec("segmentation", "upernet", head_kwargs={"pixel_skip": 8}))
    model.eval()
    inputs = make_inputs(b=1, t=2, size=size, modalities=(S2,), missing=False)
    with torch.no_grad():
        out = model(inputs)
    assert out.shape == (1, 3, size, size) and torch.isfinite(out).all()
    loaded = load_task_model(export_task_model(model, tmp_path / "m")).eval()
    assert loaded.wants_pixels
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs), out)

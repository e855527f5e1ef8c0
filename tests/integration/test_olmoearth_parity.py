"""Published OlmoEarth weights run exactly: reference models (``olmoearth-pretrain-minimal``, random
seeded weights from its own config classes, saved in the published layout) loaded by
``earthplat.nn.load_encoder`` give the same per-patch features, pooled embeddings and projected
embeddings within 1e-5 (fp32) on real S2 + S1 + Landsat windows, with missing time steps and
bands, at patch sizes 1, 4 and 8; our normalisation equals the reference normaliser's; and our
export loads back into the reference with equal outputs.

Reference quirk, measured here: in eval mode the reference attends to the zero padding of
samples with fewer tokens than others in their batch (it passes no attention mask outside
training), so its outputs depend on the batch; ours do not. Where samples differ in their
missing tokens the reference runs one sample at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from earthplat.batch import ModalityInput
from earthplat.errors import EarthplatError, SensorError
from earthplat.nn import load_encoder
from earthplat.sensors import get_modality, normalize
from earthplat.sensors.fill import fill_missing_bands
from tests.integration import olmoearth_ref as R

TOL = 1e-5
CROP = {1: 8, 4: 32, 8: 64}  # patch size -> window size (8 x 8 patches at p=8 ... 8 x 8 at p=1)


def our_inputs(window: R.Window, missing: str) -> dict[str, ModalityInput]:
    """Our normalisation (registry statistics), zeros where a time step is missing; the
    encoder fills the bands an input lacks (``missing`` policy)."""
    out = {}
    for name, raw in window.raw.items():
        spec = get_modality(name)
        bands = tuple(spec.band(b).name for b in window.bands[name])
        x = normalize(torch.from_numpy(raw), spec, bands, band_axis=2)
        valid = torch.from_numpy(window.valid[name])  # [B, T] or [B, T, H, W]
        b, t, _, h, w = x.shape
        if valid.ndim == 2:
            valid = valid[:, :, None, None].expand(b, t, h, w)
        x = x * valid[:, :, None]
        out[name] = ModalityInput(
            x.float(),
            valid.contiguous(),
            torch.from_numpy(window.timestamps),
            bands,
        )
    return out


def assert_parity(encoder, model, window, patch_size, model_type, missing) -> None:
    ours = encoder(our_inputs(window, missing), patch_size=patch_size)
    normalised = R.reference_normalise(window, model_type)
    theirs = R.reference_outputs(model, R.reference_sample(window, normalised, model), patch_size)
    torch.testing.assert_close(ours.pooled, theirs["pooled"], atol=TOL, rtol=0)
    torch.testing.assert_close(ours.projected, theirs["projected"], atol=TOL, rtol=0)
    b, _, d = ours.features.shape
    for (name, s), (start, t, h, w, end) in ours.tokens.layout.slices.items():
        ref_tok = theirs["tokens"][name][:, :, :, :, s].permute(0, 3, 1, 2, 4)  # [B, T, h, w, D]
        ref_enc = theirs["masks"][name][:, :, :, :, s].permute(0, 3, 1, 2) == 0
        our_tok = ours.features[:, start:end].reshape(b, t, h, w, d)
        our_enc = ours.encoded[:, start:end].reshape(b, t, h, w)
        assert torch.equal(our_enc, ref_enc), f"{name} set {s}: different tokens encoded"
        torch.testing.assert_close(our_tok[our_enc], ref_tok[ref_enc], atol=TOL, rtol=0)


@pytest.fixture(scope="module")
def windows():
    return {p: R.real_window(size) for p, size in CROP.items()}


def _published(tmp_path_factory, size, **kw):
    config, model = R.reference_model(size, **kw)
    path = R.save_published(config, model, tmp_path_factory.mktemp(f"oe_{size}"))
    return path, model


@pytest.mark.parametrize(
    "size", ["nano", "tiny", pytest.param("base", marks=pytest.mark.slow),
             pytest.param("large", marks=pytest.mark.slow)],
)  # fmt: skip
def test_v1_sizes_match_reference(size, windows, tmp_path_factory):
    path, model = _published(tmp_path_factory, size)
    encoder = load_encoder(path)
    assert encoder.config.missing_bands == "nearest"  # v1: trained without band dropout
    assert encoder.config.encoder_inputs == ("sentinel2_l2a", "sentinel1", "landsat")
    ref_count = sum(p.numel() for p in model.encoder.parameters() if p.requires_grad)
    ours = sum(p.numel() for p in encoder.parameters())
    assert ours == ref_count  # every trainable reference tensor has a home, nothing more
    for p in (1, 4, 8) if size in ("nano", "tiny") else (8,):
        assert_parity(encoder, model, windows[p], p, "v1", "nearest")


def test_one_band_set_v1x_tokenization_matches(windows, tmp_path_factory):
    """v1.1-style: all S2 (and Landsat) bands one set, linear patch projections with a
    per-pixel MLP, band dropout in training (missing bands are zeros)."""
    path, model = _published(
        tmp_path_factory, "nano", band_groups=R.S2_ONE_SET, hidden=[12], band_dropout=0.2
    )
    encoder = load_encoder(path)
    assert len(encoder.config.modality_band_sets("sentinel2_l2a")) == 1
    assert encoder.config.missing_bands == "zero"
    for p in (1, 4, 8):
        assert_parity(encoder, model, windows[p], p, "v1.1", "zero")
    three = load_encoder(_published(tmp_path_factory, "nano")[0])
    inputs = our_inputs(windows[4], "nearest")
    n_one = encoder(inputs, patch_size=4).encoded.sum()
    n_three = three(inputs, patch_size=4).encoded.sum()
    assert n_one < n_three  # the S2 token count drops to a third


def test_samples_with_different_missing_tokens(windows, tmp_path_factory):
    """Per sample against the reference (which is not batch-independent, see module doc)."""
    path, model = _published(tmp_path_factory, "nano")
    encoder = load_encoder(path)
    shared = windows[4]
    valid = {k: v.copy() for k, v in shared.valid.items()}
    valid["sentinel2_l2a"][1, 0] = False  # sample 1 also misses S2 time step 0
    w = R.Window(shared.raw, shared.bands, valid, shared.timestamps)
    ours = encoder(our_inputs(w, "nearest"), patch_size=4)
    for i in range(2):
        one = R.Window(
            {k: v[i : i + 1] for k, v in w.raw.items()},
            w.bands,
            {k: v[i : i + 1] for k, v in w.valid.items()},
            w.timestamps[i : i + 1],
        )
        theirs = R.reference_outputs(
            model, R.reference_sample(one, R.reference_normalise(one, "v1"), model), 4
        )
        torch.testing.assert_close(ours.pooled[i : i + 1], theirs["pooled"], atol=TOL, rtol=0)


def _clouded(shared: R.Window, seed: int) -> R.Window:
    """``shared`` with 2 x 2 px clouds over 30 % of every observed frame (per-pixel validity)."""
    rng = np.random.default_rng(seed)
    valid = {}
    for name, v in shared.valid.items():
        b, t = v.shape
        _, _, _, h, w = shared.raw[name].shape
        pixels = np.repeat(np.repeat(v[:, :, None, None], h, 2), w, 3)
        clouds = rng.random((b, t, h // 2, w // 2)) < 0.3
        pixels &= ~np.repeat(np.repeat(clouds, 2, 2), 2, 3)
        valid[name] = pixels
    return R.Window(shared.raw, shared.bands, valid, shared.timestamps)


def _sample(w: R.Window, i: int) -> R.Window:
    return R.Window(
        {k: v[i : i + 1] for k, v in w.raw.items()},
        w.bands,
        {k: v[i : i + 1] for k, v in w.valid.items()},
        w.timestamps[i : i + 1],
    )


def test_partly_clouded_patches_encode_the_tokens_the_reference_encodes(windows, tmp_path_factory):
    """Clouds over part of a frame: a patch's token is encoded exactly when its top-left pixel
    is valid, as the reference reads the mask; 'any valid pixel' (ours) encodes more."""
    from dataclasses import replace

    from earthplat.nn.encoder import Encoder

    path, model = _published(tmp_path_factory, "nano")
    encoder = load_encoder(path)
    assert encoder.config.token_presence == "top_left"
    w = _clouded(windows[4], seed=7)
    for i in range(2):  # the reference is not batch-independent (module doc)
        one = _sample(w, i)
        ours = encoder(our_inputs(one, "nearest"), patch_size=4)
        theirs = R.reference_outputs(
            model, R.reference_sample(one, R.reference_normalise(one, "v1"), model), 4
        )
        for (name, s), (start, t, h, w_, end) in ours.tokens.layout.slices.items():
            ref_enc = theirs["masks"][name][:, :, :, :, s].permute(0, 3, 1, 2) == 0
            our_enc = ours.encoded[:, start:end].reshape(1, t, h, w_)
            assert torch.equal(our_enc, ref_enc), f"{name} set {s}: different tokens encoded"
    anyp = Encoder(replace(encoder.config, token_presence="any_pixel"))
    anyp.load_state_dict(encoder.state_dict())
    inputs = our_inputs(w, "nearest")
    assert anyp(inputs, patch_size=4).encoded.sum() > encoder(inputs, patch_size=4).encoded.sum()


@pytest.mark.parametrize("patch_size", [1, 4, 8])
def test_partly_clouded_features_match_the_reference(patch_size, windows, tmp_path_factory):
    """Per-pixel clouds over S2, S1 and Landsat (whose missing bands are filled): the features
    match too. A filled band must be zero where the pixel is invalid, as the reference fills
    before masking; else the fill leaks into neighbouring patches through the image resize."""
    path, model = _published(tmp_path_factory, "nano")
    encoder = load_encoder(path)
    clouded = _clouded(windows[patch_size], seed=7)
    for i in range(2):
        assert_parity(encoder, model, _sample(clouded, i), patch_size, "v1", "nearest")


# --- normalisation -------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type, policy", [("v1", "nearest"), ("v1.1", "zero")])
def test_normalisation_equals_reference(windows, model_type, policy):
    w = windows[8]
    theirs = R.reference_normalise(w, model_type)
    for name, raw in w.raw.items():
        spec = get_modality(name)
        bands = spec.canonical(w.bands[name])
        x = normalize(raw.astype(np.float64), spec, bands, band_axis=2)
        full, order = fill_missing_bands(x, bands, spec, policy, band_axis=2)
        ref_order = [spec.band(b).name for b in R.RefModality.get(name).band_order]
        ours = full[:, :, [order.index(b) for b in ref_order]].transpose(0, 3, 4, 1, 2)
        np.testing.assert_allclose(ours, theirs[name], atol=1e-6, rtol=0, err_msg=name)


def test_default_band_sets_equal_the_reference_constants():
    from earthplat.nn.olmoearth_ckpt import REFERENCE_NAMES

    for theirs, ours in REFERENCE_NAMES.items():
        ref_sets = [[get_modality(ours).band(b).name for b in s.bands]
                    for s in R.RefModality.get(theirs).band_sets]  # fmt: skip
        assert ref_sets == [list(s) for s in get_modality(ours).band_sets], theirs


# --- inputs as trained ---------------------------------------------------------------------------
def test_untrained_inputs_are_refused_or_recorded(windows, tmp_path_factory):
    path, _ = _published(tmp_path_factory, "nano")
    w = windows[4]
    inputs = our_inputs(w, "nearest")
    l1c = dict(inputs)
    l1c["sentinel2_l1c"] = l1c.pop("sentinel2_l2a")
    with pytest.raises(SensorError, match=r"materialise sentinel2_l2a instead.*extra_inputs"):
        load_encoder(path)(l1c, patch_size=4)
    flagged = load_encoder(path, extra_inputs=("sentinel2_l1c",))
    out = flagged(l1c, patch_size=4)
    assert out.untrained_inputs == ("sentinel2_l1c",)
    torch.testing.assert_close(out.pooled, load_encoder(path)(inputs, patch_size=4).pooled)
    dem = dict(inputs)
    b, _, _, h, ww = inputs["sentinel1"].data.shape
    dem["dem"] = ModalityInput(
        torch.zeros(b, 1, 1, h, ww), torch.ones(b, 1, h, ww, dtype=torch.bool),
        torch.from_numpy(w.timestamps[:, :1]),
    )  # fmt: skip
    with pytest.raises(SensorError, match="decode-only target"):
        load_encoder(path)(dem, patch_size=4)
    out = load_encoder(path, extra_inputs=("dem",))(dem, patch_size=4)
    assert out.untrained_inputs == ("dem",)


# --- refusals and hub ----------------------------------------------------------------------------
def test_what_ours_cannot_express_is_refused(tmp_path_factory):
    import json

    path, _ = _published(tmp_path_factory, "nano")
    cfg = json.loads((path / "config.json").read_text())
    cfg["model"]["encoder_config"]["position_encoding"] = "rope_3d_mixed"
    cfg["model"]["encoder_config"]["num_register_tokens"] = 4
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(EarthplatError, match=r"position_encoding=.rope_3d_mixed.*register"):
        load_encoder(path)


def test_extra_tensors_refuse_the_load(tmp_path_factory):
    path, _ = _published(tmp_path_factory, "nano")
    state = torch.load(path / "weights.pth", weights_only=True)
    state["encoder.blocks.0.attn.q_norm.weight"] = torch.ones(16)
    torch.save(state, path / "weights.pth")
    with pytest.raises(EarthplatError, match=r"cannot place: encoder\.blocks\.0\.attn\.q_norm"):
        load_encoder(path)


def test_hf_offline_fails_at_once_with_where_to_put_files(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(EarthplatError, match=r"not in the Hugging Face cache.*huggingface-cli"):
        load_encoder("hf://allenai/OlmoEarth-v1-Base")


# --- export back ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"band_groups": R.S2_ONE_SET, "hidden": [12]}])
def test_export_loads_into_the_reference_with_equal_outputs(kw, windows, tmp_path_factory):
    from earthplat.nn import export_encoder

    path, _ = _published(tmp_path_factory, "nano", **kw)
    encoder = load_encoder(path)
    with torch.no_grad():  # "fine-tune": move every weight, so the export is not a copy
        for p in encoder.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    out = export_encoder(encoder, tmp_path_factory.mktemp("export"), format="olmoearth")
    model = R.ref.load_model_from_path(out).eval()  # strict load of the whole model
    assert model.encoder.encoder_input_modality_names == ["sentinel2_l2a", "sentinel1", "landsat"]
    policy = encoder.config.missing_bands  # no band dropout in training: v1's filling
    model_type = {"nearest": "v1", "zero": "v1.1"}[policy]
    assert_parity(encoder, model, windows[4], 4, model_type, policy)
    again = load_encoder(out)
    torch.testing.assert_close(
        again(our_inputs(windows[4], policy), 4).pooled,
        encoder(our_inputs(windows[4], policy), 4).pooled,
    )

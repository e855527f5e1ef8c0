"""The reference side of the OlmoEarth parity tests: models built by ``olmoearth-pretrain-minimal``
from its own config classes with seeded random weights (nothing downloaded), saved in the
published layout, and real windows from the shared ``data/real`` folder in both input formats.

Only tests import this (the reference is a dev dependency, never imported by the project).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

ref = pytest.importorskip("olmoearth_pretrain_minimal")
from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.nn.flexi_vit import (  # noqa: E402
    EncoderConfig as RefEncoderConfig,
)
from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.nn.flexi_vit import (  # noqa: E402
    PoolingType,
    PredictorConfig,
)
from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.nn.latent_mim import (  # noqa: E402
    LatentMIMConfig,
)
from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.nn.tokenization import (  # noqa: E402
    ModalityTokenization,
    TokenizationConfig,
)
from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.utils.constants import (  # noqa: E402
    Modality as RefModality,
)
from olmoearth_pretrain_minimal.olmoearth_pretrain_v1.utils.datatypes import (  # noqa: E402
    MaskedOlmoEarthSample,
)

from tests.conftest import shared_data_dir  # noqa: E402

REAL = shared_data_dir() / "real"
"""The shared real rasters (``EARTHPLAT_SHARED_DATA``, default ``../shared/data``)."""
SIZES = {"nano": (128, 4, 8), "tiny": (192, 12, 3), "base": (768, 12, 12), "large": (1024, 24, 16)}
V1_MODALITIES = [
    "sentinel2_l2a",
    "sentinel1",
    "landsat",
    "worldcover",
    "srtm",
    "openstreetmap_raster",
    "wri_canopy_height_map",
    "cdl",
    "worldcereal",
]
S2_ONE_SET = {
    "sentinel2_l2a": [list(RefModality.SENTINEL2_L2A.band_order)],
    "landsat": [list(RefModality.LANDSAT.band_order)],
}


def reference_model(
    size: str,
    *,
    band_groups: dict[str, list[list[str]]] | None = None,
    hidden: list[int] | None = None,
    linear: bool = False,
    band_dropout: float = 0.0,
    seed: int = 0,
):
    """A reference LatentMIM of a named size, every weight drawn at random (seeded), eval mode."""
    d, depth, heads = SIZES[size]
    tok = None
    if band_groups:
        tok = TokenizationConfig(
            overrides={k: ModalityTokenization(band_groups=v) for k, v in band_groups.items()}
        )
    enc = RefEncoderConfig(
        supported_modality_names=V1_MODALITIES,
        embedding_size=d,
        depth=depth,
        num_heads=heads,
        mlp_ratio=4.0,
        max_sequence_length=12,
        drop_path=0.1,
        tokenization_config=tok,
        use_linear_patch_embed=linear or bool(hidden),
        patch_embed_hidden_sizes=hidden,
        band_dropout_rate=band_dropout,
    )
    dec = PredictorConfig(
        supported_modality_names=V1_MODALITIES,
        encoder_embedding_size=d,
        decoder_embedding_size=d,
        depth=1,
        num_heads=heads,
        mlp_ratio=4.0,
        max_sequence_length=12,
        tokenization_config=tok,
    )
    config = LatentMIMConfig(enc, dec)
    torch.manual_seed(seed)
    model = config.build()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "month_embed" in name:
                continue  # a fixed table, not a weight
            scale = 1.0 if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")) else 0.0
            p.copy_(scale + 0.05 * torch.randn(p.shape, generator=g))
    return config, model.eval()


def save_published(config, model, out: Path, only_decode: list[str] | None = None) -> Path:
    """config.json (training config, model under "model") + weights.pth, as published."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"model": config.as_dict(include_class_name=True, json_safe=True)}
    if only_decode is not None:
        payload["train_module"] = {
            "masking_config": {"strategy_config": {"only_decode_modalities": only_decode}}
        }
    (out / "config.json").write_text(json.dumps(payload))
    torch.save(model.state_dict(), out / "weights.pth")
    return out


# --- real windows --------------------------------------------------------------------------------
def _read(path: Path) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        return src.read()


@dataclass
class Window:
    """Raw stored values of one batch: per modality [B, T, C, H, W], band names, validity."""

    raw: dict[str, np.ndarray]
    bands: dict[str, list[str]]
    valid: dict[str, np.ndarray]
    """[B, T] bool: whether the time step is observed (whole frames go missing), or
    [B, T, H, W] per pixel (clouds over part of a frame)."""
    timestamps: np.ndarray
    """[B, T, 3] day, month 0-11, year."""


def real_window(size: int, batch: int = 2) -> Window:
    """S2 (5 dates, Slovenia; its L1C DN stand in for L2A values: the parity is about the
    arithmetic), S1 (Spain, one date, at t=1) and Landsat 8 (three bands B2-B4, one date, at
    t=3) cropped to size x size; S2 time step 2 is missing in every sample."""
    s2 = _read(REAL / "s2_slovenia_eolearn/s2_l1c_5dates_13bands.tif").reshape(5, 13, 101, 100)
    l1c = [
        "B01",
        "B02",
        "B03",
        "B04",
        "B05",
        "B06",
        "B07",
        "B08",
        "B8A",
        "B09",
        "B10",
        "B11",
        "B12",
    ]
    keep = [i for i, b in enumerate(l1c) if b != "B10"]
    s1 = _read(REAL / "sen1floods11_spain/Spain_7370579_S1Hand.tif")  # VV, VH dB
    ls = _read(REAL / "landsat/landsat8_LC80460282016177_B2B3B4_crop512.tif")
    t = 5
    out = {k: [] for k in ("s2", "s1", "ls")}
    for b in range(batch):
        r0 = 8 * b
        out["s2"].append(s2[:, keep, r0 : r0 + size, r0 : r0 + size].astype(np.float32))
        frame = s1[:, 100 + r0 : 100 + r0 + size, 100 : 100 + size].astype(np.float32)
        s1_t = np.zeros((t, 2, size, size), np.float32)
        s1_t[1] = frame
        out["s1"].append(s1_t)
        ls_t = np.zeros((t, 3, size, size), np.float32)
        ls_t[3] = ls[:, 200 + r0 : 200 + r0 + size, 200 : 200 + size].astype(np.float32)
        out["ls"].append(ls_t)
    s2_valid = np.ones((batch, t), bool)
    s2_valid[:, 2] = False
    one = np.zeros((batch, t), bool)
    s1_valid, ls_valid = one.copy(), one.copy()
    s1_valid[:, 1] = True
    ls_valid[:, 3] = True
    stamps = np.array([[11, 6, 2015], [31, 6, 2015], [20, 7, 2015], [30, 7, 2015], [9, 8, 2015]])
    return Window(
        raw={
            "sentinel2_l2a": np.stack(out["s2"]),
            "sentinel1": np.stack(out["s1"]),
            "landsat": np.stack(out["ls"]),
        },
        bands={
            "sentinel2_l2a": [l1c[i] for i in keep],
            "sentinel1": ["vv", "vh"],
            "landsat": ["B2", "B3", "B4"],
        },
        valid={"sentinel2_l2a": s2_valid, "sentinel1": s1_valid, "landsat": ls_valid},
        timestamps=np.repeat(stamps[None], batch, axis=0).astype(np.int64),
    )


def reference_normalise(window: Window, model_type: str) -> dict[str, np.ndarray]:
    """The reference normaliser's values, [B, H, W, T, C] in its band order, missing bands as
    NaN in their place (how its normaliser is told which bands are missing)."""
    normalizer = ref.Normalizer(model_type=model_type)
    out = {}
    for name, raw in window.raw.items():
        spec = RefModality.get(name)
        order = list(spec.band_order)
        where = {b.upper(): i for i, b in enumerate(window.bands[name])}
        full = np.full((*raw.shape[:2], len(order), *raw.shape[3:]), np.nan, np.float64)
        for j, band in enumerate(order):
            if band.upper() in where:
                full[:, :, j] = raw[:, :, where[band.upper()]]
        x = np.transpose(full, (0, 3, 4, 1, 2))  # [B, H, W, T, C]
        with np.errstate(invalid="ignore"):
            out[name] = normalizer.normalize(spec, x).astype(np.float32)
    return out


def reference_sample(
    window: Window, normalised: dict[str, np.ndarray], model
) -> MaskedOlmoEarthSample:
    """A MaskedOlmoEarthSample: data as normalised, masks 0 (encode) or 3 (missing) per band set."""
    kw = {"timestamps": torch.from_numpy(window.timestamps)}
    tok = model.encoder.patch_embeddings.tokenization_config
    for name, x in normalised.items():
        b, h, w, t, _ = x.shape
        n_sets = tok.get_num_bandsets(name)
        valid = torch.from_numpy(window.valid[name])  # [B, T] or [B, T, H, W]
        if valid.ndim == 2:
            valid = valid[:, :, None, None].expand(b, t, h, w)
        valid = valid.permute(0, 2, 3, 1)  # [B, H, W, T], the reference's layout
        mask = torch.where(valid, 0, 3)[..., None].expand(b, h, w, t, n_sets)
        data = torch.from_numpy(x) * valid[..., None]
        kw[name] = data.contiguous()
        kw[f"{name}_mask"] = mask.contiguous()
    return MaskedOlmoEarthSample(**kw)


def reference_outputs(model, sample, patch_size: int) -> dict:
    with torch.no_grad():
        out = model.encoder(sample, patch_size=patch_size, input_res=10)
    tm = out["tokens_and_masks"]
    return {
        "tokens": {m: getattr(tm, m) for m in tm.modalities},
        "masks": {m: getattr(tm, f"{m}_mask") for m in tm.modalities},
        "pooled": tm.pool_unmasked_tokens(PoolingType.MEAN, spatial_pooling=False),
        "projected": out["project_aggregated"],
    }

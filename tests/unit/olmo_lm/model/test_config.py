import pytest

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.config import PRESETS, SMALL_PRESETS, TransformerConfig

# totals with embeddings: the model cards' figures (OLMo 2, Olmo 3, OLMoE); for Olmo Hybrid
# ("7B") and FlexOlmo ("7x7B") the count of the released config.json shapes, which
# test_hf_parity also checks against transformers' own models of those configs
PUBLISHED = {
    "olmo2_1B": 1.485e9,
    "olmo2_7B": 7.30e9,
    "olmo2_13B": 13.72e9,
    "olmo2_32B": 32.23e9,
    "olmo3_7B": 7.30e9,
    "olmo3_32B": 32.23e9,
    "olmoe_1B_7B": 6.92e9,
    "olmo_hybrid_7B": 7.4e9,
    "flex_olmo_7x7B": 33.3e9,
}


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_published_parameter_counts(preset):
    assert PRESETS[preset]().num_params() == pytest.approx(PUBLISHED[preset], rel=0.01)


def test_exact_counts_of_known_shapes():
    # OLMo 2 7B: 32 x (4 x 4096^2 attention + 8192 qk-norm + 3 x 4096 x 11008 + 8192 norms)
    # + final norm + untied 100352 x 4096 embedding and head
    d, h, v, n = 4096, 11008, 100_352, 32
    expected = n * (4 * d * d + 2 * d + 3 * d * h + 2 * d) + d + 2 * v * d
    assert TransformerConfig.olmo2_7B().num_params() == expected
    olmoe = TransformerConfig.olmoe_1B_7B()
    assert olmoe.active_params() == pytest.approx(1.28e9, rel=0.01)
    # OLMo-core's olmo2_30M shape at vocab 4096 (the benchmark's)
    small = TransformerConfig(vocab_size=4096, d_model=256, n_layers=4, n_heads=8)
    assert small.num_params() == 5_509_376


def test_olmo3_layers_and_rope():
    cfg = TransformerConfig.olmo3_7B()
    kinds = cfg.resolved_layer_types
    assert kinds.count("sliding_attention") == 24 and kinds[-1] == "full_attention"
    assert kinds[:4] == ["sliding_attention"] * 3 + ["full_attention"]
    assert cfg.rope_scaling.kind == "yarn" and cfg.rope_scaling.factor == 8
    odd = TransformerConfig(
        n_layers=6, layer_pattern=["sliding_attention"] * 3 + ["full_attention"]
    )
    assert odd.resolved_layer_types[-1] == "full_attention"  # last layer always full


def test_hybrid_pattern():
    kinds = TransformerConfig.olmo_hybrid_7B().resolved_layer_types
    assert kinds.count("gated_deltanet") == 24 and kinds.count("full_attention") == 8
    assert kinds[3::4] == ["full_attention"] * 8


@pytest.mark.parametrize(
    "size, nonembedding",
    [("1M", 1e6), ("10M", 11e6), ("30M", 27e6), ("100M", 85e6), ("300M", 308e6)],
)
def test_cpu_ladder(size, nonembedding):
    cfg = TransformerConfig.olmo2_ladder(size)
    assert cfg.num_params(embeddings=False) == pytest.approx(nonembedding, rel=0.1)


@pytest.mark.parametrize("name", SMALL_PRESETS)
def test_small_presets_build(name):
    cfg = PRESETS[name]()
    model = cfg.build()
    assert sum(p.numel() for p in model.parameters()) == cfg.num_params() < 5e6


def test_defaults_are_olmo2():
    cfg = TransformerConfig()
    assert cfg.rope_theta == 500_000 and cfg.block == "reordered_norm" and cfg.qk_norm
    assert cfg.resolved_mlp_hidden == 512  # int(8 * 128 / 3) = 341 -> next multiple of 256


def test_nested_configs_from_dicts():
    cfg = TransformerConfig(ffn="moe", moe={"n_experts": 4, "top_k": 1})
    assert cfg.moe.n_experts == 4
    with pytest.raises(TrainCoreConfigError, match="top_k"):
        TransformerConfig(ffn="moe", moe={"n_experts": 2, "top_k": 3})


def test_flops_count_head_and_attention():
    cfg = TransformerConfig.tiny()
    weights = cfg.num_params(embeddings=False) + cfg.vocab_size * cfg.d_model
    expected = 6 * weights + 12 * cfg.n_layers * cfg.d_model * 128
    assert cfg.train_flops_per_token(128) == pytest.approx(expected)
    olmo3 = TransformerConfig.olmo3_tiny()
    # sliding layers see at most the window
    assert olmo3.train_flops_per_token(4096) < olmo3.replace(
        layer_pattern=["full_attention"], rope_scaling=None
    ).train_flops_per_token(4096)

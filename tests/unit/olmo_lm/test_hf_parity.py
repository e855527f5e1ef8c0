"""Parity with transformers, an independent implementation of every family (test dependency).

Tiny random models are built from transformers' own config classes (nothing downloaded),
converted into ours, and must give the same logits within 1e-4 in fp32: prefill, and decoding
token by token through our cache. Converting back gives transformers' saved state dict, and a
checkpoint we write loads in transformers and gives the same logits.
"""

import json

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="missing component: transformers (the dev extra)"
)

from olmo_lm import hf  # noqa: E402

ATOL = 1e-4
COMMON = dict(
    vocab_size=97,
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=160,
    pad_token_id=0,
    bos_token_id=None,
    eos_token_id=1,
    rms_norm_eps=1e-6,
)
FAMILIES = {
    "olmo2": lambda: transformers.Olmo2Config(**COMMON, rope_theta=500_000.0),
    "olmo3": lambda: transformers.Olmo3Config(
        **COMMON,
        sliding_window=8,
        rope_theta=500_000.0,
        rope_scaling={
            "rope_type": "yarn",
            "factor": 4.0,
            "original_max_position_embeddings": 40,
            "attention_factor": 1.2,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
        },
    ),
    "olmoe": lambda: transformers.OlmoeConfig(
        **{**COMMON, "intermediate_size": 32},
        num_experts=8,
        num_experts_per_tok=2,
        clip_qkv=0.6,
    ),
    "flex_olmo": lambda: transformers.FlexOlmoConfig(
        **{**COMMON, "intermediate_size": 48}, num_experts=4, num_experts_per_tok=2
    ),
    "olmo_hybrid": lambda: transformers.OlmoHybridConfig(
        **COMMON,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=16,
        linear_value_head_dim=24,
        rope_parameters={"rope_type": "default", "rope_theta": 500_000.0},
    ),
}
MODELS = {
    "olmo2": "Olmo2ForCausalLM",
    "olmo3": "Olmo3ForCausalLM",
    "olmoe": "OlmoeForCausalLM",
    "flex_olmo": "FlexOlmoForCausalLM",
    "olmo_hybrid": "OlmoHybridForCausalLM",
}


def reference(family: str):
    """A seeded random transformers model whose every weight (norms included) is non-trivial."""
    torch.manual_seed(0)
    config = FAMILIES[family]()
    config._attn_implementation = "eager"
    model = getattr(transformers, MODELS[family])(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name or "layer_norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif "router" in name or name.endswith("mlp.gate.weight"):
                p.copy_(0.5 * torch.randn_like(p))
    return model


def ours_from(model):
    cfg = hf.config_from_hf(model.config.to_dict())
    ours = cfg.build().eval()
    ours.load_state_dict(hf.state_dict_from_hf(cfg, model.state_dict()), strict=True)
    return cfg, ours


TOKENS = torch.randint(2, 97, (2, 78), generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module", params=list(FAMILIES))
def pair(request):
    model = reference(request.param)
    cfg, ours = ours_from(model)
    return request.param, model, cfg, ours


def test_family_is_recognised(pair):
    family, _, cfg, _ = pair
    assert hf.family_of(cfg) == family


def test_prefill_logits_match(pair):
    family, model, _, ours = pair
    with torch.no_grad():
        ref = model(TOKENS).logits
        got = ours(TOKENS)
    diff = (got - ref).abs().max().item()
    print(f"{family} prefill max |diff| = {diff:.2e}")
    assert diff < ATOL


def test_cached_decoding_matches_full_reference(pair):
    family, model, _, ours = pair
    prompt = 70  # past one 64-token GDN chunk and several 8-token windows
    with torch.no_grad():
        ref = model(TOKENS).logits[:, prompt - 1 :]
        cache = ours.new_cache(TOKENS.shape[1])
        steps = [ours(TOKENS[:, :prompt], cache=cache)[:, -1:]]
        for t in range(prompt, TOKENS.shape[1]):
            steps.append(ours(TOKENS[:, t : t + 1], cache=cache))
    diff = (torch.cat(steps, 1) - ref).abs().max().item()
    print(f"{family} cached decoding max |diff| = {diff:.2e}")
    assert diff < ATOL


def test_converting_back_gives_the_saved_state_dict(pair, tmp_path):
    _family, model, cfg, ours = pair
    model.save_pretrained(tmp_path)
    back = hf.state_dict_to_hf(cfg, ours.state_dict())
    for reference_state in (hf.read_safetensors_dir(tmp_path), model.state_dict()):
        published = hf.to_published_layout(cfg, reference_state)
        assert set(back) == set(published)
        for key, tensor in published.items():
            torch.testing.assert_close(back[key], tensor, rtol=0, atol=0, msg=key)


def test_published_layout_loads(pair, tmp_path):
    _family, model, _, ours = pair
    model.save_pretrained(tmp_path)
    cfg, state, token_ids = hf.load_hf(tmp_path)
    assert token_ids["eos_token_id"] == 1
    again = cfg.build().eval()
    again.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(again(TOKENS[:, :20]), ours(TOKENS[:, :20]), rtol=0, atol=0)


def test_our_checkpoint_serves_in_transformers(pair, tmp_path):
    family, _model, cfg, ours = pair
    hf.save_hf(cfg, ours.state_dict(), tmp_path, max_shard_bytes=200_000, eos_token_id=1)
    assert (tmp_path / "model.safetensors.index.json").exists()  # sharded
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["model_type"] == family
    loaded = getattr(transformers, MODELS[family]).from_pretrained(
        tmp_path, attn_implementation="eager"
    )
    with torch.no_grad():
        diff = (loaded(TOKENS).logits - ours(TOKENS)).abs().max().item()
    assert diff < ATOL
    assert hf.config_from_hf(loaded.config.to_dict()) == cfg


@pytest.mark.parametrize(
    "preset",
    [
        "olmo2_1B",
        "olmo2_13B",
        "olmo3_7B",
        "olmo3_32B",
        "olmoe_1B_7B",
        "olmo_hybrid_7B",
        "flex_olmo_7x7B",
    ],
)
def test_published_presets_count_as_transformers_builds_them(preset):
    from olmo_lm.model.config import PRESETS

    cfg = PRESETS[preset]()
    hf_config = hf.config_to_hf(cfg, pad_token_id=1)
    config = transformers.AutoConfig.for_model(**hf_config)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == cfg.num_params()
    # the same architecture back (ours may spell defaults explicitly, e.g. n_kv_heads)
    back = hf.config_from_hf(config.to_dict())
    assert hf.config_to_hf(back, pad_token_id=1) == hf_config


@pytest.mark.parametrize(
    "scaling",
    [
        {"rope_type": "linear", "factor": 4.0},
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        {
            "rope_type": "yarn",
            "factor": 8.0,
            "original_max_position_embeddings": 8192,
            "attention_factor": 1.2079441541679836,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
        },
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096},
    ],
    ids=["linear", "llama3", "yarn-olmo3", "yarn-default-attention"],
)
def test_rope_scalings_match_transformers(scaling):
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from olmo_lm.model.layers.rotary import inverse_frequencies

    config = transformers.Olmo2Config(
        hidden_size=512,
        num_attention_heads=4,
        max_position_embeddings=65_536,
        rope_parameters={"rope_theta": 500_000.0, **scaling},
    )
    ref, ref_attention = ROPE_INIT_FUNCTIONS[scaling["rope_type"]](config)
    _, s = hf._rope_from_hf(config.rope_parameters, config.to_dict())
    ours, attention = inverse_frequencies(128, 500_000.0, s)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=0)
    assert attention == pytest.approx(ref_attention)

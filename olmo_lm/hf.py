"""Checkpoint interchange with the transformers layout (config.json + safetensors shards).

Five ``model_type``s map onto ``TransformerConfig``: ``olmo2``, ``olmo3``, ``olmoe``,
``flex_olmo`` and ``olmo_hybrid``. Weights are written in the *published* layout, the one on
the hub and the one transformers and vLLM read: per-expert ``mlp.experts.{e}.*_proj`` for MoE
models, separate ``q/k/v_conv1d`` and ``attention_layer_norm``/``feedforward_layer_norm`` for
Olmo Hybrid's Gated DeltaNet layers. Reading also accepts transformers' in-memory layout
(stacked ``experts.gate_up_proj``, fused ``conv1d``, ``input_layernorm``), so a state dict
taken straight from a transformers model converts as well.

Nothing here imports transformers: the layout is plain names and shapes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from earthplat.traincore.errors import TrainCoreConfigError
from olmo_lm.model.config import GatedDeltaNetConfig, MoEConfig, TransformerConfig
from olmo_lm.model.layers.rotary import RopeScalingConfig
from olmo_lm.safetensors_dir import read_safetensors_dir, write_safetensors_dir

FAMILIES = ("olmo2", "olmo3", "olmoe", "flex_olmo", "olmo_hybrid")
ARCHITECTURES = {
    "olmo2": "Olmo2ForCausalLM",
    "olmo3": "Olmo3ForCausalLM",
    "olmoe": "OlmoeForCausalLM",
    "flex_olmo": "FlexOlmoForCausalLM",
    "olmo_hybrid": "OlmoHybridForCausalLM",
}
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "vocab.json",
    "merges.txt",
)
_HF_MIXER = {"gated_deltanet": "linear_attention"}
_OUR_MIXER = {"linear_attention": "gated_deltanet"}


# --- configs --------------------------------------------------------------------------------
def family_of(cfg: TransformerConfig) -> str:
    """The transformers ``model_type`` that expresses ``cfg`` exactly."""
    kinds = set(cfg.resolved_layer_types)
    if "gated_deltanet" in kinds:
        if cfg.ffn != "mlp" or cfg.block != "reordered_norm" or "sliding_attention" in kinds:
            raise TrainCoreConfigError(
                "olmo_hybrid checkpoints hold dense reordered-norm attention layers between "
                "Gated DeltaNet layers; this config mixes in other kinds"
            )
        return "olmo_hybrid"
    if cfg.ffn == "moe":
        if "sliding_attention" in kinds or cfg.rope_scaling is not None:
            raise TrainCoreConfigError(
                "MoE checkpoints (olmoe, flex_olmo) have no sliding-window layers or RoPE scaling"
            )
        return "olmoe" if cfg.block == "pre_norm" else "flex_olmo"
    if cfg.block != "reordered_norm":
        raise TrainCoreConfigError("dense pre-norm decoders are not an OLMo checkpoint layout")
    return "olmo3" if "sliding_attention" in kinds else "olmo2"


def _rope_to_hf(cfg: TransformerConfig, scaled: bool) -> dict:
    params: dict = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    s = cfg.rope_scaling
    if scaled and s is not None:
        params.update(rope_type=s.kind, factor=s.factor)
        params["original_max_position_embeddings"] = s.original_max_seq_len
        if s.kind == "yarn":
            params.update(beta_fast=s.beta_fast, beta_slow=s.beta_slow)
            if s.attention_factor is not None:
                params["attention_factor"] = s.attention_factor
        elif s.kind == "llama3":
            params.update(low_freq_factor=s.low_freq_factor, high_freq_factor=s.high_freq_factor)
    return params


def config_to_hf(cfg: TransformerConfig, **token_ids: int | None) -> dict:
    """``config.json`` contents for ``cfg`` (``token_ids``: bos/eos/pad_token_id)."""
    family = family_of(cfg)
    out: dict = {
        "architectures": [ARCHITECTURES[family]],
        "model_type": family,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model,
        "intermediate_size": cfg.moe_hidden if cfg.ffn == "moe" else cfg.resolved_mlp_hidden,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": cfg.init_std,
    }
    if cfg.resolved_head_dim != cfg.d_model // cfg.n_heads:
        out["head_dim"] = cfg.resolved_head_dim
    if not cfg.qk_norm:
        raise TrainCoreConfigError("the OLMo checkpoint layouts all have QK-norm (qk_norm: true)")
    if family == "olmo3":
        out["sliding_window"] = cfg.sliding_window
        out["layer_types"] = cfg.resolved_layer_types
        out["rope_parameters"] = {
            "full_attention": _rope_to_hf(cfg, scaled=True),
            "sliding_attention": _rope_to_hf(cfg, scaled=False),
        }
    elif family == "olmo_hybrid":
        heads, v_heads, dk, dv = cfg.gdn_dims
        out["layer_types"] = [_HF_MIXER.get(k, k) for k in cfg.resolved_layer_types]
        out.update(
            linear_num_key_heads=heads,
            linear_num_value_heads=v_heads,
            linear_key_head_dim=dk,
            linear_value_head_dim=dv,
            linear_conv_kernel_dim=cfg.gdn.conv_kernel,
            linear_allow_neg_eigval=cfg.gdn.allow_neg_eigval,
        )
        out["rope_parameters"] = _rope_to_hf(cfg, scaled=True) if cfg.rope else None
    else:
        out["rope_parameters"] = _rope_to_hf(cfg, scaled=True)
    if family in ("olmoe", "flex_olmo"):
        out.update(
            num_experts=cfg.moe.n_experts,
            num_experts_per_tok=cfg.moe.top_k,
            norm_topk_prob=cfg.moe.norm_topk_prob,
            router_aux_loss_coef=cfg.moe.lb_loss_weight,
            output_router_logits=False,
        )
        if family == "olmoe":
            out["clip_qkv"] = cfg.clip_qkv
    elif cfg.clip_qkv is not None:
        raise TrainCoreConfigError(f"{family} checkpoints have no clip_qkv")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        out[key] = token_ids.get(key)
    return out


def _rope_from_hf(params: dict | None, hf: dict) -> tuple[float, RopeScalingConfig | None]:
    if params is None:
        params = dict(hf.get("rope_scaling") or {})
        params.setdefault("rope_theta", hf.get("rope_theta", 10_000.0))
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10_000.0)))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind == "default":
        return theta, None
    if kind not in ("linear", "llama3", "yarn"):
        raise TrainCoreConfigError(f"RoPE scaling {kind!r} is not supported (linear, llama3, yarn)")
    s = RopeScalingConfig(kind=kind, factor=float(params["factor"]))
    if "original_max_position_embeddings" in params:
        s.original_max_seq_len = int(params["original_max_position_embeddings"])
    for ours, theirs in (
        ("attention_factor", "attention_factor"),
        ("beta_fast", "beta_fast"),
        ("beta_slow", "beta_slow"),
        ("low_freq_factor", "low_freq_factor"),
        ("high_freq_factor", "high_freq_factor"),
        ("truncate", "truncate"),
    ):
        if params.get(theirs) is not None:
            setattr(s, ours, params[theirs])
    return theta, s


def config_from_hf(hf: dict) -> TransformerConfig:
    """``TransformerConfig`` of a transformers ``config.json`` of one of ``FAMILIES``."""
    family = hf.get("model_type")
    if family not in FAMILIES:
        raise TrainCoreConfigError(
            f"model_type {family!r} is not an OLMo family checkpoint; supported: {FAMILIES}"
        )
    if hf.get("attention_bias"):
        raise TrainCoreConfigError("attention biases are not part of the OLMo layouts")
    if hf.get("hidden_act", "silu") != "silu":
        raise TrainCoreConfigError(f"hidden_act {hf['hidden_act']!r} is not supported (silu)")
    n_heads = hf["num_attention_heads"]
    kw: dict = dict(
        vocab_size=hf["vocab_size"],
        d_model=hf["hidden_size"],
        n_layers=hf["num_hidden_layers"],
        n_heads=n_heads,
        n_kv_heads=hf.get("num_key_value_heads") or n_heads,
        head_dim=hf.get("head_dim"),
        max_seq_len=hf.get("max_position_embeddings", 4096),
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        init_std=hf.get("initializer_range", 0.02),
    )
    rope = hf.get("rope_parameters")
    if family == "olmo3":
        if rope is not None and "full_attention" in rope:
            theta, scaling = _rope_from_hf(rope["full_attention"], hf)
            plain, plain_scaling = _rope_from_hf(rope.get("sliding_attention"), hf)
            if plain != theta or plain_scaling is not None:
                raise TrainCoreConfigError(
                    "sliding-window layers with their own RoPE base or scaling are not supported"
                )
        else:
            theta, scaling = _rope_from_hf(rope, hf)
        kinds = hf.get("layer_types") or [
            "sliding_attention" if (i + 1) % 4 else "full_attention"
            for i in range(hf["num_hidden_layers"])
        ]
        kw.update(
            rope_theta=theta,
            rope_scaling=scaling,
            layer_types=list(kinds),
            sliding_window=hf.get("sliding_window") or 4096,
        )
    elif family == "olmo_hybrid":
        if rope is None and hf.get("rope_theta") is None:
            kw["rope"] = False
        else:
            kw["rope_theta"], kw["rope_scaling"] = _rope_from_hf(rope, hf)
        kw["layer_types"] = [_OUR_MIXER.get(k, k) for k in hf["layer_types"]]
        kw["gdn"] = GatedDeltaNetConfig(
            n_heads=hf.get("linear_num_key_heads") or n_heads,
            n_v_heads=hf.get("linear_num_value_heads") or n_heads,
            head_k_dim=hf.get("linear_key_head_dim"),
            head_v_dim=hf.get("linear_value_head_dim"),
            conv_kernel=hf.get("linear_conv_kernel_dim", 4),
            allow_neg_eigval=hf.get("linear_allow_neg_eigval", True),
        )
    else:
        kw["rope_theta"], kw["rope_scaling"] = _rope_from_hf(rope, hf)
    if family in ("olmoe", "flex_olmo"):
        kw.update(
            ffn="moe",
            block="pre_norm" if family == "olmoe" else "reordered_norm",
            moe=MoEConfig(
                n_experts=hf["num_experts"],
                top_k=hf["num_experts_per_tok"],
                hidden=hf["intermediate_size"],
                norm_topk_prob=bool(hf.get("norm_topk_prob", False)),
                lb_loss_weight=hf.get("router_aux_loss_coef", 0.01),
            ),
            clip_qkv=hf.get("clip_qkv"),
        )
    else:
        kw["mlp_hidden"] = hf["intermediate_size"]
    return TransformerConfig(**kw)


# --- weights --------------------------------------------------------------------------------
def _layer_names(cfg: TransformerConfig, i: int) -> dict[str, str]:
    """Our parameter name -> published name, for the non-expert parameters of layer ``i``."""
    kind = cfg.resolved_layer_types[i]
    ours, hf = f"blocks.{i}.", f"model.layers.{i}."
    names = {}
    if kind == "gated_deltanet":
        for p in "qkvabgo":
            names[f"mixer.w_{p}.weight"] = f"linear_attn.{p}_proj.weight"
        names.update(
            {
                "mixer.A_log": "linear_attn.A_log",
                "mixer.dt_bias": "linear_attn.dt_bias",
                "mixer.o_norm.weight": "linear_attn.o_norm.weight",
                "mixer_norm.weight": "attention_layer_norm.weight",
                "ffn_norm.weight": "feedforward_layer_norm.weight",
            }
        )
    else:
        for p in "qkvo":
            names[f"mixer.w_{p}.weight"] = f"self_attn.{p}_proj.weight"
        names["mixer.q_norm.weight"] = "self_attn.q_norm.weight"
        names["mixer.k_norm.weight"] = "self_attn.k_norm.weight"
        if cfg.block == "pre_norm":
            names["mixer_norm.weight"] = "input_layernorm.weight"
            names["ffn_norm.weight"] = "post_attention_layernorm.weight"
        else:
            names["mixer_norm.weight"] = "post_attention_layernorm.weight"
            names["ffn_norm.weight"] = "post_feedforward_layernorm.weight"
    if cfg.ffn == "moe":
        names["ffn.router.weight"] = "mlp.gate.weight"
    else:
        for ours_p, theirs in (("gate", "gate"), ("up", "up"), ("down", "down")):
            names[f"ffn.w_{ours_p}.weight"] = f"mlp.{theirs}_proj.weight"
    return {ours + k: hf + v for k, v in names.items()}


def state_dict_to_hf(
    cfg: TransformerConfig, state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Our state dict -> the published transformers layout."""
    out = {
        "model.embed_tokens.weight": state["embed.weight"],
        "model.norm.weight": state["norm.weight"],
    }
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = state["lm_head.weight"]
    for i in range(cfg.n_layers):
        for ours, theirs in _layer_names(cfg, i).items():
            out[theirs] = state[ours]
        base = f"model.layers.{i}."
        if cfg.resolved_layer_types[i] == "gated_deltanet":
            conv = state[f"blocks.{i}.mixer.conv_weight"]
            _, _, dk, _ = cfg.gdn_dims
            key_dim = cfg.gdn_dims[0] * dk
            q, k, v = conv.split((key_dim, key_dim, conv.shape[0] - 2 * key_dim))
            for name, part in zip("qkv", (q, k, v)):
                out[f"{base}linear_attn.{name}_conv1d.weight"] = part.contiguous()
        if cfg.ffn == "moe":
            gate_up = state[f"blocks.{i}.ffn.experts.w_gate_up"]  # [E, 2H, D]
            down = state[f"blocks.{i}.ffn.experts.w_down"]  # [E, D, H]
            gate, up = gate_up.split(cfg.moe_hidden, dim=1)
            for e in range(cfg.moe.n_experts):
                out[f"{base}mlp.experts.{e}.gate_proj.weight"] = gate[e].contiguous()
                out[f"{base}mlp.experts.{e}.up_proj.weight"] = up[e].contiguous()
                out[f"{base}mlp.experts.{e}.down_proj.weight"] = down[e].contiguous()
    return out


def to_published_layout(
    cfg: TransformerConfig, hf: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Bring transformers' in-memory layout, or what its ``save_pretrained`` writes, to the
    published one (a no-op on published dicts). transformers saves an Olmo Hybrid attention
    layer's post-attention norm as ``feedforward_layer_norm`` (its load-time rename run
    backwards); the released checkpoints call it ``post_attention_layernorm``. It also splits
    the fused Gated DeltaNet conv into equal thirds, which the q/k/v split here undoes."""
    hf = dict(hf)
    for i in range(cfg.n_layers):
        base = f"model.layers.{i}."
        if cfg.resolved_layer_types[i] != "gated_deltanet":
            misnamed = hf.pop(base + "feedforward_layer_norm.weight", None)
            if misnamed is not None:
                hf[base + "post_attention_layernorm.weight"] = misnamed
        else:
            if base + "input_layernorm.weight" in hf:
                hf[base + "attention_layer_norm.weight"] = hf.pop(base + "input_layernorm.weight")
                hf[base + "feedforward_layer_norm.weight"] = hf.pop(
                    base + "post_attention_layernorm.weight"
                )
            fused = hf.pop(base + "linear_attn.conv1d.weight", None)
            key_dim = cfg.gdn_dims[0] * cfg.gdn_dims[2]
            q_conv = hf.get(base + "linear_attn.q_conv1d.weight")
            if fused is None and q_conv is not None and q_conv.shape[0] != key_dim:
                # transformers 5.x's save_pretrained splits the fused conv into three equal
                # thirds; q, k and v are key_dim, key_dim and value_dim channels
                fused = torch.cat([hf.pop(f"{base}linear_attn.{n}_conv1d.weight") for n in "qkv"])
            if fused is not None:
                parts = fused.split((key_dim, key_dim, fused.shape[0] - 2 * key_dim))
                for name, part in zip("qkv", parts):
                    hf[f"{base}linear_attn.{name}_conv1d.weight"] = part
        stacked = hf.pop(base + "mlp.experts.gate_up_proj", None)
        if stacked is not None:
            gate, up = stacked.split(cfg.moe_hidden, dim=1)
            down = hf.pop(base + "mlp.experts.down_proj")
            for e in range(stacked.shape[0]):
                hf[f"{base}mlp.experts.{e}.gate_proj.weight"] = gate[e]
                hf[f"{base}mlp.experts.{e}.up_proj.weight"] = up[e]
                hf[f"{base}mlp.experts.{e}.down_proj.weight"] = down[e]
    return hf


def state_dict_from_hf(
    cfg: TransformerConfig, hf: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A published (or transformers in-memory) state dict -> ours. Every tensor must be used:
    a left-over or missing name means the checkpoint is not the architecture ``cfg`` says."""
    hf = to_published_layout(cfg, hf)
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        if name not in hf:
            raise TrainCoreConfigError(f"checkpoint lacks {name}; is config.json the right one?")
        used.add(name)
        return hf[name]

    out = {
        "embed.weight": take("model.embed_tokens.weight"),
        "norm.weight": take("model.norm.weight"),
    }
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = take("lm_head.weight")
    elif "lm_head.weight" in hf:
        used.add("lm_head.weight")  # a tied copy
    for i in range(cfg.n_layers):
        base = f"model.layers.{i}."
        for ours, theirs in _layer_names(cfg, i).items():
            out[ours] = take(theirs)
        if cfg.resolved_layer_types[i] == "gated_deltanet":
            out[f"blocks.{i}.mixer.conv_weight"] = torch.cat(
                [take(f"{base}linear_attn.{n}_conv1d.weight") for n in "qkv"]
            )
        if cfg.ffn == "moe":
            experts = range(cfg.moe.n_experts)
            gate = [take(f"{base}mlp.experts.{e}.gate_proj.weight") for e in experts]
            up = [take(f"{base}mlp.experts.{e}.up_proj.weight") for e in experts]
            down = [take(f"{base}mlp.experts.{e}.down_proj.weight") for e in experts]
            out[f"blocks.{i}.ffn.experts.w_gate_up"] = torch.cat(
                (torch.stack(gate), torch.stack(up)), dim=1
            )
            out[f"blocks.{i}.ffn.experts.w_down"] = torch.stack(down)
    unused = sorted(set(hf) - used - {k for k in hf if k.startswith("mtp.")})
    if unused:
        raise TrainCoreConfigError(
            f"checkpoint has {len(unused)} tensors the config does not account for, e.g. "
            f"{unused[:3]}; is config.json the right one?"
        )
    return out


def load_hf(path: str | Path) -> tuple[TransformerConfig, dict[str, torch.Tensor], dict]:
    """(config, our state dict, token ids) of a transformers checkpoint directory."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.exists():
        raise TrainCoreConfigError(f"{path} has no config.json; pass a transformers model dir")
    hf_config = json.loads(config_file.read_text())
    cfg = config_from_hf(hf_config)
    state = state_dict_from_hf(cfg, read_safetensors_dir(path))
    token_ids = {k: hf_config.get(k) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    return cfg, state, token_ids


def save_hf(
    cfg: TransformerConfig,
    state: dict[str, torch.Tensor],
    path: str | Path,
    *,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = 5 * 1024**3,
    tokenizer_dir: str | Path | None = None,
    **token_ids: int | None,
) -> Path:
    """Write a transformers checkpoint directory for our ``state`` (optionally cast)."""
    path = Path(path)
    hf_state = state_dict_to_hf(cfg, state)
    if dtype is not None:
        hf_state = {k: v.to(dtype) for k, v in hf_state.items()}
    write_safetensors_dir(hf_state, path, max_shard_bytes)
    config = config_to_hf(cfg, **token_ids)
    config["dtype"] = str(next(iter(hf_state.values())).dtype).removeprefix("torch.")
    (path / "config.json").write_text(json.dumps(config, indent=2))
    if tokenizer_dir is not None:
        copy_tokenizer(tokenizer_dir, path)
    return path


def copy_tokenizer(src: str | Path, dst: str | Path) -> list[str]:
    """Copy the tokenizer files ``src`` holds (``TOKENIZER_FILES``) into ``dst``."""
    copied = []
    for name in TOKENIZER_FILES:
        if (Path(src) / name).exists() and Path(src).resolve() != Path(dst).resolve():
            shutil.copy2(Path(src) / name, Path(dst) / name)
            copied.append(name)
    return copied

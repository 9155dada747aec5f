"""Llama-style decoders (separate q/k/v/o projections): Llama 3, Mistral, Qwen2, Qwen3, Gemma 1/2, and Phi-3 (fused
qkv rows); and the decoder pieces the MoE and vision-language builders reuse."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .base import CheckpointBuilder, Layout, role_std


def separate_attention(
    b: CheckpointBuilder,
    layer: int,
    p: str,
    hidden: int,
    nh: int,
    nkv: int,
    hd: int,
    *,
    qkv_bias=False,
    o_bias=False,
    qk_norm=False,
    norm_center=1.0,
    names=("q_proj", "k_proj", "v_proj", "o_proj"),
):
    """q/k/v/o as separate nn.Linear (weight (out, in)), llama naming by default."""
    qn, kn, vn, on = names
    for role, n, rows in (("q", qn, nh * hd), ("k", kn, nkv * hd), ("v", vn, nkv * hd)):
        w = b.w(f"{p}{n}.weight", (rows, hidden), role_std(role, layer))
        b.role(layer, role, w, f"{p}{n}.weight")
        if qkv_bias:
            bias = b.w(f"{p}{n}.bias", (rows,), role_std(role + "_bias", layer))
            b.role(layer, role + "_bias", bias, f"{p}{n}.bias")
    w = b.w(f"{p}{on}.weight", (hidden, nh * hd), role_std("o", layer))
    b.role(layer, "o", w, f"{p}{on}.weight")
    if o_bias:
        bias = b.w(f"{p}{on}.bias", (hidden,), role_std("o_bias", layer))
        b.role(layer, "o_bias", bias, f"{p}{on}.bias")
    if qk_norm:
        for role, n in (("q_norm", "q_norm"), ("k_norm", "k_norm")):
            w = b.norm(f"{p}{n}.weight", hd, center=norm_center, noise=0.1)
            b.role(layer, role, w, f"{p}{n}.weight")


def dense_mlp(
    b: CheckpointBuilder, p: str, hidden: int, inter: int, layer: int, names=("gate_proj", "up_proj", "down_proj")
):
    g, u, d = names
    b.w(f"{p}{g}.weight", (inter, hidden), role_std("mlp", layer))
    b.w(f"{p}{u}.weight", (inter, hidden), role_std("mlp", layer))
    b.w(f"{p}{d}.weight", (hidden, inter), role_std("mlp", layer))


def llama_layers(
    b: CheckpointBuilder,
    prefix: str,
    layers: int,
    hidden: int,
    nh: int,
    nkv: int,
    hd: int,
    inter: int,
    *,
    qkv_bias=False,
    o_bias=False,
    qk_norm=False,
    norm_center=1.0,
    norm_noise=0.05,
    mlp: Callable[[CheckpointBuilder, str, int], None] | None = None,
    gemma2_norms=False,
):
    """``{prefix}layers.N.*`` in LlamaDecoderLayer registration order."""
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        separate_attention(
            b,
            i,
            p + "self_attn.",
            hidden,
            nh,
            nkv,
            hd,
            qkv_bias=qkv_bias,
            o_bias=o_bias,
            qk_norm=qk_norm,
            norm_center=norm_center,
        )
        if mlp is None:
            dense_mlp(b, p + "mlp.", hidden, inter, i)
        else:
            mlp(b, p, i)
        w = b.norm(p + "input_layernorm.weight", hidden, center=norm_center, noise=norm_noise)
        b.role(i, "attn_norm", w, p + "input_layernorm.weight")
        b.norm(p + "post_attention_layernorm.weight", hidden, center=norm_center, noise=norm_noise)
        if gemma2_norms:
            b.norm(p + "pre_feedforward_layernorm.weight", hidden, center=norm_center, noise=norm_noise)
            b.norm(p + "post_feedforward_layernorm.weight", hidden, center=norm_center, noise=norm_noise)


def causal_lm(
    b: CheckpointBuilder,
    prefix: str,
    vocab: int,
    hidden: int,
    body: Callable[[], None],
    *,
    tie: bool,
    lm_head="lm_head.weight",
    norm_center=1.0,
):
    b.w(f"{prefix}embed_tokens.weight", (vocab, hidden), role_std("embed", 0))
    body()
    b.norm(f"{prefix}norm.weight", hidden, center=norm_center)
    if not tie:
        b.w(lm_head, (vocab, hidden), role_std("embed", 1))


def build_llama(
    seed: int = 0,
    *,
    variant: str = "llama",
    hidden: int = 64,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int | None = None,
    vocab: int = 128,
    tie: bool = False,
) -> Layout:
    """meta-llama/Llama-3.x (``variant="llama"``) or mistralai/Mistral-7B (``"mistral"``).

    GQA, no biases, RMSNorm ``input_layernorm`` before attention, untied lm_head.
    """
    hd = hidden // heads
    inter = intermediate or hidden * 3
    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: llama_layers(b, "model.", layers, hidden, heads, kv_heads, hd, inter),
        tie=tie,
    )
    if variant == "mistral":
        config = {
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "hidden_size": hidden,
            "intermediate_size": inter,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": hd,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "sliding_window": None,
            "tie_word_embeddings": tie,
            "vocab_size": vocab,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.42.0",
            "use_cache": True,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
        }
    elif variant == "llama":
        config = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": inter,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "head_dim": hd,
            "hidden_act": "silu",
            "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "rope_scaling": {
                "factor": 32.0,
                "high_freq_factor": 4.0,
                "low_freq_factor": 1.0,
                "original_max_position_embeddings": 8192,
                "rope_type": "llama3",
            },
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "tie_word_embeddings": tie,
            "vocab_size": vocab,
            "bos_token_id": 128000,
            "eos_token_id": 128001,
            "initializer_range": 0.02,
            "torch_dtype": "bfloat16",
            "transformers_version": "4.45.0",
            "use_cache": True,
        }
    else:
        raise ValueError(variant)
    return b.layout(variant, config)


def build_mistral(seed: int = 0, **kw) -> Layout:
    return build_llama(seed, variant="mistral", **kw)


def build_qwen2(
    seed: int = 0, *, hidden: int = 64, layers: int = 3, heads: int = 4, kv_heads: int = 2, vocab: int = 128
) -> Layout:
    """Qwen/Qwen2-7B: q/k/v with bias, o_proj without."""
    hd = hidden // heads
    inter = hidden * 3
    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: llama_layers(b, "model.", layers, hidden, heads, kv_heads, hd, inter, qkv_bias=True),
        tie=False,
    )
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "max_window_layers": layers,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "sliding_window": 131072,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
    }
    return b.layout("qwen2", config)


def qwen3_text_config(hidden, inter, layers, heads, kv_heads, hd, vocab, tie):
    return {
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": hd,
        "hidden_act": "silu",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "max_position_embeddings": 40960,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": tie,
        "vocab_size": vocab,
        "initializer_range": 0.02,
        "use_cache": True,
    }


def build_qwen3(
    seed: int = 0,
    *,
    hidden: int = 48,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int = 16,
    vocab: int = 128,
    tie: bool = True,
) -> Layout:
    """Qwen/Qwen3-0.6B style: explicit head_dim (heads*head_dim != hidden), per-head
    q_norm/k_norm of size head_dim, no biases, tied embeddings (no lm_head tensor)."""
    inter = hidden * 3
    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: llama_layers(b, "model.", layers, hidden, heads, kv_heads, head_dim, inter, qk_norm=True),
        tie=tie,
    )
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        **qwen3_text_config(hidden, inter, layers, heads, kv_heads, head_dim, vocab, tie),
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "max_window_layers": layers,
        "sliding_window": None,
        "use_sliding_window": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0",
    }
    return b.layout("qwen3", config)


def build_gemma(
    seed: int = 0,
    *,
    version: int = 1,
    hidden: int = 48,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 1,
    head_dim: int = 16,
    vocab: int = 128,
) -> Layout:
    """google/gemma-2b (version=1) / gemma-2-2b (version=2).

    ``head_dim`` key with heads*head_dim != hidden (as gemma-7b: 16*256 vs 3072), tied
    embeddings (no lm_head), GemmaRMSNorm computes ``x * (1 + weight)`` so the stored norm
    weights are centred on 0, not 1.  Gemma-2 adds pre/post_feedforward_layernorm.
    """
    inter = hidden * 4
    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: llama_layers(
            b,
            "model.",
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            inter,
            norm_center=0.0,
            norm_noise=0.1,
            gemma2_norms=version == 2,
        ),
        tie=True,
        norm_center=0.0,
    )
    common = {
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "vocab_size": vocab,
        "bos_token_id": 2,
        "eos_token_id": 1,
        "pad_token_id": 0,
        "initializer_range": 0.02,
        "torch_dtype": "bfloat16",
        "use_cache": True,
    }
    if version == 1:
        config = {
            "architectures": ["GemmaForCausalLM"],
            "model_type": "gemma",
            **common,
            "hidden_act": "gelu",
            "hidden_activation": "gelu_pytorch_tanh",
            "transformers_version": "4.38.0.dev0",
        }
    elif version == 2:
        config = {
            "architectures": ["Gemma2ForCausalLM"],
            "model_type": "gemma2",
            **common,
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_activation": "gelu_pytorch_tanh",
            "query_pre_attn_scalar": head_dim,
            "sliding_window": 4096,
            "attn_logit_softcapping": 50.0,
            "final_logit_softcapping": 30.0,
            "cache_implementation": "hybrid",
            "transformers_version": "4.42.4",
        }
    else:
        raise ValueError(version)
    return b.layout(
        f"gemma{'' if version == 1 else '2'}", config, notes="norm weights are stored as w with effective scale 1+w"
    )


def build_phi3(
    seed: int = 0, *, hidden: int = 64, layers: int = 3, heads: int = 4, kv_heads: int = 2, vocab: int = 128
) -> Layout:
    """microsoft/Phi-3-medium style (GQA): fused ``self_attn.qkv_proj`` split by rows
    [q: nh*hd | k: nkv*hd | v: nkv*hd] (modeling_phi3: query_pos = nh*hd), fused
    ``mlp.gate_up_proj`` (2*inter, hidden) = [gate; up]."""
    hd = hidden // heads
    inter = hidden * 2
    b = CheckpointBuilder(seed)

    def body():
        for i in range(layers):
            p = f"model.layers.{i}."
            o = b.w(p + "self_attn.o_proj.weight", (hidden, heads * hd), role_std("o", i))
            q = b.randn((heads * hd, hidden), role_std("q", i))
            k = b.randn((kv_heads * hd, hidden), role_std("k", i))
            v = b.randn((kv_heads * hd, hidden), role_std("v", i))
            qkv = b.put(p + "self_attn.qkv_proj.weight", np.concatenate([q, k, v], axis=0))
            for role, arr in (("qkv", qkv), ("q", q), ("k", k), ("v", v)):
                b.role(i, role, arr, p + "self_attn.qkv_proj.weight")
            b.role(i, "o", o, p + "self_attn.o_proj.weight")
            b.w(p + "mlp.gate_up_proj.weight", (2 * inter, hidden), role_std("mlp", i))
            b.w(p + "mlp.down_proj.weight", (hidden, inter), role_std("mlp", i))
            w = b.norm(p + "input_layernorm.weight", hidden)
            b.role(i, "attn_norm", w, p + "input_layernorm.weight")
            b.norm(p + "post_attention_layernorm.weight", hidden)

    causal_lm(b, "model.", vocab, hidden, body, tie=False)
    config = {
        "architectures": ["Phi3ForCausalLM"],
        "model_type": "phi3",
        "auto_map": {
            "AutoConfig": "configuration_phi3.Phi3Config",
            "AutoModelForCausalLM": "modeling_phi3.Phi3ForCausalLM",
        },
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": 4096,
        "original_max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "sliding_window": 2047,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "embd_pdrop": 0.0,
        "resid_pdrop": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 32000,
        "pad_token_id": 32000,
        "initializer_range": 0.02,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.39.3",
        "use_cache": True,
    }
    return b.layout("phi3", config)

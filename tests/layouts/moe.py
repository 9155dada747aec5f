"""Mixture-of-experts decoders with llama attention: Mixtral, Qwen2-MoE, Pangu Pro MoE."""

from __future__ import annotations

import numpy as np

from .base import CheckpointBuilder, Layout, role_std
from .llama import causal_lm, dense_mlp, llama_layers


def build_mixtral(
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 2,
    experts: int = 4,
    vocab: int = 128,
) -> Layout:
    """mistralai/Mixtral-8x7B: attention as llama; ``block_sparse_moe.gate`` (E, hidden)
    and ``block_sparse_moe.experts.E.w1/w3`` (ffn, hidden), ``w2`` (hidden, ffn)."""
    hd = hidden // heads
    ffn = hidden * 2

    def moe(b: CheckpointBuilder, p: str, i: int):
        q = p + "block_sparse_moe."
        b.w(q + "gate.weight", (experts, hidden), role_std("router", i))
        for e in range(experts):
            b.w(f"{q}experts.{e}.w1.weight", (ffn, hidden), role_std("mlp", i))
            b.w(f"{q}experts.{e}.w2.weight", (hidden, ffn), role_std("mlp", i))
            b.w(f"{q}experts.{e}.w3.weight", (ffn, hidden), role_std("mlp", i))

    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: llama_layers(b, "model.", layers, hidden, heads, kv_heads, hd, ffn, mlp=moe),
        tie=False,
    )
    config = {
        "architectures": ["MixtralForCausalLM"],
        "model_type": "mixtral",
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "num_local_experts": experts,
        "num_experts_per_tok": 2,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.02,
        "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.36.0.dev0",
        "use_cache": True,
    }
    return b.layout("mixtral", config)


def build_qwen2_moe(
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 4,
    experts: int = 4,
    vocab: int = 128,
) -> Layout:
    """Qwen/Qwen1.5-MoE-A2.7B: q/k/v biases; ``mlp.gate`` (E, hidden),
    ``mlp.experts.E.{gate,up,down}_proj``, ``mlp.shared_expert.*``, ``mlp.shared_expert_gate``
    (1, hidden)."""
    hd = hidden // heads
    moe_inter, shared_inter = 16, 48

    def moe(b: CheckpointBuilder, p: str, i: int):
        q = p + "mlp."
        b.w(q + "gate.weight", (experts, hidden), role_std("router", i))
        for e in range(experts):
            dense_mlp(b, f"{q}experts.{e}.", hidden, moe_inter, i)
        dense_mlp(b, q + "shared_expert.", hidden, shared_inter, i)
        b.w(q + "shared_expert_gate.weight", (1, hidden), role_std("router", i))

    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: llama_layers(b, "model.", layers, hidden, heads, kv_heads, hd, shared_inter, qkv_bias=True, mlp=moe),
        tie=False,
    )
    config = {
        "architectures": ["Qwen2MoeForCausalLM"],
        "model_type": "qwen2_moe",
        "hidden_size": hidden,
        "intermediate_size": shared_inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_act": "silu",
        "decoder_sparse_step": 1,
        "moe_intermediate_size": moe_inter,
        "shared_expert_intermediate_size": shared_inter,
        "num_experts": experts,
        "num_experts_per_tok": 2,
        "norm_topk_prob": False,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.001,
        "mlp_only_layers": [],
        "max_position_embeddings": 8192,
        "max_window_layers": layers,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "use_sliding_window": False,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.0.dev0",
        "use_cache": True,
    }
    return b.layout("qwen2_moe", config)


def build_pangu_pro_moe(
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 2,
    experts: int = 8,
    vocab: int = 128,
) -> Layout:
    """Pangu Pro MoE (IntervitensInc/pangu-pro-moe-model, model_type ``PanGuMoE``) as the
    checkpoint loader of vllm-ascend ``pangu_moe.py`` names it: q/k/v_proj AND o_proj with
    bias, ``mlp.gate`` (E, hidden) router, ``mlp.router_scale`` (1, E), experts
    ``mlp.experts.E.{gate,up,down}_proj`` and one ``mlp.shared_expert``; head_dim =
    hidden/heads; experts grouped (num_experts_per_tok groups of E/k)."""
    hd = hidden // heads
    moe_inter, shared_inter = 16, 32

    def moe(b: CheckpointBuilder, p: str, i: int):
        q = p + "mlp."
        b.w(q + "gate.weight", (experts, hidden), role_std("router", i))
        for e in range(experts):
            dense_mlp(b, f"{q}experts.{e}.", hidden, moe_inter, i)
        dense_mlp(b, q + "shared_expert.", hidden, shared_inter, i)
        b.put(q + "router_scale", (1.0 + b.rng.standard_normal((1, experts)) * 0.1).astype(np.float32))

    b = CheckpointBuilder(seed)
    causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: llama_layers(
            b, "model.", layers, hidden, heads, kv_heads, hd, shared_inter, qkv_bias=True, o_bias=True, mlp=moe
        ),
        tie=False,
    )
    config = {
        "architectures": ["PanguProMoEForCausalLM"],
        "model_type": "PanGuMoE",
        "auto_map": {
            "AutoConfig": "configuration_pangu_moe.PanGuMoEConfig",
            "AutoModel": "modeling_pangu_moe.PanguProMoEModel",
            "AutoModelForCausalLM": "modeling_pangu_moe.PanguProMoEForCausalLM",
        },
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": 131072,
        "moe_intermediate_size": moe_inter,
        "shared_expert_intermediate_size": shared_inter,
        "num_experts": experts,
        "num_experts_per_tok": 2,
        "output_router_logits": False,
        "router_aux_loss_coef": 0.001,
        "rms_norm_eps": 1e-5,
        "rope_theta": 16000000.0,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": 1,
        "eos_token_id": 45892,
        "pad_token_id": 0,
        "initializer_range": 0.02,
        "torch_dtype": "bfloat16",
        "use_cache": True,
    }
    return b.layout(
        "pangu_pro_moe", config, notes="modelled on vllm-ascend pangu_moe.py; HF config.json itself not found"
    )

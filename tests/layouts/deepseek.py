"""DeepSeek's multi-head latent attention (MLA): V2, V2-Lite (no q compression) and V3 with FP8 block-quantized
weights and its multi-token-prediction layer."""

from __future__ import annotations

import numpy as np

from .base import CheckpointBuilder, Layout, role_std
from .quantize import fp8_block_dequantize, fp8_block_quantize


def _deepseek(
    seed: int,
    name: str,
    *,
    hidden: int,
    layers: int,
    heads: int,
    q_lora_rank: int | None,
    kv_lora_rank: int,
    nope: int,
    rope: int,
    vdim: int,
    inter: int,
    moe_inter: int,
    n_routed: int,
    n_shared: int,
    first_k_dense: int,
    vocab: int,
    v3: bool,
    fp8: bool,
    mtp: int,
) -> tuple[CheckpointBuilder, dict]:
    b = CheckpointBuilder(seed)

    def lin(layer: int, name_: str, shape, role: str | None, quant: bool = True):
        w = b.randn(shape, role_std(role or "mlp", layer))
        if fp8 and quant:
            q8, s = fp8_block_quantize(w)
            b.put(name_, q8, fixed="F8_E4M3")
            b.put(name_ + "_scale_inv", s, fixed="F32")
            val = fp8_block_dequantize(q8, s)
        else:
            b.put(name_, w)
            val = w
        if role is not None and layer < layers:
            b.role(layer, role, val, name_)
        return val

    def mlp_dense(layer, p, n):
        lin(layer, p + "gate_proj.weight", (n, hidden), None)
        lin(layer, p + "up_proj.weight", (n, hidden), None)
        lin(layer, p + "down_proj.weight", (hidden, n), None)

    def decoder(i: int):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        qh = nope + rope
        if q_lora_rank is None:
            lin(i, a + "q_proj.weight", (heads * qh, hidden), "q")
        else:
            lin(i, a + "q_a_proj.weight", (q_lora_rank, hidden), "q_a")
            w = b.norm(a + "q_a_layernorm.weight", q_lora_rank)
            if i < layers:
                b.role(i, "q_a_norm", w, a + "q_a_layernorm.weight")
            lin(i, a + "q_b_proj.weight", (heads * qh, q_lora_rank), "q_b")
        lin(i, a + "kv_a_proj_with_mqa.weight", (kv_lora_rank + rope, hidden), "kv_a")
        w = b.norm(a + "kv_a_layernorm.weight", kv_lora_rank)
        if i < layers:
            b.role(i, "kv_a_norm", w, a + "kv_a_layernorm.weight")
        lin(i, a + "kv_b_proj.weight", (heads * (nope + vdim), kv_lora_rank), "kv_b")
        lin(i, a + "o_proj.weight", (hidden, heads * vdim), "o")
        m = p + "mlp."
        if i >= first_k_dense:
            for e in range(n_routed):
                mlp_dense(i, f"{m}experts.{e}.", moe_inter)
            b.w(m + "gate.weight", (n_routed, hidden), role_std("router", i))
            if v3:
                b.put(
                    m + "gate.e_score_correction_bias",
                    (b.rng.standard_normal(n_routed) * 0.01).astype(np.float32),
                    fixed="F32",
                )
            mlp_dense(i, m + "shared_experts.", moe_inter * n_shared)
        else:
            mlp_dense(i, m, inter)
        w = b.norm(p + "input_layernorm.weight", hidden)
        if i < layers:
            b.role(i, "attn_norm", w, p + "input_layernorm.weight")
        b.norm(p + "post_attention_layernorm.weight", hidden)

    b.w("model.embed_tokens.weight", (vocab, hidden), role_std("embed", 0))
    for i in range(layers):
        decoder(i)
    for j in range(mtp):
        # MTP module: appended as layer num_hidden_layers + j (DeepSeek-V3 README_WEIGHTS.md)
        i = layers + j
        p = f"model.layers.{i}."
        b.w(p + "embed_tokens.weight", (vocab, hidden), role_std("embed", 0))
        b.norm(p + "enorm.weight", hidden)
        b.norm(p + "hnorm.weight", hidden)
        b.w(p + "eh_proj.weight", (hidden, 2 * hidden), role_std("mlp", i))
        decoder(i)
        b.norm(p + "shared_head.norm.weight", hidden)
        b.w(p + "shared_head.head.weight", (vocab, hidden), role_std("embed", 1))
    b.norm("model.norm.weight", hidden)
    b.w("lm_head.weight", (vocab, hidden), role_std("embed", 1))

    config = {
        "architectures": ["DeepseekV3ForCausalLM" if v3 else "DeepseekV2ForCausalLM"],
        "model_type": "deepseek_v3" if v3 else "deepseek_v2",
        "auto_map": (
            {
                "AutoConfig": "configuration_deepseek.DeepseekV3Config",
                "AutoModel": "modeling_deepseek.DeepseekV3Model",
                "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM",
            }
            if v3
            else {
                "AutoConfig": "configuration_deepseek.DeepseekV2Config",
                "AutoModel": "modeling_deepseek.DeepseekV2Model",
                "AutoModelForCausalLM": "modeling_deepseek.DeepseekV2ForCausalLM",
            }
        ),
        "hidden_size": hidden,
        "intermediate_size": inter,
        "moe_intermediate_size": moe_inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "n_shared_experts": n_shared,
        "n_routed_experts": n_routed,
        "num_experts_per_tok": 2,
        "first_k_dense_replace": first_k_dense,
        "moe_layer_freq": 1,
        "q_lora_rank": q_lora_rank,
        "kv_lora_rank": kv_lora_rank,
        "qk_nope_head_dim": nope,
        "qk_rope_head_dim": rope,
        "v_head_dim": vdim,
        "hidden_act": "silu",
        "max_position_embeddings": 163840,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": 100000,
        "eos_token_id": 100001,
        "initializer_range": 0.006,
        "aux_loss_alpha": 0.001,
        "seq_aux": True,
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": "bfloat16",
        "rope_scaling": {
            "beta_fast": 32,
            "beta_slow": 1,
            "factor": 40,
            "mscale": 1.0 if v3 else 0.707,
            "mscale_all_dim": 1.0 if v3 else 0.707,
            "original_max_position_embeddings": 4096,
            "type": "yarn",
        },
    }
    if v3:
        config.update(
            {
                "topk_method": "noaux_tc",
                "scoring_func": "sigmoid",
                "n_group": 2,
                "topk_group": 1,
                "routed_scaling_factor": 2.5,
                "norm_topk_prob": True,
                "num_nextn_predict_layers": mtp,
                "ep_size": 1,
                "transformers_version": "4.33.1",
            }
        )
        if fp8:
            config["quantization_config"] = {
                "activation_scheme": "dynamic",
                "fmt": "e4m3",
                "quant_method": "fp8",
                "weight_block_size": [128, 128],
            }
    else:
        config.update(
            {
                "topk_method": "greedy" if q_lora_rank is None else "group_limited_greedy",
                "scoring_func": "softmax",
                "n_group": 1 if q_lora_rank is None else 2,
                "topk_group": 1,
                "routed_scaling_factor": 1.0 if q_lora_rank is None else 16.0,
                "norm_topk_prob": False,
                "ep_size": 1,
                "transformers_version": "4.39.3",
            }
        )
    return b, config


# DeepSeek-V2's shapes, scaled down; V2 and V2-Lite differ only in q_lora_rank
SMALL_V2 = dict(
    hidden=64,
    heads=4,
    kv_lora_rank=32,
    nope=16,
    rope=8,
    vdim=16,
    inter=96,
    moe_inter=16,
    n_routed=4,
    n_shared=2,
    first_k_dense=1,
    vocab=128,
    v3=False,
    fp8=False,
    mtp=0,
)


def build_deepseek_v2(seed: int = 0, *, layers: int = 3) -> Layout:
    """deepseek-ai/DeepSeek-V2: MLA with q LoRA.  Shapes (modeling_deepseek):
    q_a_proj (q_lora_rank, hidden), q_a_layernorm (q_lora_rank), q_b_proj
    (nh*(nope+rope), q_lora_rank), kv_a_proj_with_mqa (kv_lora_rank+rope, hidden),
    kv_a_layernorm (kv_lora_rank), kv_b_proj (nh*(nope+v), kv_lora_rank), o_proj
    (hidden, nh*v).  Layer 0 dense MLP, then MoE experts + shared_experts."""
    b, config = _deepseek(
        seed,
        "deepseek_v2",
        layers=layers,
        q_lora_rank=48,
        **SMALL_V2,
    )
    return b.layout("deepseek_v2", config)


def build_deepseek_v2_lite(seed: int = 0, *, layers: int = 3) -> Layout:
    """deepseek-ai/DeepSeek-V2-Lite: ``q_lora_rank: null`` -> plain q_proj
    (nh*(nope+rope), hidden); rest of MLA as V2."""
    b, config = _deepseek(
        seed,
        "deepseek_v2_lite",
        layers=layers,
        q_lora_rank=None,
        **SMALL_V2,
    )
    return b.layout("deepseek_v2_lite", config)


def build_deepseek_v3_fp8(seed: int = 0, *, layers: int = 3, mtp: bool = True) -> Layout:
    """deepseek-ai/DeepSeek-V3 as shipped: every Linear weight inside the decoder layers
    (attention projections, dense/expert/shared MLPs) stored float8_e4m3fn with an F32
    ``<name>.weight_scale_inv`` per 128x128 block (edge blocks partial); embeddings,
    lm_head, norms, router ``mlp.gate.weight`` unquantized, router
    ``gate.e_score_correction_bias`` F32.  q_a_proj is 192x160 (2x2 blocks, both partial).
    With ``mtp`` the MTP module is layer ``num_hidden_layers`` (embed_tokens, enorm, hnorm,
    eh_proj, shared_head + a full decoder layer) - it is NOT in the ground truth.
    Ground truth = dequantized values ``W8 * scale_inv[i//128, j//128]``."""
    b, config = _deepseek(
        seed,
        "deepseek_v3_fp8",
        hidden=160,
        layers=layers,
        heads=4,
        q_lora_rank=192,
        kv_lora_rank=64,
        nope=32,
        rope=16,
        vdim=32,
        inter=192,
        moe_inter=32,
        n_routed=4,
        n_shared=1,
        first_k_dense=1,
        vocab=256,
        v3=True,
        fp8=True,
        mtp=1 if mtp else 0,
    )
    return b.layout(
        "deepseek_v3_fp8", config, notes="MTP layer model.layers.{num_hidden_layers}.* present" if mtp else ""
    )

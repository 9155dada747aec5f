"""Small but faithful checkpoints of real architectures, written by the tests themselves.

Every builder returns a :class:`Layout`: the ``config.json`` the real Hugging Face model
ships (same keys, small values), the full state dict under the real tensor names, shapes
and orientation, and the ground truth of the attention weights per layer.

Sources the layouts were checked against (see tests/test_layouts.py and the report):

* transformers modeling files (llama, qwen2, qwen3, gemma/gemma2, phi3, gpt2, gpt_neox,
  falcon, bert, mixtral, qwen2_moe, deepseek_v2, llava, qwen3_vl) and the HF tensor-name
  table of gguf-py ``tensor_mapping.py``;
* llama.cpp ``convert_hf_to_gguf.py`` (``LlamaModel.permute``, which tensors stay F32,
  the Q8_0 -> F16 fallback) and ``llama-quant.cpp`` (Q4_K -> Q5_0 -> F16 fallback);
* DeepSeek-V3 ``README_WEIGHTS.md`` (FP8 e4m3 128x128 blocks, ``weight_scale_inv`` F32,
  MTP module appended as layer ``num_hidden_layers``);
* vllm-ascend ``pangu_moe.py`` / ``configuration_pangu_moe.py`` for Pangu Pro MoE;
* bitsandbytes ``QuantState.as_dict(packed=True)`` for the NF4 layout.

Roles in ``Layout.attention[layer]`` (only those the architecture really has):
``q k v o`` projections, ``qkv`` (whole fused tensor, then ``q k v`` are the parts in the
architecture's own order), MLA ``q_a q_b kv_a kv_b`` (+ ``q`` for DeepSeek-V2-Lite),
biases ``q_bias k_bias v_bias o_bias qkv_bias``, norms ``attn_norm q_norm k_norm
q_a_norm kv_a_norm``.  Values are float64 copies of exactly the elements of that role, in
the orientation stored on disk (GPT-2 Conv1D weights are (in, out); their q/k/v are
column slices).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import ml_dtypes
import numpy as np

__all__ = [
    "BUILDERS",
    "GROUND_TRUTH_BUILDERS",
    "ST_DTYPES",
    "Layout",
    "filler_tensors",
    "fp8_block_dequantize",
    "fp8_block_quantize",
    "gguf_expected_tensors",
    "llama_permute",
    "llama_unpermute",
    "quantize_q4_k",
    "read_safetensors_file",
    "read_safetensors_header",
    "serialize_safetensors",
    "write_gguf",
    "write_safetensors_dir",
    "write_safetensors_file",
]

# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------

ST_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NP_TO_ST = {v: k for k, v in ST_DTYPES.items()}

# Order in which the safetensors Rust serializer lays tensors out: by dtype (largest
# alignment first, ties in this fixed order), then by name.  Measured on safetensors 0.8
# (safetensors.numpy.save with one tensor of every dtype) and re-checked byte for byte in
# test_layouts.py.
_ST_ORDER = [
    "U64",
    "I64",
    "F64",
    "C64",
    "F32",
    "U32",
    "I32",
    "BF16",
    "F16",
    "U16",
    "I16",
    "F8_E8M0",
    "F8_E4M3",
    "F8_E5M2",
    "I8",
    "U8",
    "BOOL",
]


def st_dtype_name(arr: np.ndarray) -> str:
    try:
        return _NP_TO_ST[arr.dtype]
    except KeyError:
        raise TypeError(f"no safetensors dtype for numpy dtype {arr.dtype}") from None


def _convert(arr: np.ndarray, st: str) -> np.ndarray:
    target = ST_DTYPES[st]
    if arr.dtype == target:
        return arr
    if arr.dtype.kind == "f" or arr.dtype in (ST_DTYPES["BF16"],):
        return arr.astype(np.float32).astype(target)
    return arr.astype(target)


# --------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------


@dataclass
class Layout:
    name: str
    config: dict
    tensors: dict[str, np.ndarray]
    attention: dict[int, dict[str, np.ndarray]]
    # layer -> role -> name of the tensor the role's elements come from
    sources: dict[int, dict[str, str]] = field(default_factory=dict)
    # tensors whose on-disk dtype does not follow the writer's ``dtype`` argument
    # (FP8 weights and their F32 scale_inv, GPTQ I32/F16, bnb U8, BOOL masks ...)
    fixed_dtypes: dict[str, str] = field(default_factory=dict)
    # other files the real checkpoint directory holds (e.g. GPTQ quantize_config.json)
    extra_files: dict[str, dict] = field(default_factory=dict)
    notes: str = ""

    @property
    def num_layers(self) -> int:
        return len(self.attention)

    def stored_dtype(self, name: str, dtype: str = "F32") -> str:
        """The safetensors dtype ``name`` gets when written with ``dtype``."""
        if name in self.fixed_dtypes:
            return self.fixed_dtypes[name]
        arr = self.tensors[name]
        if arr.dtype == np.float32:
            return dtype
        return st_dtype_name(arr)

    def attention_as(self, dtype: str) -> dict[int, dict[str, np.ndarray]]:
        """Ground truth as read back from a file written with ``dtype`` (rounded)."""
        out: dict[int, dict[str, np.ndarray]] = {}
        for layer, roles in self.attention.items():
            out[layer] = {}
            for role, arr in roles.items():
                src = self.sources.get(layer, {}).get(role)
                st = self.stored_dtype(src, dtype) if src is not None else "F32"
                if st in ("F16", "BF16") and self.tensors[src].dtype == np.float32:
                    arr = arr.astype(np.float32).astype(ST_DTYPES[st]).astype(np.float64)
                out[layer][role] = arr
        return out


# --------------------------------------------------------------------------------------
# deterministic random weights
# --------------------------------------------------------------------------------------

_ROLE_BASE = {
    "q": 0.020,
    "k": 0.030,
    "v": 0.012,
    "o": 0.016,
    "q_a": 0.028,
    "q_b": 0.022,
    "kv_a": 0.026,
    "kv_b": 0.018,
    "q_bias": 0.05,
    "k_bias": 0.08,
    "v_bias": 0.02,
    "o_bias": 0.03,
    "mlp": 0.02,
    "embed": 0.02,
    "router": 0.01,
    "vision": 0.02,
}
# phase of the per-layer wiggle: roles with different phases get differently shaped curves
_ROLE_PHASE = {
    "q": 0,
    "k": 1,
    "v": 2,
    "o": 1,
    "q_a": 0,
    "q_b": 2,
    "kv_a": 2,
    "kv_b": 0,
    "q_bias": 1,
    "k_bias": 2,
    "v_bias": 0,
    "o_bias": 2,
}


def _scale(role: str, layer: int) -> float:
    """A per-role, per-layer std: rising with depth, with a role-dependent bump every
    third layer, so per-layer curves are neither flat nor proportional across roles."""
    base = _ROLE_BASE.get(role, 0.02)
    bump = 1.3 if (layer + _ROLE_PHASE.get(role, 0)) % 3 == 0 else 1.0
    return base * (1.0 + 0.5 * layer) * bump


class _B:
    """Accumulates a state dict (in module order) and the attention ground truth."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.t: dict[str, np.ndarray] = {}
        self.gt: dict[int, dict[str, np.ndarray]] = {}
        self.src: dict[int, dict[str, str]] = {}
        self.fixed: dict[str, str] = {}

    def randn(self, shape, std) -> np.ndarray:
        return (self.rng.standard_normal(shape) * std).astype(np.float32)

    def w(self, name, shape, std) -> np.ndarray:
        arr = self.randn(shape, std)
        self.t[name] = arr
        return arr

    def norm(self, name, n, center=1.0, noise=0.05) -> np.ndarray:
        arr = (center + self.rng.standard_normal(n) * noise).astype(np.float32)
        self.t[name] = arr
        return arr

    def put(self, name, arr, fixed: str | None = None) -> np.ndarray:
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
            arr = arr.copy(order="C")
        self.t[name] = arr
        if fixed is not None:
            self.fixed[name] = fixed
        return arr

    def role(self, layer, role, arr, src):
        self.gt.setdefault(layer, {})[role] = np.array(arr, dtype=np.float64, copy=True)
        self.src.setdefault(layer, {})[role] = src

    def layout(self, name, config, notes="", extra_files=None) -> Layout:
        return Layout(
            name=name,
            config=config,
            tensors=self.t,
            attention=self.gt,
            sources=self.src,
            fixed_dtypes=self.fixed,
            extra_files=extra_files or {},
            notes=notes,
        )


# --------------------------------------------------------------------------------------
# llama-style decoder pieces
# --------------------------------------------------------------------------------------


def _attn_separate(
    b: _B,
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
        w = b.w(f"{p}{n}.weight", (rows, hidden), _scale(role, layer))
        b.role(layer, role, w, f"{p}{n}.weight")
        if qkv_bias:
            bias = b.w(f"{p}{n}.bias", (rows,), _scale(role + "_bias", layer))
            b.role(layer, role + "_bias", bias, f"{p}{n}.bias")
    w = b.w(f"{p}{on}.weight", (hidden, nh * hd), _scale("o", layer))
    b.role(layer, "o", w, f"{p}{on}.weight")
    if o_bias:
        bias = b.w(f"{p}{on}.bias", (hidden,), _scale("o_bias", layer))
        b.role(layer, "o_bias", bias, f"{p}{on}.bias")
    if qk_norm:
        for role, n in (("q_norm", "q_norm"), ("k_norm", "k_norm")):
            w = b.norm(f"{p}{n}.weight", hd, center=norm_center, noise=0.1)
            b.role(layer, role, w, f"{p}{n}.weight")


def _mlp_dense(b: _B, p: str, hidden: int, inter: int, layer: int, names=("gate_proj", "up_proj", "down_proj")):
    g, u, d = names
    b.w(f"{p}{g}.weight", (inter, hidden), _scale("mlp", layer))
    b.w(f"{p}{u}.weight", (inter, hidden), _scale("mlp", layer))
    b.w(f"{p}{d}.weight", (hidden, inter), _scale("mlp", layer))


def _llama_stack(
    b: _B,
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
    mlp: Callable[[_B, str, int], None] | None = None,
    gemma2_norms=False,
):
    """``{prefix}layers.N.*`` in LlamaDecoderLayer registration order."""
    for i in range(layers):
        p = f"{prefix}layers.{i}."
        _attn_separate(
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
            _mlp_dense(b, p + "mlp.", hidden, inter, i)
        else:
            mlp(b, p, i)
        w = b.norm(p + "input_layernorm.weight", hidden, center=norm_center, noise=norm_noise)
        b.role(i, "attn_norm", w, p + "input_layernorm.weight")
        b.norm(p + "post_attention_layernorm.weight", hidden, center=norm_center, noise=norm_noise)
        if gemma2_norms:
            b.norm(p + "pre_feedforward_layernorm.weight", hidden, center=norm_center, noise=norm_noise)
            b.norm(p + "post_feedforward_layernorm.weight", hidden, center=norm_center, noise=norm_noise)


def _causal_lm(
    b: _B,
    prefix: str,
    vocab: int,
    hidden: int,
    body: Callable[[], None],
    *,
    tie: bool,
    lm_head="lm_head.weight",
    norm_center=1.0,
):
    b.w(f"{prefix}embed_tokens.weight", (vocab, hidden), _scale("embed", 0))
    body()
    b.norm(f"{prefix}norm.weight", hidden, center=norm_center)
    if not tie:
        b.w(lm_head, (vocab, hidden), _scale("embed", 1))


# --------------------------------------------------------------------------------------
# builders: llama family
# --------------------------------------------------------------------------------------


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
    b = _B(seed)
    _causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: _llama_stack(b, "model.", layers, hidden, heads, kv_heads, hd, inter),
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
    b = _B(seed)
    _causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: _llama_stack(b, "model.", layers, hidden, heads, kv_heads, hd, inter, qkv_bias=True),
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


def _qwen3_text_config(hidden, inter, layers, heads, kv_heads, hd, vocab, tie):
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
    b = _B(seed)
    _causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: _llama_stack(b, "model.", layers, hidden, heads, kv_heads, head_dim, inter, qk_norm=True),
        tie=tie,
    )
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        **_qwen3_text_config(hidden, inter, layers, heads, kv_heads, head_dim, vocab, tie),
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
    b = _B(seed)
    _causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: _llama_stack(
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
    b = _B(seed)

    def body():
        for i in range(layers):
            p = f"model.layers.{i}."
            o = b.w(p + "self_attn.o_proj.weight", (hidden, heads * hd), _scale("o", i))
            q = b.randn((heads * hd, hidden), _scale("q", i))
            k = b.randn((kv_heads * hd, hidden), _scale("k", i))
            v = b.randn((kv_heads * hd, hidden), _scale("v", i))
            qkv = b.put(p + "self_attn.qkv_proj.weight", np.concatenate([q, k, v], axis=0))
            for role, arr in (("qkv", qkv), ("q", q), ("k", k), ("v", v)):
                b.role(i, role, arr, p + "self_attn.qkv_proj.weight")
            b.role(i, "o", o, p + "self_attn.o_proj.weight")
            b.w(p + "mlp.gate_up_proj.weight", (2 * inter, hidden), _scale("mlp", i))
            b.w(p + "mlp.down_proj.weight", (hidden, inter), _scale("mlp", i))
            w = b.norm(p + "input_layernorm.weight", hidden)
            b.role(i, "attn_norm", w, p + "input_layernorm.weight")
            b.norm(p + "post_attention_layernorm.weight", hidden)

    _causal_lm(b, "model.", vocab, hidden, body, tie=False)
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


# --------------------------------------------------------------------------------------
# builders: fused-QKV classics
# --------------------------------------------------------------------------------------


def build_gpt2(
    seed: int = 0,
    *,
    n_embd: int = 48,
    n_layer: int = 3,
    n_head: int = 4,
    n_positions: int = 32,
    vocab: int = 128,
    attn_mask_buffers: bool = True,
) -> Layout:
    """openai-community/gpt2 as its model.safetensors names it: NO ``transformer.``
    prefix (``h.0.attn.c_attn.weight``, ``wte.weight``, ``ln_f.weight``), Conv1D weights
    stored (in, out): c_attn (n_embd, 3*n_embd) with bias (3*n_embd,), q/k/v = column
    split.  The file also carries the causal-mask buffer ``h.N.attn.bias`` (1, 1,
    n_positions, n_positions) in F32 - NOT an attention bias.  lm_head is tied (absent).
    """
    E = n_embd
    b = _B(seed)
    b.w("wte.weight", (vocab, E), _scale("embed", 0))
    b.w("wpe.weight", (n_positions, E), 0.01)
    mask = np.tril(np.ones((n_positions, n_positions), np.float32)).reshape(1, 1, n_positions, n_positions)
    for i in range(n_layer):
        p = f"h.{i}."
        w = b.norm(p + "ln_1.weight", E)
        b.role(i, "attn_norm", w, p + "ln_1.weight")
        b.w(p + "ln_1.bias", (E,), 0.01)
        if attn_mask_buffers:
            b.put(p + "attn.bias", mask.copy())
        parts = [b.randn((E, E), _scale(r, i)) for r in ("q", "k", "v")]
        W = b.put(p + "attn.c_attn.weight", np.concatenate(parts, axis=1))
        bparts = [b.randn((E,), _scale(r + "_bias", i)) for r in ("q", "k", "v")]
        Bv = b.put(p + "attn.c_attn.bias", np.concatenate(bparts))
        b.role(i, "qkv", W, p + "attn.c_attn.weight")
        b.role(i, "qkv_bias", Bv, p + "attn.c_attn.bias")
        for j, r in enumerate("qkv"):
            b.role(i, r, W[:, j * E : (j + 1) * E], p + "attn.c_attn.weight")
            b.role(i, r + "_bias", Bv[j * E : (j + 1) * E], p + "attn.c_attn.bias")
        o = b.w(p + "attn.c_proj.weight", (E, E), _scale("o", i))
        ob = b.w(p + "attn.c_proj.bias", (E,), _scale("o_bias", i))
        b.role(i, "o", o, p + "attn.c_proj.weight")
        b.role(i, "o_bias", ob, p + "attn.c_proj.bias")
        b.norm(p + "ln_2.weight", E)
        b.w(p + "ln_2.bias", (E,), 0.01)
        b.w(p + "mlp.c_fc.weight", (E, 4 * E), _scale("mlp", i))
        b.w(p + "mlp.c_fc.bias", (4 * E,), 0.01)
        b.w(p + "mlp.c_proj.weight", (4 * E, E), _scale("mlp", i))
        b.w(p + "mlp.c_proj.bias", (E,), 0.01)
    b.norm("ln_f.weight", E)
    b.w("ln_f.bias", (E,), 0.01)
    config = {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "gpt2",
        "n_ctx": n_positions,
        "n_embd": E,
        "n_head": n_head,
        "n_layer": n_layer,
        "n_positions": n_positions,
        "resid_pdrop": 0.1,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": vocab,
    }
    return b.layout("gpt2", config, notes="h.N.attn.bias is the causal mask buffer")


def build_gpt_neox(
    seed: int = 0,
    *,
    hidden: int = 48,
    layers: int = 3,
    heads: int = 4,
    vocab: int = 128,
    max_pos: int = 32,
    legacy_buffers: bool = True,
) -> Layout:
    """EleutherAI/pythia style: ``gpt_neox.layers.N.attention.query_key_value`` (3*hidden,
    hidden) with rows interleaved PER HEAD: view (nh, 3, hd, hidden) -> [q_h, k_h, v_h]
    (modeling_gpt_neox: view(..., -1, 3*head_size).chunk(3)), bias likewise.  Pythia files
    also hold the buffers ``attention.bias`` (BOOL causal mask), ``attention.masked_bias``
    (scalar) and ``attention.rotary_emb.inv_freq`` (``legacy_buffers``)."""
    hd = hidden // heads
    rot = int(hd * 0.25)
    b = _B(seed)
    b.w("gpt_neox.embed_in.weight", (vocab, hidden), _scale("embed", 0))
    for i in range(layers):
        p = f"gpt_neox.layers.{i}."
        w = b.norm(p + "input_layernorm.weight", hidden)
        b.role(i, "attn_norm", w, p + "input_layernorm.weight")
        b.w(p + "input_layernorm.bias", (hidden,), 0.01)
        b.norm(p + "post_attention_layernorm.weight", hidden)
        b.w(p + "post_attention_layernorm.bias", (hidden,), 0.01)
        if legacy_buffers:
            mask = np.tril(np.ones((max_pos, max_pos), np.bool_)).reshape(1, 1, max_pos, max_pos)
            b.put(p + "attention.bias", mask, fixed="BOOL")
            b.put(p + "attention.masked_bias", np.array(-1e9, np.float32))
            inv = (1.0 / (10000 ** (np.arange(0, rot, 2, dtype=np.float32) / rot))).astype(np.float32)
            b.put(p + "attention.rotary_emb.inv_freq", inv)
        q, k, v = (b.randn((heads, hd, hidden), _scale(r, i)) for r in "qkv")
        W = b.put(p + "attention.query_key_value.weight", np.stack([q, k, v], axis=1).reshape(3 * hidden, hidden))
        qb, kb, vb = (b.randn((heads, hd), _scale(r + "_bias", i)) for r in "qkv")
        Bv = b.put(p + "attention.query_key_value.bias", np.stack([qb, kb, vb], axis=1).reshape(3 * hidden))
        src, bsrc = p + "attention.query_key_value.weight", p + "attention.query_key_value.bias"
        b.role(i, "qkv", W, src)
        b.role(i, "qkv_bias", Bv, bsrc)
        for r, part, pb in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
            b.role(i, r, part.reshape(hidden, hidden), src)
            b.role(i, r + "_bias", pb.reshape(hidden), bsrc)
        o = b.w(p + "attention.dense.weight", (hidden, hidden), _scale("o", i))
        ob = b.w(p + "attention.dense.bias", (hidden,), _scale("o_bias", i))
        b.role(i, "o", o, p + "attention.dense.weight")
        b.role(i, "o_bias", ob, p + "attention.dense.bias")
        b.w(p + "mlp.dense_h_to_4h.weight", (4 * hidden, hidden), _scale("mlp", i))
        b.w(p + "mlp.dense_h_to_4h.bias", (4 * hidden,), 0.01)
        b.w(p + "mlp.dense_4h_to_h.weight", (hidden, 4 * hidden), _scale("mlp", i))
        b.w(p + "mlp.dense_4h_to_h.bias", (hidden,), 0.01)
    b.norm("gpt_neox.final_layer_norm.weight", hidden)
    b.w("gpt_neox.final_layer_norm.bias", (hidden,), 0.01)
    b.w("embed_out.weight", (vocab, hidden), _scale("embed", 1))
    config = {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "hidden_act": "gelu",
        "max_position_embeddings": max_pos,
        "rotary_pct": 0.25,
        "rotary_emb_base": 10000,
        "use_parallel_residual": True,
        "layer_norm_eps": 1e-5,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "float16",
        "transformers_version": "4.24.0",
        "use_cache": True,
    }
    return b.layout("gpt_neox", config, notes="qkv rows interleaved per head")


def build_falcon(
    seed: int = 0,
    *,
    new_decoder_architecture: bool = True,
    hidden: int = 64,
    layers: int = 3,
    heads: int = 8,
    kv_heads: int = 2,
    vocab: int = 128,
) -> Layout:
    """tiiuae/falcon.  ``transformer.h.N.self_attention.query_key_value`` (no bias).

    * new_decoder_architecture=True (falcon-40b/180b): rows = nkv groups of
      [nh/nkv q heads, 1 k head, 1 v head], each head hd rows; separate ``ln_attn`` (the
      norm before attention) and ``ln_mlp``; config key ``num_kv_heads``.
    * False with multi_query (falcon-7b): rows = [q: nh*hd | k: hd | v: hd];
      single ``input_layernorm``.
    LayerNorms have weight and bias; lm_head tied (FalconConfig default) so absent.
    """
    hd = hidden // heads
    b = _B(seed)
    b.w("transformer.word_embeddings.weight", (vocab, hidden), _scale("embed", 0))
    for i in range(layers):
        p = f"transformer.h.{i}."
        src = p + "self_attention.query_key_value.weight"
        if new_decoder_architecture:
            g = heads // kv_heads
            q = b.randn((kv_heads, g, hd, hidden), _scale("q", i))
            k = b.randn((kv_heads, 1, hd, hidden), _scale("k", i))
            v = b.randn((kv_heads, 1, hd, hidden), _scale("v", i))
            W = np.concatenate([q, k, v], axis=1).reshape((heads + 2 * kv_heads) * hd, hidden)
            qs, ks, vs = (
                q.reshape(heads * hd, hidden),
                k.reshape(kv_heads * hd, hidden),
                v.reshape(kv_heads * hd, hidden),
            )
        else:
            qs = b.randn((heads * hd, hidden), _scale("q", i))
            ks = b.randn((hd, hidden), _scale("k", i))
            vs = b.randn((hd, hidden), _scale("v", i))
            W = np.concatenate([qs, ks, vs], axis=0)
        b.put(src, W)
        for r, arr in (("qkv", W), ("q", qs), ("k", ks), ("v", vs)):
            b.role(i, r, arr, src)
        o = b.w(p + "self_attention.dense.weight", (hidden, hidden), _scale("o", i))
        b.role(i, "o", o, p + "self_attention.dense.weight")
        b.w(p + "mlp.dense_h_to_4h.weight", (4 * hidden, hidden), _scale("mlp", i))
        b.w(p + "mlp.dense_4h_to_h.weight", (hidden, 4 * hidden), _scale("mlp", i))
        if new_decoder_architecture:
            w = b.norm(p + "ln_attn.weight", hidden)
            b.role(i, "attn_norm", w, p + "ln_attn.weight")
            b.w(p + "ln_attn.bias", (hidden,), 0.01)
            b.norm(p + "ln_mlp.weight", hidden)
            b.w(p + "ln_mlp.bias", (hidden,), 0.01)
        else:
            w = b.norm(p + "input_layernorm.weight", hidden)
            b.role(i, "attn_norm", w, p + "input_layernorm.weight")
            b.w(p + "input_layernorm.bias", (hidden,), 0.01)
    b.norm("transformer.ln_f.weight", hidden)
    b.w("transformer.ln_f.bias", (hidden,), 0.01)
    config = {
        "alibi": False,
        "apply_residual_connection_post_layernorm": False,
        "architectures": ["FalconForCausalLM"],
        "attention_dropout": 0.0,
        "bias": False,
        "bos_token_id": 11,
        "eos_token_id": 11,
        "hidden_dropout": 0.0,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "model_type": "falcon",
        "new_decoder_architecture": new_decoder_architecture,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "parallel_attn": True,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.27.4",
        "use_cache": True,
        "vocab_size": vocab,
    }
    if new_decoder_architecture:
        config["num_kv_heads"] = kv_heads
        name = "falcon_new_arch"
    else:
        config["multi_query"] = True
        name = "falcon_7b"
    return b.layout(name, config)


def build_falcon_7b(seed: int = 0, **kw) -> Layout:
    kw.setdefault("heads", 4)
    return build_falcon(seed, new_decoder_architecture=False, **kw)


def build_falcon_40b(seed: int = 0, **kw) -> Layout:
    return build_falcon(seed, new_decoder_architecture=True, **kw)


def build_bert(
    seed: int = 0, *, hidden: int = 48, layers: int = 3, heads: int = 4, vocab: int = 128, max_pos: int = 32
) -> Layout:
    """google-bert/bert-base-uncased as its model.safetensors names it: ``bert.`` prefix,
    legacy LayerNorm ``gamma``/``beta`` names, biased q/k/v/o; post-LN (no norm before
    attention, so no ``attn_norm`` role); MLM + NSP heads (``cls.*``), pooler."""
    inter = 4 * hidden
    b = _B(seed)
    e = "bert.embeddings."
    b.w(e + "word_embeddings.weight", (vocab, hidden), _scale("embed", 0))
    b.w(e + "position_embeddings.weight", (max_pos, hidden), 0.01)
    b.w(e + "token_type_embeddings.weight", (2, hidden), 0.01)
    b.norm(e + "LayerNorm.gamma", hidden)
    b.w(e + "LayerNorm.beta", (hidden,), 0.01)
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for r, n in (("q", "query"), ("k", "key"), ("v", "value")):
            w = b.w(f"{p}attention.self.{n}.weight", (hidden, hidden), _scale(r, i))
            bb = b.w(f"{p}attention.self.{n}.bias", (hidden,), _scale(r + "_bias", i))
            b.role(i, r, w, f"{p}attention.self.{n}.weight")
            b.role(i, r + "_bias", bb, f"{p}attention.self.{n}.bias")
        o = b.w(p + "attention.output.dense.weight", (hidden, hidden), _scale("o", i))
        ob = b.w(p + "attention.output.dense.bias", (hidden,), _scale("o_bias", i))
        b.role(i, "o", o, p + "attention.output.dense.weight")
        b.role(i, "o_bias", ob, p + "attention.output.dense.bias")
        b.norm(p + "attention.output.LayerNorm.gamma", hidden)
        b.w(p + "attention.output.LayerNorm.beta", (hidden,), 0.01)
        b.w(p + "intermediate.dense.weight", (inter, hidden), _scale("mlp", i))
        b.w(p + "intermediate.dense.bias", (inter,), 0.01)
        b.w(p + "output.dense.weight", (hidden, inter), _scale("mlp", i))
        b.w(p + "output.dense.bias", (hidden,), 0.01)
        b.norm(p + "output.LayerNorm.gamma", hidden)
        b.w(p + "output.LayerNorm.beta", (hidden,), 0.01)
    b.w("bert.pooler.dense.weight", (hidden, hidden), 0.02)
    b.w("bert.pooler.dense.bias", (hidden,), 0.01)
    b.w("cls.predictions.bias", (vocab,), 0.01)
    b.w("cls.predictions.transform.dense.weight", (hidden, hidden), 0.02)
    b.w("cls.predictions.transform.dense.bias", (hidden,), 0.01)
    b.norm("cls.predictions.transform.LayerNorm.gamma", hidden)
    b.w("cls.predictions.transform.LayerNorm.beta", (hidden,), 0.01)
    b.w("cls.seq_relationship.weight", (2, hidden), 0.02)
    b.w("cls.seq_relationship.bias", (2,), 0.01)
    config = {
        "architectures": ["BertForMaskedLM"],
        "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": inter,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": max_pos,
        "model_type": "bert",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": vocab,
    }
    return b.layout("bert", config)


# --------------------------------------------------------------------------------------
# builders: MoE
# --------------------------------------------------------------------------------------


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

    def moe(b: _B, p: str, i: int):
        q = p + "block_sparse_moe."
        b.w(q + "gate.weight", (experts, hidden), _scale("router", i))
        for e in range(experts):
            b.w(f"{q}experts.{e}.w1.weight", (ffn, hidden), _scale("mlp", i))
            b.w(f"{q}experts.{e}.w2.weight", (hidden, ffn), _scale("mlp", i))
            b.w(f"{q}experts.{e}.w3.weight", (ffn, hidden), _scale("mlp", i))

    b = _B(seed)
    _causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: _llama_stack(b, "model.", layers, hidden, heads, kv_heads, hd, ffn, mlp=moe),
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

    def moe(b: _B, p: str, i: int):
        q = p + "mlp."
        b.w(q + "gate.weight", (experts, hidden), _scale("router", i))
        for e in range(experts):
            _mlp_dense(b, f"{q}experts.{e}.", hidden, moe_inter, i)
        _mlp_dense(b, q + "shared_expert.", hidden, shared_inter, i)
        b.w(q + "shared_expert_gate.weight", (1, hidden), _scale("router", i))

    b = _B(seed)
    _causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: _llama_stack(b, "model.", layers, hidden, heads, kv_heads, hd, shared_inter, qkv_bias=True, mlp=moe),
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

    def moe(b: _B, p: str, i: int):
        q = p + "mlp."
        b.w(q + "gate.weight", (experts, hidden), _scale("router", i))
        for e in range(experts):
            _mlp_dense(b, f"{q}experts.{e}.", hidden, moe_inter, i)
        _mlp_dense(b, q + "shared_expert.", hidden, shared_inter, i)
        b.put(q + "router_scale", (1.0 + b.rng.standard_normal((1, experts)) * 0.1).astype(np.float32))

    b = _B(seed)
    _causal_lm(
        b,
        "model.",
        vocab,
        hidden,
        lambda: _llama_stack(
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


# --------------------------------------------------------------------------------------
# builders: DeepSeek MLA
# --------------------------------------------------------------------------------------


def fp8_block_quantize(w: np.ndarray, block: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """DeepSeek-V3 weight quantization: float8_e4m3fn values and an F32 ``scale_inv`` per
    block x block tile (partial tiles at the edges), W ~= W8 * scale_inv[i//128, j//128]."""
    rows, cols = w.shape
    nr, nc = -(-rows // block), -(-cols // block)
    scale = np.ones((nr, nc), np.float32)
    q = np.empty(w.shape, ml_dtypes.float8_e4m3fn)
    fmax = float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max)  # 448
    for bi in range(nr):
        for bj in range(nc):
            tile = w[bi * block : (bi + 1) * block, bj * block : (bj + 1) * block].astype(np.float32)
            amax = float(np.abs(tile).max())
            s = np.float32(amax / fmax) if amax > 0 else np.float32(1.0)
            scale[bi, bj] = s
            q[bi * block : (bi + 1) * block, bj * block : (bj + 1) * block] = (tile / s).astype(ml_dtypes.float8_e4m3fn)
    return q, scale


def fp8_block_dequantize(q: np.ndarray, scale_inv: np.ndarray, block: int = 128) -> np.ndarray:
    rows, cols = q.shape
    s = np.repeat(np.repeat(scale_inv.astype(np.float64), block, axis=0), block, axis=1)[:rows, :cols]
    return q.astype(np.float64) * s


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
) -> tuple[_B, dict]:
    b = _B(seed)

    def lin(layer: int, name_: str, shape, role: str | None, quant: bool = True):
        w = b.randn(shape, _scale(role or "mlp", layer))
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
            b.w(m + "gate.weight", (n_routed, hidden), _scale("router", i))
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

    b.w("model.embed_tokens.weight", (vocab, hidden), _scale("embed", 0))
    for i in range(layers):
        decoder(i)
    for j in range(mtp):
        # MTP module: appended as layer num_hidden_layers + j (DeepSeek-V3 README_WEIGHTS.md)
        i = layers + j
        p = f"model.layers.{i}."
        b.w(p + "embed_tokens.weight", (vocab, hidden), _scale("embed", 0))
        b.norm(p + "enorm.weight", hidden)
        b.norm(p + "hnorm.weight", hidden)
        b.w(p + "eh_proj.weight", (hidden, 2 * hidden), _scale("mlp", i))
        decoder(i)
        b.norm(p + "shared_head.norm.weight", hidden)
        b.w(p + "shared_head.head.weight", (vocab, hidden), _scale("embed", 1))
    b.norm("model.norm.weight", hidden)
    b.w("lm_head.weight", (vocab, hidden), _scale("embed", 1))

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


def build_deepseek_v2(seed: int = 0, *, layers: int = 3) -> Layout:
    """deepseek-ai/DeepSeek-V2: MLA with q LoRA.  Shapes (modeling_deepseek):
    q_a_proj (q_lora_rank, hidden), q_a_layernorm (q_lora_rank), q_b_proj
    (nh*(nope+rope), q_lora_rank), kv_a_proj_with_mqa (kv_lora_rank+rope, hidden),
    kv_a_layernorm (kv_lora_rank), kv_b_proj (nh*(nope+v), kv_lora_rank), o_proj
    (hidden, nh*v).  Layer 0 dense MLP, then MoE experts + shared_experts."""
    b, config = _deepseek(
        seed,
        "deepseek_v2",
        hidden=64,
        layers=layers,
        heads=4,
        q_lora_rank=48,
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
    return b.layout("deepseek_v2", config)


def build_deepseek_v2_lite(seed: int = 0, *, layers: int = 3) -> Layout:
    """deepseek-ai/DeepSeek-V2-Lite: ``q_lora_rank: null`` -> plain q_proj
    (nh*(nope+rope), hidden); rest of MLA as V2."""
    b, config = _deepseek(
        seed,
        "deepseek_v2_lite",
        hidden=64,
        layers=layers,
        heads=4,
        q_lora_rank=None,
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


# --------------------------------------------------------------------------------------
# builders: vision-language
# --------------------------------------------------------------------------------------


def _clip_tower(b: _B, p: str, *, hidden: int, layers: int, inter: int, patch: int, image: int):
    n_pos = (image // patch) ** 2 + 1
    e = p + "embeddings."
    b.w(e + "class_embedding", (hidden,), 0.02)
    b.w(e + "patch_embedding.weight", (hidden, 3, patch, patch), 0.02)
    b.w(e + "position_embedding.weight", (n_pos, hidden), 0.02)
    b.norm(p + "pre_layrnorm.weight", hidden)  # sic: CLIPVisionTransformer.pre_layrnorm
    b.w(p + "pre_layrnorm.bias", (hidden,), 0.01)
    for i in range(layers):
        q = f"{p}encoder.layers.{i}."
        for n in ("k_proj", "v_proj", "q_proj", "out_proj"):  # CLIPAttention registration order
            b.w(f"{q}self_attn.{n}.weight", (hidden, hidden), 0.05 * (i + 1))
            b.w(f"{q}self_attn.{n}.bias", (hidden,), 0.01)
        b.norm(q + "layer_norm1.weight", hidden)
        b.w(q + "layer_norm1.bias", (hidden,), 0.01)
        b.w(q + "mlp.fc1.weight", (inter, hidden), 0.02)
        b.w(q + "mlp.fc1.bias", (inter,), 0.01)
        b.w(q + "mlp.fc2.weight", (hidden, inter), 0.02)
        b.w(q + "mlp.fc2.bias", (hidden,), 0.01)
        b.norm(q + "layer_norm2.weight", hidden)
        b.w(q + "layer_norm2.bias", (hidden,), 0.01)
    b.norm(p + "post_layernorm.weight", hidden)
    b.w(p + "post_layernorm.bias", (hidden,), 0.01)


def build_llava(
    seed: int = 0, *, new_naming: bool = False, hidden: int = 64, layers: int = 3, heads: int = 4, vocab: int = 128
) -> Layout:
    """llava-hf/llava-1.5-7b-hf: ``language_model.model.layers.N.*`` (Vicuna = llama, MHA),
    ``language_model.lm_head``, CLIP ``vision_tower.vision_model.encoder.layers.N.self_attn.
    {q,k,v,out}_proj`` (with biases), ``multi_modal_projector.linear_1/2``.
    ``new_naming=True`` gives what transformers >= 4.52 save_pretrained writes
    (``_checkpoint_conversion_mapping``): ``model.language_model.*``, ``model.vision_tower.*``,
    ``model.multi_modal_projector.*``, ``lm_head.weight``.
    Ground truth = the LANGUAGE model's attention only."""
    hd = hidden // heads
    inter = hidden * 3
    vh, vl, vheads, vinter, patch, image = 32, 2, 2, 64, 14, 28
    if new_naming:
        lm, lm_head, vt, mmp = (
            "model.language_model.",
            "lm_head.weight",
            "model.vision_tower.",
            "model.multi_modal_projector.",
        )
    else:
        lm, lm_head, vt, mmp = (
            "language_model.model.",
            "language_model.lm_head.weight",
            "vision_tower.",
            "multi_modal_projector.",
        )
    b = _B(seed)
    _causal_lm(
        b,
        lm,
        vocab,
        hidden,
        lambda: _llama_stack(b, lm, layers, hidden, heads, heads, hd, inter),
        tie=False,
        lm_head=lm_head,
    )
    b.w(mmp + "linear_1.weight", (hidden, vh), 0.02)
    b.w(mmp + "linear_1.bias", (hidden,), 0.01)
    b.w(mmp + "linear_2.weight", (hidden, hidden), 0.02)
    b.w(mmp + "linear_2.bias", (hidden,), 0.01)
    _clip_tower(b, vt + "vision_model.", hidden=vh, layers=vl, inter=vinter, patch=patch, image=image)
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "model_type": "llava",
        "ignore_index": -100,
        "image_token_index": vocab - 2,
        "pad_token_id": vocab - 1,
        "projector_hidden_act": "gelu",
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "transformers_version": "4.36.0.dev0",
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
        "vocab_size": vocab,
        "text_config": {
            "_name_or_path": "lmsys/vicuna-7b-v1.5",
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": inter,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-05,
            "torch_dtype": "float16",
            "vocab_size": vocab,
        },
        "vision_config": {
            "hidden_size": vh,
            "image_size": image,
            "intermediate_size": vinter,
            "model_type": "clip_vision_model",
            "num_attention_heads": vheads,
            "num_hidden_layers": vl,
            "patch_size": patch,
            "projection_dim": 768,
            "vocab_size": 32000,
        },
    }
    return b.layout("llava_new_naming" if new_naming else "llava", config)


def build_qwen3_vl(
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int = 16,
    vocab: int = 128,
) -> Layout:
    """Qwen/Qwen3-VL-8B-Instruct (transformers' current VLM naming, shipped natively):
    ``model.language_model.layers.N.self_attn.{q,k,v,o}_proj`` + ``q_norm/k_norm``,
    ``lm_head.weight`` at top level, vision ``model.visual.blocks.N.attn.qkv`` (fused,
    [q;k;v] rows, with bias), ``attn.proj``, ``mlp.linear_fc1/2``, ``norm1/2``, merger and
    ``deepstack_merger_list``.  Ground truth = language model only."""
    inter = hidden * 3
    vh, depth, vheads, vinter, patch, tpatch, merge, npos = 32, 3, 2, 64, 16, 2, 2, 16
    deepstack = [0, 1]
    b = _B(seed)
    vis = "model.visual."
    b.w(vis + "patch_embed.proj.weight", (vh, 3, tpatch, patch, patch), 0.02)
    b.w(vis + "patch_embed.proj.bias", (vh,), 0.01)
    b.w(vis + "pos_embed.weight", (npos, vh), 0.02)
    for i in range(depth):
        p = f"{vis}blocks.{i}."
        b.norm(p + "norm1.weight", vh)
        b.w(p + "norm1.bias", (vh,), 0.01)
        b.norm(p + "norm2.weight", vh)
        b.w(p + "norm2.bias", (vh,), 0.01)
        b.w(p + "attn.qkv.weight", (3 * vh, vh), 0.05 * (i + 1))
        b.w(p + "attn.qkv.bias", (3 * vh,), 0.01)
        b.w(p + "attn.proj.weight", (vh, vh), 0.05)
        b.w(p + "attn.proj.bias", (vh,), 0.01)
        b.w(p + "mlp.linear_fc1.weight", (vinter, vh), 0.02)
        b.w(p + "mlp.linear_fc1.bias", (vinter,), 0.01)
        b.w(p + "mlp.linear_fc2.weight", (vh, vinter), 0.02)
        b.w(p + "mlp.linear_fc2.bias", (vh,), 0.01)
    mh = vh * merge * merge
    for p, norm_dim in [(vis + "merger.", vh)] + [
        (f"{vis}deepstack_merger_list.{k}.", mh) for k in range(len(deepstack))
    ]:
        b.norm(p + "norm.weight", norm_dim)
        b.w(p + "norm.bias", (norm_dim,), 0.01)
        b.w(p + "linear_fc1.weight", (mh, mh), 0.02)
        b.w(p + "linear_fc1.bias", (mh,), 0.01)
        b.w(p + "linear_fc2.weight", (hidden, mh), 0.02)
        b.w(p + "linear_fc2.bias", (hidden,), 0.01)
    lm = "model.language_model."
    _causal_lm(
        b,
        lm,
        vocab,
        hidden,
        lambda: _llama_stack(b, lm, layers, hidden, heads, kv_heads, head_dim, inter, qk_norm=True),
        tie=False,
        lm_head="lm_head.weight",
    )
    text = {
        "model_type": "qwen3_vl_text",
        **_qwen3_text_config(hidden, inter, layers, heads, kv_heads, head_dim, vocab, False),
        "rope_scaling": {"mrope_interleaved": True, "mrope_section": [24, 20, 20], "rope_type": "default"},
        "rope_theta": 5000000,
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "dtype": "bfloat16",
    }
    config = {
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "model_type": "qwen3_vl",
        "image_token_id": 151655,
        "video_token_id": 151656,
        "vision_start_token_id": 151652,
        "vision_end_token_id": 151653,
        "tie_word_embeddings": False,
        "transformers_version": "4.57.0.dev0",
        "text_config": text,
        "vision_config": {
            "deepstack_visual_indexes": deepstack,
            "depth": depth,
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": vh,
            "in_channels": 3,
            "initializer_range": 0.02,
            "intermediate_size": vinter,
            "model_type": "qwen3_vl",
            "num_heads": vheads,
            "num_position_embeddings": npos,
            "out_hidden_size": hidden,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": tpatch,
        },
    }
    return b.layout("qwen3_vl", config)


# --------------------------------------------------------------------------------------
# builders: packed quantized layouts (for "not supported" tests, no ground truth)
# --------------------------------------------------------------------------------------

_LLAMA_LINEARS = (
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
)


def _pack_int4_rows(iw: np.ndarray) -> np.ndarray:
    """AutoGPTQ packing: 8 consecutive rows (input dim) of 4-bit ints into one int32 row."""
    iw = iw.astype(np.uint32)
    out = np.zeros((iw.shape[0] // 8, iw.shape[1]), np.uint32)
    for j in range(8):
        out |= iw[j::8] << np.uint32(4 * j)
    return out.view(np.int32)


def _pack_int4_cols(iw: np.ndarray) -> np.ndarray:
    iw = iw.astype(np.uint32)
    out = np.zeros((iw.shape[0], iw.shape[1] // 8), np.uint32)
    for j in range(8):
        out |= iw[:, j::8] << np.uint32(4 * j)
    return out.view(np.int32)


def build_gptq_llama(
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    group_size: int = 32,
    vocab: int = 128,
) -> Layout:
    """TheBloke-style AutoGPTQ 4-bit llama: each Linear replaced by ``qweight`` I32
    (in/8, out), ``qzeros`` I32 (in/group, out/8; v1 format stores zero-1), ``scales`` F16
    (in/group, out), ``g_idx`` I32 (in,); other tensors F16.  No ground truth."""
    base = build_llama(seed, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab)
    b = _B(seed + 1)
    for name, arr in base.tensors.items():
        mod = name[: -len(".weight")] if name.endswith(".weight") else None
        if mod is None or not mod.endswith(_LLAMA_LINEARS) or ".layers." not in mod:
            b.put(name, arr.astype(np.float16))
            continue
        w = arr.astype(np.float32).T  # (in, out)
        n_in, n_out = w.shape
        g = w.reshape(n_in // group_size, group_size, n_out)
        scales = (np.abs(g).max(axis=1) / 7.0).astype(np.float16)  # sym, zero = 8
        s = np.repeat(scales.astype(np.float32), group_size, axis=0)
        iw = np.clip(np.rint(w / s) + 8, 0, 15).astype(np.uint32)
        zeros = np.full((n_in // group_size, n_out), 8 - 1, np.uint32)  # v1: zero - 1
        b.put(mod + ".qweight", _pack_int4_rows(iw), fixed="I32")
        b.put(mod + ".qzeros", _pack_int4_cols(zeros), fixed="I32")
        b.put(mod + ".scales", scales, fixed="F16")
        b.put(mod + ".g_idx", (np.arange(n_in) // group_size).astype(np.int32), fixed="I32")
    qc = {
        "bits": 4,
        "group_size": group_size,
        "damp_percent": 0.01,
        "desc_act": False,
        "static_groups": False,
        "sym": True,
        "true_sequential": True,
        "model_name_or_path": None,
        "model_file_base_name": "model",
        "quant_method": "gptq",
        "checkpoint_format": "gptq",
    }
    config = dict(base.config, torch_dtype="float16", quantization_config=qc)
    for name, arr in b.t.items():
        if arr.dtype == np.float16:
            b.fixed.setdefault(name, "F16")
    return b.layout("gptq_llama", config, extra_files={"quantize_config.json": qc})


NF4_CODE = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    np.float32,
)


def build_bnb4_llama(
    seed: int = 0,
    *,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab: int = 128,
    blocksize: int = 64,
) -> Layout:
    """bitsandbytes NF4 llama as transformers saves it: each Linear ``weight`` is U8
    (numel/2, 1) packed nibbles, plus ``weight.absmax`` F32 (numel/blocksize,),
    ``weight.quant_map`` F32 (16,) and ``weight.quant_state.bitsandbytes__nf4`` U8 (the
    JSON ``{"quant_type", "blocksize", "dtype", "shape"}`` as bytes).  No ground truth."""
    base = build_llama(seed, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab)
    b = _B(seed + 1)
    for name, arr in base.tensors.items():
        mod = name[: -len(".weight")] if name.endswith(".weight") else None
        if mod is None or not mod.endswith(_LLAMA_LINEARS) or ".layers." not in mod:
            b.put(name, arr)
            continue
        flat = arr.reshape(-1, blocksize)
        absmax = np.abs(flat).max(axis=1).astype(np.float32)
        normed = flat / np.where(absmax == 0, 1, absmax)[:, None]
        idx = np.abs(normed[..., None] - NF4_CODE).argmin(-1).astype(np.uint8).reshape(-1)
        packed = ((idx[0::2] << 4) | idx[1::2]).astype(np.uint8).reshape(-1, 1)
        state = json.dumps(
            {"quant_type": "nf4", "blocksize": blocksize, "dtype": "bfloat16", "shape": list(arr.shape)}
        ).encode()
        b.put(name, packed, fixed="U8")
        b.put(name + ".absmax", absmax, fixed="F32")
        b.put(name + ".quant_map", NF4_CODE.copy(), fixed="F32")
        b.put(name + ".quant_state.bitsandbytes__nf4", np.frombuffer(state, np.uint8).copy(), fixed="U8")
    qc = {
        "_load_in_4bit": True,
        "_load_in_8bit": False,
        "bnb_4bit_compute_dtype": "bfloat16",
        "bnb_4bit_quant_storage": "uint8",
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": False,
        "llm_int8_enable_fp32_cpu_offload": False,
        "llm_int8_has_fp16_weight": False,
        "llm_int8_skip_modules": None,
        "llm_int8_threshold": 6.0,
        "load_in_4bit": True,
        "load_in_8bit": False,
        "quant_method": "bitsandbytes",
    }
    config = dict(base.config, quantization_config=qc)
    return b.layout("bnb4_llama", config)


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------

GROUND_TRUTH_BUILDERS: dict[str, Callable[..., Layout]] = {
    "llama": build_llama,
    "mistral": build_mistral,
    "qwen2": build_qwen2,
    "qwen3": build_qwen3,
    "gemma": build_gemma,
    "gemma2": lambda seed=0, **kw: build_gemma(seed, version=2, **kw),
    "phi3": build_phi3,
    "gpt2": build_gpt2,
    "gpt_neox": build_gpt_neox,
    "falcon_new_arch": build_falcon_40b,
    "falcon_7b": build_falcon_7b,
    "bert": build_bert,
    "mixtral": build_mixtral,
    "qwen2_moe": build_qwen2_moe,
    "deepseek_v2": build_deepseek_v2,
    "deepseek_v2_lite": build_deepseek_v2_lite,
    "deepseek_v3_fp8": build_deepseek_v3_fp8,
    "pangu_pro_moe": build_pangu_pro_moe,
    "llava": build_llava,
    "llava_new_naming": lambda seed=0, **kw: build_llava(seed, new_naming=True, **kw),
    "qwen3_vl": build_qwen3_vl,
}

BUILDERS: dict[str, Callable[..., Layout]] = {
    **GROUND_TRUTH_BUILDERS,
    "gptq_llama": build_gptq_llama,
    "bnb4_llama": build_bnb4_llama,
}


# --------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------


def serialize_safetensors(
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
    *,
    header_bytes: int | None = None,
    min_header_bytes: int | None = None,
    padding_key: str = "padding",
) -> bytes:
    """Bytes of a safetensors file, laid out as the safetensors Rust serializer does:
    8-byte little-endian header length, compact JSON header (``__metadata__`` first, then
    tensors in data order), spaces to a multiple of 8, then the data with tensors sorted by
    dtype alignment (largest first) then name.

    ``header_bytes`` makes the header (the N of the 8-byte prefix) exactly that long by
    adding a ``__metadata__[padding_key]`` string (a non-multiple of 8 gives a header that
    is not 8-aligned, which safetensors itself never writes); ``min_header_bytes`` pads up to
    at least that size (rounded up to a multiple of 8)."""
    for _name, arr in tensors.items():
        st_dtype_name(arr)
    items = sorted(tensors.items(), key=lambda kv: (_ST_ORDER.index(st_dtype_name(kv[1])), kv[0]))

    def header_json(meta) -> bytes:
        header: dict = {}
        if meta is not None:
            header["__metadata__"] = {str(k): str(v) for k, v in meta.items()}
        off = 0
        for name, arr in items:
            n = int(arr.nbytes)
            header[name] = {
                "dtype": st_dtype_name(arr),
                "shape": [int(s) for s in arr.shape],
                "data_offsets": [off, off + n],
            }
            off += n
        return json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    meta = dict(metadata) if metadata is not None else None
    raw = header_json(meta)
    target = header_bytes
    if target is None and min_header_bytes is not None and len(raw) + (-len(raw)) % 8 < min_header_bytes:
        target = min_header_bytes + (-min_header_bytes) % 8
    if target is not None:
        meta = dict(meta or {})
        meta[padding_key] = ""
        base = len(header_json(meta))
        if target < base:
            raise ValueError(f"header needs at least {base} bytes, asked for {target}")
        meta[padding_key] = "x" * (target - base)
        raw = header_json(meta)
        assert len(raw) == target, (len(raw), target)
    else:
        raw += b" " * ((-len(raw)) % 8)
    chunks = [struct.pack("<Q", len(raw)), raw]
    for _, arr in items:
        chunks.append(np.ascontiguousarray(arr).tobytes())  # little-endian hosts only
    return b"".join(chunks)


def read_safetensors_header(path) -> tuple[int, dict]:
    """(header length N, parsed JSON header) with a plain parse (works for F8 too)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


def read_safetensors_file(path) -> tuple[dict[str, np.ndarray], dict | None]:
    """Plain reader for every dtype in ST_DTYPES (incl. F8_E4M3/F8_E5M2)."""
    n, header = read_safetensors_header(path)
    data = Path(path).read_bytes()[8 + n :]
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        a, z = info["data_offsets"]
        dt = ST_DTYPES[info["dtype"]]
        out[name] = np.frombuffer(data[a:z], dtype=dt).reshape(info["shape"])
    return out, meta


def write_safetensors_file(
    tensors: Mapping[str, np.ndarray],
    path,
    metadata: Mapping[str, str] | None = None,
    dtypes: Mapping[str, str] | None = None,
    *,
    header_bytes: int | None = None,
    min_header_bytes: int | None = None,
) -> Path:
    """Low-level writer: ``dtypes`` maps a tensor name to the safetensors dtype it is stored
    as (F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U8 BOOL ...); others keep theirs."""
    dtypes = dtypes or {}
    conv = {
        name: _convert(np.asarray(arr), dtypes[name]) if name in dtypes else np.asarray(arr)
        for name, arr in tensors.items()
    }
    path = Path(path)
    path.write_bytes(
        serialize_safetensors(conv, metadata, header_bytes=header_bytes, min_header_bytes=min_header_bytes)
    )
    return path


def filler_tensors(n: int, prefix: str = "extra.filler") -> dict[str, np.ndarray]:
    """``n`` tiny F32 tensors with long-ish names, to blow a header past 100 kB."""
    return {f"{prefix}.{i:06d}.weight": np.full((1,), i, np.float32) for i in range(n)}


def write_safetensors_dir(
    layout: Layout,
    path,
    *,
    dtype: str = "F32",
    shards: int = 1,
    index: bool | None = None,
    metadata: Mapping[str, str] | None = None,
    header_bytes: int | None = None,
    min_header_bytes: int | None = None,
    extra_tensors: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """A checkpoint directory as transformers' save_pretrained writes it.

    ``config.json`` (+ ``layout.extra_files``) and either ``model.safetensors`` or
    ``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``
    (``{"metadata": {"total_size": bytes}, "weight_map": {name: file}}``, keys sorted).
    ``index=None``: index iff shards > 1; ``True`` forces an index (a 1-shard index exists
    in the wild); ``False`` suppresses it.  Shards are cut in state-dict order by size, so
    one layer can straddle two files.  F32 tensors are converted to ``dtype`` unless the
    layout fixes their dtype (FP8 + scale_inv, GPTQ, bnb ...).  ``metadata`` defaults to
    ``{"format": "pt"}``; ``header_bytes``/``min_header_bytes`` apply to the first shard."""
    if dtype not in ("F32", "F16", "BF16"):
        raise ValueError(dtype)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(layout.config, indent=2) + "\n")
    for fname, content in layout.extra_files.items():
        (path / fname).write_text(json.dumps(content, indent=2) + "\n")
    meta = {"format": "pt"} if metadata is None else dict(metadata)

    stored: dict[str, np.ndarray] = {}
    for name, arr in list(layout.tensors.items()) + list((extra_tensors or {}).items()):
        st = (
            layout.stored_dtype(name, dtype)
            if name in layout.tensors
            else (dtype if arr.dtype == np.float32 else st_dtype_name(arr))
        )
        stored[name] = _convert(arr, st)

    names = list(stored)
    if shards < 1 or shards > len(names):
        raise ValueError(f"shards={shards}")
    total = sum(a.nbytes for a in stored.values())
    groups: list[list[str]] = [[] for _ in range(shards)]
    acc, cur = 0, 0
    for k, name in enumerate(names):
        remaining = len(names) - k
        want = min(int(acc * shards / total), shards - 1) if total else 0
        # advance one shard at a time; never leave a later shard empty
        if groups[cur] and (want > cur or shards - cur - 1 >= remaining):
            cur += 1
        groups[cur].append(name)
        acc += stored[name].nbytes

    use_index = (shards > 1) if index is None else index
    if shards > 1 or use_index:
        files = [f"model-{j + 1:05d}-of-{shards:05d}.safetensors" for j in range(shards)]
    else:
        files = ["model.safetensors"]
    weight_map = {}
    for j, (fname, group) in enumerate(zip(files, groups)):
        serialize_kw = {"header_bytes": header_bytes, "min_header_bytes": min_header_bytes} if j == 0 else {}
        (path / fname).write_bytes(serialize_safetensors({n: stored[n] for n in group}, meta, **serialize_kw))
        for n in group:
            weight_map[n] = fname
    if use_index:
        idx = {"metadata": {"total_size": int(total)}, "weight_map": weight_map}
        (path / "model.safetensors.index.json").write_text(json.dumps(idx, indent=2, sort_keys=True) + "\n")
    return path


# --------------------------------------------------------------------------------------
# GGUF (llama layout, as llama.cpp's convert_hf_to_gguf.py lays it out)
# --------------------------------------------------------------------------------------


def llama_permute(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """convert_hf_to_gguf.py ``LlamaModel.permute``: HF rotate-half row order -> GGML
    interleaved pairs, per head.  Q: permute(w, nh, nh); K: permute(w, nh, nkv)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_unpermute(w: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_GGUF_LLAMA_MAP = [
    (r"^model\.embed_tokens\.weight$", "token_embd.weight"),
    (r"^model\.norm\.weight$", "output_norm.weight"),
    (r"^lm_head\.weight$", "output.weight"),
    (r"^model\.layers\.(\d+)\.input_layernorm\.weight$", r"blk.\1.attn_norm.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$", r"blk.\1.attn_q.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.k_proj\.weight$", r"blk.\1.attn_k.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.v_proj\.weight$", r"blk.\1.attn_v.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$", r"blk.\1.attn_output.weight"),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.weight$", r"blk.\1.ffn_norm.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$", r"blk.\1.ffn_gate.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.up_proj\.weight$", r"blk.\1.ffn_up.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.down_proj\.weight$", r"blk.\1.ffn_down.weight"),
]


def _gguf_name(hf: str) -> str:
    for pat, rep in _GGUF_LLAMA_MAP:
        if re.match(pat, hf):
            return re.sub(pat, rep, hf)
    raise KeyError(f"no GGUF name for {hf}")


def gguf_expected_tensors(layout: Layout) -> dict[str, np.ndarray]:
    """GGUF name -> float32 array (HF (rows, cols) orientation) the GGUF stores before
    quantization, i.e. with Q/K rows permuted; in the order convert_hf_to_gguf.py emits
    them (it walks the safetensors keys, which are sorted by name)."""
    c = layout.config
    nh, nkv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    out = {}
    for hf in sorted(layout.tensors):
        w = layout.tensors[hf].astype(np.float32)
        if hf.endswith("self_attn.q_proj.weight"):
            w = llama_permute(w, nh, nh)
        elif hf.endswith("self_attn.k_proj.weight"):
            w = llama_permute(w, nh, nkv)
        out[_gguf_name(hf)] = w
    return out


def _q4k_pack(d, dmin, sc, mq, q) -> np.ndarray:
    nb = q.shape[0]
    scales = np.zeros((nb, 12), np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (mq[:, 0:4] & 63) | ((mq[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mq[:, 4:8] & 0xF) << 4)
    q = q.reshape(nb, 4, 2, 32)
    qs = (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(nb, 128).astype(np.uint8)
    return np.concatenate([d.reshape(nb, 1).view(np.uint8), dmin.reshape(nb, 1).view(np.uint8), scales, qs], axis=1)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """A simple (non-optimal, no search) but format-exact Q4_K quantizer: 256-value super
    blocks of 8 sub-blocks of 32, 6-bit scales/mins, f16 d/dmin, 144 bytes per block.
    gguf-py 0.19 can dequantize Q4_K but not quantize it.  Rows must be multiples of 256."""
    x = np.asarray(x, np.float32)
    rows, n = x.shape
    if n % 256:
        raise ValueError("Q4_K needs rows that are a multiple of 256")
    blk = x.reshape(-1, 8, 32)
    mins = np.minimum(blk.min(-1), 0.0)
    maxs = np.maximum(blk.max(-1), 0.0)
    scale = (maxs - mins) / 15.0
    m = -mins
    d = (scale.max(-1) / 63.0).astype(np.float16)
    dmin = (m.max(-1) / 63.0).astype(np.float16)
    df, dmf = d.astype(np.float32)[:, None], dmin.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(df > 0, np.ceil(scale / df), 0).clip(0, 63).astype(np.uint8)
        mq = np.where(dmf > 0, np.ceil(m / dmf), 0).clip(0, 63).astype(np.uint8)
        eff_d = (df * sc)[..., None]
        eff_m = (dmf * mq)[..., None]
        q = np.where(eff_d > 0, np.rint((blk + eff_m) / eff_d), 0).clip(0, 15).astype(np.uint8)
    return _q4k_pack(d, dmin, sc, mq, q).reshape(rows, n // 256 * 144)


def _gguf_quantize(data: np.ndarray, qtype):
    """(bytes-or-floats, actual type) with llama.cpp's fallbacks."""
    import gguf

    Q = gguf.GGMLQuantizationType
    if qtype in (Q.F32, Q.F16):
        return gguf.quants.quantize(data, qtype), qtype
    if qtype == Q.Q4_K:
        if data.shape[-1] % 256 == 0:
            return quantize_q4_k(data), qtype
        qtype = Q.Q5_0  # llama-quant.cpp: incompatible Q4_K -> Q5_0 -> F16
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if data.shape[-1] % block != 0:
        return gguf.quants.quantize(data, Q.F16), Q.F16  # convert_hf_to_gguf: QuantError -> F16
    return gguf.quants.quantize(data, qtype), qtype


def write_gguf(layout: Layout, path, *, qtype=None, arch: str = "llama") -> Path:
    """A llama GGUF as llama.cpp's converter lays it out: blk.N.attn_q/k/v/output, ffn_*,
    token_embd, output_norm, output; Q and K rows permuted per head
    (``LlamaModel.permute``); 1-D tensors and ``*_norm.weight`` in F32; 2-D weights in
    ``qtype`` (F32, F16, BF16, Q8_0, Q4_0/1, Q5_0/1 via gguf.quants, Q4_K via
    :func:`quantize_q4_k`), falling back like llama.cpp when a row does not fit the block
    size.  Metadata: general.architecture, llama.block_count, llama.context_length,
    llama.embedding_length, llama.feed_forward_length, llama.attention.head_count(_kv),
    llama.rope.*, llama.attention.layer_norm_rms_epsilon, llama.vocab_size,
    general.file_type; general.alignment left at its default (not written)."""
    import gguf

    Q = gguf.GGMLQuantizationType
    if qtype is None:
        qtype = Q.F32
    if arch != "llama" or layout.config.get("model_type") not in ("llama", "mistral"):
        raise NotImplementedError("write_gguf only lays out llama/mistral layouts")
    c = layout.config
    nh = c["num_attention_heads"]
    nkv = c.get("num_key_value_heads", nh)
    hd = c.get("head_dim") or c["hidden_size"] // nh
    ftype = {
        Q.F32: gguf.LlamaFileType.ALL_F32,
        Q.F16: gguf.LlamaFileType.MOSTLY_F16,
        Q.BF16: gguf.LlamaFileType.MOSTLY_BF16,
        Q.Q8_0: gguf.LlamaFileType.MOSTLY_Q8_0,
        Q.Q4_0: gguf.LlamaFileType.MOSTLY_Q4_0,
        Q.Q4_1: gguf.LlamaFileType.MOSTLY_Q4_1,
        Q.Q5_0: gguf.LlamaFileType.MOSTLY_Q5_0,
        Q.Q5_1: gguf.LlamaFileType.MOSTLY_Q5_1,
        Q.Q4_K: gguf.LlamaFileType.MOSTLY_Q4_K_M,
    }[qtype]
    path = Path(path)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(layout.name)
    w.add_vocab_size(c["vocab_size"])
    w.add_context_length(c.get("max_position_embeddings", 2048))
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_rope_dimension_count(hd)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(float(c.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(c.get("rms_norm_eps", 1e-5)))
    w.add_file_type(int(ftype))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, data in gguf_expected_tensors(layout).items():
        if data.ndim <= 1 or name.endswith("_norm.weight"):
            arr, t = data.astype(np.float32), Q.F32
        else:
            arr, t = _gguf_quantize(data, qtype)
        w.add_tensor(name, arr, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path

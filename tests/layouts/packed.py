"""Packed 4-bit checkpoints the product refuses by name (GPTQ, bitsandbytes NF4): the real tensor layouts, no ground
truth."""

from __future__ import annotations

import json

import numpy as np

from .base import CheckpointBuilder, Layout
from .llama import build_llama

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
    b = CheckpointBuilder(seed + 1)
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

FP4_CODE = (np.array([0, 0.0625, 8, 12, 4, 6, 2, 3, -0.0, -0.0625, -8, -12, -4, -6, -2, -3], np.float32) / 12).astype(
    np.float32
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
    b = CheckpointBuilder(seed + 1)
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


def quantize_llama(
    base: Layout,
    method: str,
    *,
    bits: int = 4,
    group_size: int = 32,
    act_order: bool = False,
    quant_type: str = "nf4",
    double_quant: bool = False,
    symmetric: bool = True,
    ct_format: str = "pack-quantized",
) -> Layout:
    """``base`` (a Llama layout) as a quantizer writes it, every Linear of its layers packed in the real tensor
    names and ``quantization_config`` of ``method``: "gptq" (AutoGPTQ / GPTQModel v1: qweight, qzeros, scales,
    g_idx; ``act_order`` assigns input features to groups in a permuted order), "awq" (AutoAWQ GEMM: qweight,
    qzeros, scales), "bnb4" (transformers + bitsandbytes: weight, absmax, quant_map, nested_*, quant_state) or
    "compressed-tensors" (llm-compressor: weight_packed, weight_scale, weight_zero_point when asymmetric,
    weight_g_idx with act-order, weight_shape; ``ct_format`` "int-quantized": int8 ``weight`` per channel).
    Other tensors F16 (bitsandbytes: as they were). No ground truth: the values are the quantizer's."""
    from .quantize import awq_quantize, bnb4_quantize, ct_pack_to_int32, ct_quantize, gptq_quantize

    b = CheckpointBuilder(0)
    rng = np.random.default_rng(1)
    for name, arr in base.tensors.items():
        mod = name[: -len(".weight")] if name.endswith(".weight") else None
        if mod is None or not mod.endswith(_LLAMA_LINEARS) or ".layers." not in mod:
            b.put(name, arr if method == "bnb4" else arr.astype(np.float16), fixed=None if method == "bnb4" else "F16")
            continue
        w = arr.astype(np.float32)
        if method == "gptq":
            perm = rng.permutation(w.shape[1]) if act_order else None
            qweight, qzeros, scales, g_idx, _ = gptq_quantize(w, bits, group_size, perm)
            b.put(mod + ".qweight", qweight, fixed="I32")
            b.put(mod + ".qzeros", qzeros, fixed="I32")
            b.put(mod + ".scales", scales, fixed="F16")
            b.put(mod + ".g_idx", g_idx, fixed="I32")
        elif method == "compressed-tensors":
            perm = rng.permutation(w.shape[1]) if act_order else None
            as_int8 = ct_format == "int-quantized"
            q = ct_quantize(w, 8 if as_int8 else bits, None if as_int8 else group_size, symmetric, perm, np.float16)
            if as_int8:
                b.put(mod + ".weight", q["q"].astype(np.int8), fixed="I8")
            else:
                b.put(mod + ".weight_packed", ct_pack_to_int32(q["q"], bits), fixed="I32")
                b.put(mod + ".weight_shape", np.array(w.shape, np.int64), fixed="I64")
            b.put(mod + ".weight_scale", q["weight_scale"], fixed="F16")
            if "weight_zero_point" in q:
                zp = q["weight_zero_point"]
                zp_packed = zp.astype(np.int8) if as_int8 else ct_pack_to_int32(zp, bits, packed_dim=0)
                b.put(mod + ".weight_zero_point", zp_packed, fixed="I8" if as_int8 else "I32")
            if "weight_g_idx" in q:
                b.put(mod + ".weight_g_idx", q["weight_g_idx"], fixed="I32")
        elif method == "awq":
            qweight, qzeros, scales, _ = awq_quantize(w, group_size)
            b.put(mod + ".qweight", qweight, fixed="I32")
            b.put(mod + ".qzeros", qzeros, fixed="I32")
            b.put(mod + ".scales", scales, fixed="F16")
        else:
            code = NF4_CODE if quant_type == "nf4" else FP4_CODE
            q = bnb4_quantize(w, code, 64, nested=double_quant)
            state: dict[str, object] = {
                "quant_type": quant_type,
                "blocksize": 64,
                "dtype": "bfloat16",
                "shape": list(w.shape),
            }
            for part in ("absmax", "quant_map", "nested_absmax", "nested_quant_map"):
                if part in q:
                    value = np.asarray(q[part])
                    b.put(f"{name}.{part}", value, fixed="U8" if value.dtype == np.uint8 else "F32")
            if double_quant:
                state.update(nested_blocksize=256, nested_offset=q["nested_offset"], nested_dtype="float32")
            b.put(name, np.asarray(q["weight"]), fixed="U8")
            raw = np.frombuffer(json.dumps(state).encode(), np.uint8).copy()
            b.put(f"{name}.quant_state.bitsandbytes__{quant_type}", raw, fixed="U8")
    configs = {
        "gptq": {
            "bits": bits,
            "group_size": group_size,
            "damp_percent": 0.01,
            "desc_act": act_order,
            "static_groups": False,
            "sym": False,
            "true_sequential": True,
            "quant_method": "gptq",
            "checkpoint_format": "gptq",
        },
        "awq": {"quant_method": "awq", "bits": 4, "group_size": group_size, "zero_point": True, "version": "gemm"},
        "bnb4": {
            "quant_method": "bitsandbytes",
            "load_in_4bit": True,
            "bnb_4bit_quant_type": quant_type,
            "bnb_4bit_use_double_quant": double_quant,
            "bnb_4bit_compute_dtype": "bfloat16",
            "bnb_4bit_quant_storage": "uint8",
        },
    }
    ct_bits = 8 if ct_format == "int-quantized" else bits
    configs["compressed-tensors"] = {
        "quant_method": "compressed-tensors",
        "format": ct_format,
        "quantization_status": "compressed",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": ct_bits,
                    "type": "int",
                    "symmetric": symmetric,
                    "strategy": "channel" if ct_format == "int-quantized" else "group",
                    "group_size": None if ct_format == "int-quantized" else group_size,
                    "actorder": "group" if act_order else None,
                    "dynamic": False,
                    "observer": "minmax",
                },
                "input_activations": None,
                "output_activations": None,
                "format": ct_format,
            }
        },
        "ignore": ["lm_head"],
        "kv_cache_scheme": None,
        "global_compression_ratio": None,
    }
    config = dict(base.config, torch_dtype="float16", quantization_config=configs[method])
    return b.layout(f"{method}_{base.name}", config)

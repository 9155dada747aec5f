"""GGUF files of llama layouts, written with gguf-py's GGUFWriter as llama.cpp's convert_hf_to_gguf.py lays them
out (Q/K rows permuted per head, norms and 1-D tensors F32, llama.cpp's fallbacks when a row does not fit a
block)."""

from __future__ import annotations

import re
from pathlib import Path

import gguf
import numpy as np

from .base import Layout
from .quantize import quantize_q4_k


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


def _gguf_quantize(data: np.ndarray, qtype):
    """(bytes-or-floats, actual type) with llama.cpp's fallbacks."""
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


def write_gguf(layout: Layout, path, *, qtype=None) -> Path:
    """A llama GGUF as llama.cpp's converter lays it out: blk.N.attn_q/k/v/output, ffn_*,
    token_embd, output_norm, output; Q and K rows permuted per head
    (``LlamaModel.permute``); 1-D tensors and ``*_norm.weight`` in F32; 2-D weights in
    ``qtype`` (F32, F16, BF16, Q8_0, Q4_0/1, Q5_0/1 via gguf.quants, Q4_K via
    :func:`quantize_q4_k`), falling back like llama.cpp when a row does not fit the block
    size.  Metadata: general.architecture, llama.block_count, llama.context_length,
    llama.embedding_length, llama.feed_forward_length, llama.attention.head_count(_kv),
    llama.rope.*, llama.attention.layer_norm_rms_epsilon, llama.vocab_size,
    general.file_type; general.alignment left at its default (not written)."""
    Q = gguf.GGMLQuantizationType
    if qtype is None:
        qtype = Q.F32
    if layout.config.get("model_type") not in ("llama", "mistral"):
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
    w = gguf.GGUFWriter(str(path), "llama")
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

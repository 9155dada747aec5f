"""Small but faithful checkpoints of real architectures, written by the tests themselves.

One module per family: ``llama`` (Llama, Mistral, Qwen2/3, Gemma, Phi-3), ``gpt`` (GPT-2, GPT-NeoX, Falcon,
BERT), ``moe`` (Mixtral, Qwen2-MoE, Pangu), ``deepseek`` (MLA, FP8), ``vlm`` (LLaVA, Qwen3-VL), ``packed`` (GPTQ,
bitsandbytes), ``fused`` (one unfused model fused as GPT-NeoX, Falcon or GPT-2 store it); ``safetensors_files`` and ``gguf_files`` write them, ``quantize`` holds the quantizers the libraries
lack.

Every builder returns a :class:`Layout`: the ``config.json`` the real Hugging Face model
ships (same keys, small values), the full state dict under the real tensor names, shapes
and orientation, and the ground truth of the attention weights per layer.

Sources the layouts were checked against (see tests/test_layouts.py):

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

from collections.abc import Callable

from .base import ST_DTYPES, Layout, noisy_copy
from .deepseek import build_deepseek_v2, build_deepseek_v2_lite, build_deepseek_v3_fp8
from .fused import FUSERS, fuse_as_falcon, fuse_as_gpt2, fuse_as_gpt_neox
from .gguf_files import gguf_expected_tensors, llama_permute, llama_unpermute, write_gguf
from .gpt import build_bert, build_falcon, build_falcon_7b, build_falcon_40b, build_gpt2, build_gpt_neox
from .llama import build_gemma, build_llama, build_mistral, build_phi3, build_qwen2, build_qwen3
from .moe import build_mixtral, build_pangu_pro_moe, build_qwen2_moe
from .packed import build_bnb4_llama, build_gptq_llama, quantize_llama
from .quantize import fp8_block_dequantize, fp8_block_quantize, quantize_q4_k
from .safetensors_files import (
    read_safetensors_file,
    read_safetensors_header,
    write_safetensors_dir,
    write_safetensors_file,
)
from .vlm import build_llava, build_qwen3_vl

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

__all__ = [
    "BUILDERS",
    "FUSERS",
    "GROUND_TRUTH_BUILDERS",
    "ST_DTYPES",
    "Layout",
    "build_bert",
    "build_bnb4_llama",
    "build_deepseek_v2",
    "build_deepseek_v2_lite",
    "build_deepseek_v3_fp8",
    "build_falcon",
    "build_falcon_7b",
    "build_falcon_40b",
    "build_gemma",
    "build_gpt2",
    "build_gpt_neox",
    "build_gptq_llama",
    "build_llama",
    "build_llava",
    "build_mistral",
    "build_mixtral",
    "build_pangu_pro_moe",
    "build_phi3",
    "build_qwen2",
    "build_qwen2_moe",
    "build_qwen3",
    "build_qwen3_vl",
    "fp8_block_dequantize",
    "fp8_block_quantize",
    "fuse_as_falcon",
    "fuse_as_gpt2",
    "fuse_as_gpt_neox",
    "gguf_expected_tensors",
    "llama_permute",
    "llama_unpermute",
    "noisy_copy",
    "quantize_llama",
    "quantize_q4_k",
    "read_safetensors_file",
    "read_safetensors_header",
    "write_gguf",
    "write_safetensors_dir",
    "write_safetensors_file",
]

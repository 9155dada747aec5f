"""Tensor names -> (kind, layer, expert) for every tensor a lineage probe reads.

The σ-curve needs attention only (``roles.py``); lineage evidence also needs the MLP, the
norms, the token embedding and MoE experts. Names come from the same data, gguf's
TensorNameMap. HF checkpoints store one tensor per expert
(``model.layers.3.block_sparse_moe.experts.2.w1``): the expert number is dropped to find
the merged template TensorNameMap knows (``...experts.w1``). GGUF stacks experts in one
3-D tensor (``blk.3.ffn_gate_exps``), expert first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from gguf import MODEL_TENSOR, TENSOR_NAMES
from gguf.tensor_mapping import TensorNameMap

from ..formats.tensor import TensorInfo
from ..roles import is_block_index

KIND_OF_TYPE: dict[MODEL_TENSOR, str] = {
    MODEL_TENSOR.TOKEN_EMBD: "embed",
    MODEL_TENSOR.OUTPUT: "lm_head",
    MODEL_TENSOR.OUTPUT_NORM: "final_norm",
    MODEL_TENSOR.ATTN_NORM: "attn_norm",
    MODEL_TENSOR.FFN_NORM: "ffn_norm",
    MODEL_TENSOR.ATTN_Q: "q",
    MODEL_TENSOR.ATTN_K: "k",
    MODEL_TENSOR.ATTN_V: "v",
    MODEL_TENSOR.ATTN_OUT: "o",
    MODEL_TENSOR.ATTN_QKV: "qkv",
    MODEL_TENSOR.FFN_GATE: "gate",
    MODEL_TENSOR.FFN_UP: "up",
    MODEL_TENSOR.FFN_DOWN: "down",
    MODEL_TENSOR.FFN_GATE_EXP: "gate_exp",
    MODEL_TENSOR.FFN_UP_EXP: "up_exp",
    MODEL_TENSOR.FFN_DOWN_EXP: "down_exp",
    MODEL_TENSOR.FFN_GATE_INP: "router",
}

MATRIX_KINDS = ("q", "k", "v", "o", "gate", "up", "down")
VECTOR_KINDS = ("attn_norm", "ffn_norm", "q_bias", "k_bias", "v_bias", "final_norm")
EXPERT_KINDS = {"gate_exp": "gate", "up_exp": "up", "down_exp": "down"}


@dataclass(frozen=True)
class Located:
    tensor: TensorInfo
    kind: str  # e.g. "q", "q_bias", "gate_exp", "embed"
    layer: int  # -1 for tensors outside the blocks
    expert: int | None  # HF per-expert tensors; None for dense or stacked (GGUF) tensors
    prefix: str


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, MODEL_TENSOR], dict[str, MODEL_TENSOR]]:
    """(block templates with {bid}, top-level names) -> tensor type."""
    blocks: dict[str, MODEL_TENSOR] = {}
    top: dict[str, MODEL_TENSOR] = {}
    cfgs = [TensorNameMap.block_mappings_cfg, *TensorNameMap.arch_block_mappings_cfg.values()]
    for cfg in cfgs:
        for ttype, keys in cfg.items():
            if ttype in KIND_OF_TYPE:
                for key in (*keys, TENSOR_NAMES[ttype]):
                    blocks.setdefault(key, ttype)
    for ttype, keys in TensorNameMap.mappings_cfg.items():
        if ttype in KIND_OF_TYPE:
            for key in (*keys, TENSOR_NAMES[ttype]):
                top.setdefault(key, ttype)
    blocks["transformer.h.{bid}.ln_attn"] = MODEL_TENSOR.ATTN_NORM  # Falcon-40B (see roles._OVERRIDES)
    blocks.pop("transformer.h.{bid}.ln_mlp", None)
    return blocks, top


def locate(name: str, tensor: TensorInfo) -> Located | None:
    suffix = next((s for s in (".weight", ".bias") if name.endswith(s)), "")
    if not suffix:
        return None
    parts = name[: -len(suffix)].split(".")
    blocks, top = _table()
    for start in range(len(parts)):
        rest = parts[start:]
        prefix = ".".join(parts[:start])
        key = ".".join(rest)
        if key in top and suffix == ".weight":
            return Located(tensor, KIND_OF_TYPE[top[key]], -1, None, prefix)
        numeric = [i for i, p in enumerate(rest) if is_block_index(p)]
        for j in numeric:
            for x in [None, *[i for i in numeric if i > j]]:
                kept = [("{bid}" if i == j else p) for i, p in enumerate(rest) if i != x]
                ttype = blocks.get(".".join(kept))
                if ttype is None:
                    continue
                kind = KIND_OF_TYPE[ttype]
                expert = int(rest[x]) if x is not None else None
                if expert is not None and not kind.endswith("_exp"):
                    continue
                if suffix == ".bias":
                    if kind not in ("q", "k", "v"):
                        return None
                    kind += "_bias"
                return Located(tensor, kind, int(rest[j]), expert, prefix)
    return None


def locate_all(tensors: dict[str, TensorInfo]) -> list[Located]:
    return [hit for name, t in tensors.items() if (hit := locate(name, t)) is not None]

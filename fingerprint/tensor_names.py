"""Tensor names -> (role, layer, expert): the one index of tensor names, from the gguf package's TensorNameMap.

TensorNameMap lists, per canonical tensor type, the HF names of ~100 architectures as templates
with ``{bid}`` for the block index, and llama.cpp's own GGUF names (``blk.{bid}.attn_q``). We index
those templates once and look a name up by putting ``{bid}`` where its layer number stands, after
stripping prefixes (``language_model.``, ``bert.``...) one component at a time. HF checkpoints store
one tensor per expert (``model.layers.3.block_sparse_moe.experts.2.w1``): the expert number is dropped
to find the merged template TensorNameMap knows (``...experts.w1``). GGUF stacks experts in one 3-D
tensor (``blk.3.ffn_gate_exps``), expert first.

The σ-curve asks for the attention roles (``ATTENTION_ROLES``, roles.py); a lineage probe also for
the MLP, the norms, the token embedding and MoE experts (``PROBE_ROLES``, lineage/probe.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

from gguf import MODEL_TENSOR, TENSOR_NAMES
from gguf.tensor_mapping import TensorNameMap

from .formats.tensor import TensorInfo

# canonical tensor type -> our role name (weights; a ".bias" tensor gets "<role>_bias")
ROLE_OF_TYPE: dict[MODEL_TENSOR, str] = {
    MODEL_TENSOR.TOKEN_EMBD: "embed",
    MODEL_TENSOR.OUTPUT: "lm_head",
    MODEL_TENSOR.OUTPUT_NORM: "final_norm",
    MODEL_TENSOR.ATTN_NORM: "attn_norm",
    MODEL_TENSOR.ATTN_Q: "q",
    MODEL_TENSOR.ATTN_K: "k",
    MODEL_TENSOR.ATTN_V: "v",
    MODEL_TENSOR.ATTN_OUT: "o",
    MODEL_TENSOR.ATTN_QKV: "qkv",
    MODEL_TENSOR.ATTN_Q_A: "q_a",
    MODEL_TENSOR.ATTN_Q_B: "q_b",
    MODEL_TENSOR.ATTN_KV_A_MQA: "kv_a",
    MODEL_TENSOR.ATTN_KV_B: "kv_b",
    MODEL_TENSOR.ATTN_K_B: "k_b",
    MODEL_TENSOR.ATTN_V_B: "v_b",
    MODEL_TENSOR.ATTN_Q_NORM: "q_norm",
    MODEL_TENSOR.ATTN_K_NORM: "k_norm",
    MODEL_TENSOR.ATTN_Q_A_NORM: "q_a_norm",
    MODEL_TENSOR.ATTN_KV_A_NORM: "kv_a_norm",
    MODEL_TENSOR.FFN_NORM: "ffn_norm",
    MODEL_TENSOR.FFN_GATE: "gate",
    MODEL_TENSOR.FFN_UP: "up",
    MODEL_TENSOR.FFN_DOWN: "down",
    MODEL_TENSOR.FFN_GATE_EXP: "gate_exp",
    MODEL_TENSOR.FFN_UP_EXP: "up_exp",
    MODEL_TENSOR.FFN_DOWN_EXP: "down_exp",
    MODEL_TENSOR.FFN_GATE_INP: "router",
}

# What the σ-curve reads: attention projections and the norms around attention.
ATTENTION_PROJECTIONS = ("q", "k", "v", "o", "qkv", "q_a", "q_b", "kv_a", "kv_b", "k_b", "v_b")
ATTENTION_ROLES = frozenset((*ATTENTION_PROJECTIONS, "attn_norm", "q_norm", "k_norm", "q_a_norm", "kv_a_norm"))
# What a lineage probe reads from (norm vectors and q/k/v biases included; fused QKV split into Q, K and V; MLA's
# q_a/kv_a stand in for Q/K, roles.MLA_STAND_INS).
MATRIX_ROLES = ("q", "k", "v", "o", "gate", "up", "down")
VECTOR_ROLES = ("attn_norm", "ffn_norm", "q_bias", "k_bias", "v_bias", "final_norm")
EXPERT_ROLES = {"gate_exp": "gate", "up_exp": "up", "down_exp": "down"}  # stacked/per-expert role -> dense role
PROBE_ROLES = frozenset(
    (*MATRIX_ROLES, *VECTOR_ROLES, *EXPERT_ROLES, "qkv", "q_a", "kv_a", "embed", "lm_head", "final_norm", "router")
)

# Where llama.cpp's naming differs from what the HF model does: Falcon-40B's ln_attn is the
# norm before attention (llama.cpp calls ln_mlp its attn_norm, for its own graph).
_OVERRIDES: dict[str, MODEL_TENSOR | None] = {
    "transformer.h.{bid}.ln_attn": MODEL_TENSOR.ATTN_NORM,
    "transformer.h.{bid}.ln_mlp": None,
}

_SUFFIXES = (".weight", ".bias")
MAX_BLOCK_DIGITS = 5  # a layer or expert number has at most this many digits (real models: a few hundred layers)


@dataclass(frozen=True)
class TensorName:
    """What a tensor's name says about it."""

    role: str  # e.g. "q", "q_bias", "gate_exp", "embed"
    layer: int  # -1 for tensors outside the blocks (embedding, output, final norm)
    expert: int | None  # HF per-expert tensors; None for dense or stacked (GGUF) tensors
    prefix: str  # the name parts before the template, e.g. "language_model" ("" for none)


@dataclass(frozen=True)
class NamedTensor:
    """A tensor with what its name says."""

    tensor: TensorInfo
    role: str
    layer: int
    expert: int | None
    prefix: str


def is_block_index(part: str) -> bool:
    """A name part that can be a layer or expert number: ASCII digits ('²' is a digit to str.isdigit, not to int),
    short enough that a hostile name cannot make the tool plan billions of layers."""
    return part.isascii() and part.isdigit() and len(part) <= MAX_BLOCK_DIGITS


@lru_cache(maxsize=1)
def _templates() -> tuple[dict[str, MODEL_TENSOR], dict[str, MODEL_TENSOR]]:
    """(block templates with {bid}, top-level names) -> tensor type, for the types in ROLE_OF_TYPE. When
    TensorNameMap gives a name several meanings, the first (most common) one wins."""
    blocks: dict[str, MODEL_TENSOR] = {}
    top: dict[str, MODEL_TENSOR] = {}
    for cfg in (TensorNameMap.block_mappings_cfg, *TensorNameMap.arch_block_mappings_cfg.values()):
        for ttype, keys in cfg.items():
            if ttype in ROLE_OF_TYPE:
                for key in (*keys, TENSOR_NAMES[ttype]):
                    blocks.setdefault(key, ttype)
    for ttype, keys in TensorNameMap.mappings_cfg.items():
        if ttype in ROLE_OF_TYPE:
            for key in (*keys, TENSOR_NAMES[ttype]):
                top.setdefault(key, ttype)
    for key, override in _OVERRIDES.items():
        if override is None:
            blocks.pop(key, None)
        else:
            blocks[key] = override
    return blocks, top


def parse_name(name: str, among: Collection[str]) -> TensorName | None:
    """What a ``.weight`` or ``.bias`` tensor name says, when it names one of the roles ``among`` (weight
    roles, without "_bias"); None otherwise. The bias of a norm is None: no statistic uses it."""
    suffix = next((s for s in _SUFFIXES if name.endswith(s)), "")
    if not suffix:
        return None
    parts = name[: -len(suffix)].split(".")
    blocks, top = _templates()

    def wanted(ttype: MODEL_TENSOR | None) -> str | None:
        role = ROLE_OF_TYPE[ttype] if ttype is not None else None
        return role if role in among else None

    for start in range(len(parts)):
        rest = parts[start:]
        prefix = ".".join(parts[:start])
        if suffix == ".weight" and (role := wanted(top.get(".".join(rest)))):
            return TensorName(role, -1, None, prefix)
        numeric = [i for i, p in enumerate(rest) if is_block_index(p)]
        for j in numeric:
            for x in [None, *[i for i in numeric if i > j]]:  # x: an expert number left out of the template
                kept = [("{bid}" if i == j else p) for i, p in enumerate(rest) if i != x]
                role = wanted(blocks.get(".".join(kept)))
                if role is None:
                    continue
                expert = int(rest[x]) if x is not None else None
                if expert is not None and role not in EXPERT_ROLES:
                    continue
                if suffix == ".bias":
                    if role.endswith("norm"):
                        return None
                    role += "_bias"
                return TensorName(role, int(rest[j]), expert, prefix)
    return None


def name_tensors(tensors: Mapping[str, TensorInfo], among: Collection[str]) -> list[NamedTensor]:
    """The tensors whose names name one of the roles ``among``, with what their names say."""
    return [
        NamedTensor(t, hit.role, hit.layer, hit.expert, hit.prefix)
        for name, t in tensors.items()
        if (hit := parse_name(name, among)) is not None
    ]

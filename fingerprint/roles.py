"""The attention tensors of a model and the σ-curve role of each: q, k, v, o, fused and MLA projections,
their biases, the norms around attention.

Names are looked up in the one tensor-name index (tensor_names.py); a user mapping can stand in for it.
Only the language model's tensors count (not a vision tower's), and only layers the config declares.
Fused Q/K/V tensors are split by head counts from the model's config, in each architecture's own row order.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .errors import BadMapping, NoAttentionTensors, UnsupportedFormat
from .formats.gguf import QK_PERMUTED_ARCHS
from .formats.tensor import TensorInfo
from .modelconfig import ModelConfig
from .tensor_names import ATTENTION_PROJECTIONS, ATTENTION_ROLES, MAX_BLOCK_DIGITS, parse_name

# Projection roles: the σ-curve comparison score averages over these.
WEIGHT_ROLES = ATTENTION_PROJECTIONS
# Display order of every role.
ROLE_ORDER = (
    WEIGHT_ROLES + tuple(f"{r}_bias" for r in WEIGHT_ROLES) + ("attn_norm", "q_norm", "k_norm", "q_a_norm", "kv_a_norm")
)

ROLE_LABELS = {
    "q": "Q projection",
    "k": "K projection",
    "v": "V projection",
    "o": "O (output) projection",
    "qkv": "fused QKV projection",
    "q_a": "MLA Q down-projection (q_a)",
    "q_b": "MLA Q up-projection (q_b)",
    "kv_a": "MLA KV down-projection (kv_a, with MQA rope key)",
    "kv_b": "MLA KV up-projection (kv_b)",
    "k_b": "MLA K up-projection (k_b)",
    "v_b": "MLA V up-projection (v_b)",
    "attn_norm": "norm before attention",
    "q_norm": "per-head Q norm",
    "k_norm": "per-head K norm",
}

# MLA (DeepSeek-V2/V3, Kimi K2) has no plain Q/K. The lineage probe reads the down-projections in their place:
# AWM lines up the *hidden* dimensions of two models through their token embeddings, so it needs matrices whose
# columns are hidden dimensions - q_a_proj and kv_a_proj_with_mqa read the hidden state; the up-projections q_b
# and kv_b read the compressed latent, whose dimensions no token lines up. (V2-Lite's plain q_proj is its Q.)
MLA_STAND_INS = (
    "MLA attention has no plain Q/K: in lineage verdicts the query down-projection (q_a_proj, or q_proj where "
    "there is no query compression) stands in for Q and the key/value down-projection (kv_a_proj_with_mqa, with "
    "the shared rope key) for K - they read the hidden state, which AWM lines up; their rows are latent "
    "dimensions, not heads, and unrelated pairs were calibrated on plain Q/K"
)

# Name prefixes that belong to towers that are not the language model.
_NON_LM_HINTS = ("vision", "visual", "image", "audio", "speech", "mm_projector", "multi_modal", "encoder_", "mtp")
_LM_HINTS = ("language_model", "text_model", "llm", "text_decoder")


@dataclass
class RoleSlice:
    """The part of a tensor that belongs to one role: all of it, or a mask along one axis."""

    role: str
    axis: int  # axis of the (rows, cols) view the mask applies to
    mask: np.ndarray | None = None  # boolean over that axis; None = every element


@dataclass
class TensorRoles:
    tensor: TensorInfo
    layer: int
    role: str  # the tensor's own role (sampling positions derive from it)
    slices: list[RoleSlice]
    scale: TensorInfo | None = None  # FP8 scale companion (weight_scale_inv / weight_scale)


@dataclass
class RoleMap:
    tensors: list[TensorRoles]
    n_layers: int
    notes: list[str] = field(default_factory=list)

    def roles(self) -> list[str]:
        found = {s.role for t in self.tensors for s in t.slices}
        return [r for r in ROLE_ORDER if r in found] + sorted(found - set(ROLE_ORDER))

    def count_by_role(self) -> dict[str, int]:
        c = Counter(s.role for t in self.tensors for s in t.slices)
        return {r: c[r] for r in self.roles()}


def compile_mapping(mapping: dict[str, str]) -> list[tuple[re.Pattern[str], str]]:
    """User mapping {role: 'blocks.{layer}.attn.wq'} -> regexes matching '<pattern>(.weight|.bias)'."""
    out = []
    for role, pattern in mapping.items():
        if "{layer}" not in pattern or pattern.count("{layer}") > 1:
            raise BadMapping(f"the mapping for {role!r} needs one {{layer}} placeholder: {pattern!r}")
        rx = re.escape(pattern).replace(r"\{layer\}", rf"([0-9]{{1,{MAX_BLOCK_DIGITS}}})")
        out.append((re.compile(rf"^{rx}(\.weight|\.bias)?$"), role))
    return out


def _detect_packed(names: list[str], config: ModelConfig) -> None:
    method = config.quant_method
    for n in names:
        if n.endswith(".qweight") or n.endswith(".weight_packed"):
            fmt = str(method or "GPTQ/AWQ").upper()
            raise UnsupportedFormat(f"packed {fmt} weights ({n}) are not supported yet")
        if n.endswith((".absmax", ".SCB")) or ".quant_state." in n or n.endswith(".quant_map"):
            raise UnsupportedFormat(f"bitsandbytes-quantized weights ({n}) are not supported yet")


def assign_roles(tensors: dict[str, TensorInfo], config: ModelConfig, mapping: dict[str, str] | None = None) -> RoleMap:
    names = list(tensors)
    _detect_packed(names, config)
    notes: list[str] = []
    found: list[tuple[str, str, int, str]] = []  # (prefix, name, layer, role)
    if mapping:
        for pattern, role in compile_mapping(mapping):
            for n in names:
                m = pattern.match(n)
                if m:
                    r = role + ("_bias" if m.group(2) == ".bias" else "")
                    found.append(("", n, int(m.group(1)), r))
    else:
        for n in names:
            if hit := parse_name(n, ATTENTION_ROLES):
                found.append((hit.prefix, n, hit.layer, hit.role))
    if not found:
        raise NoAttentionTensors(_unknown_message(names, config))

    prefix = _choose_prefix(found, notes)
    found = [f for f in found if f[0] == prefix]
    limit = config.n_layers
    if limit:
        beyond = sorted({f[2] for f in found if f[2] >= limit})
        if beyond:
            notes.append(
                f"layers {beyond} are beyond num_hidden_layers={limit} (e.g. a multi-token-prediction module) and were left out"
            )
            found = [f for f in found if f[2] < limit]
            if not found:
                raise NoAttentionTensors(f"every attention tensor lies beyond num_hidden_layers={limit} in the config")
    n_layers = max(f[2] for f in found) + 1

    out: list[TensorRoles] = []
    split_note_done = False
    for _, name, layer, role in found:
        t = tensors[name]
        slices = [RoleSlice(role, axis=1 if len(t.shape) == 1 else 0)]
        if role in ("qkv", "qkv_bias"):
            parts, why = split_fused_qkv(t, config)
            if parts:
                suffix = "_bias" if role.endswith("_bias") else ""
                slices += [RoleSlice(r + suffix, axis, mask) for r, axis, mask in parts]
                if not split_note_done and not suffix:
                    notes.append(f"fused QKV ({fused_qkv_words(config, t.format)}) split into Q, K and V")
                    split_note_done = True
            elif not split_note_done:
                notes.append(f"fused QKV kept whole, not split into Q/K/V: {why}")
                split_note_done = True
        scale = None
        if t.dtype.startswith("F8"):
            scale = tensors.get(name + "_scale_inv") or tensors.get(name + "_scale")
            if scale is None:
                notes.append(f"{name} is FP8 without a scale tensor: raw FP8 values used")
        out.append(TensorRoles(tensor=t, layer=layer, role=role, slices=slices, scale=scale))
    if any(t.role == "kv_a" for t in out) and not any(t.role == "k" for t in out):
        notes.append(MLA_STAND_INS)
    if any(t.tensor.format == "gguf" and t.role in ("q", "k") for t in out) and config.gguf_arch in QK_PERMUTED_ARCHS:
        notes.append(
            "llama.cpp stores Q/K rows permuted per head; a σ-curve is unaffected, element-wise comparisons must undo it"
        )
    return RoleMap(tensors=out, n_layers=n_layers, notes=notes)


def _choose_prefix(found: list[tuple[str, str, int, str]], notes: list[str]) -> str:
    counts = Counter(f[0] for f in found)
    if len(counts) == 1:
        return next(iter(counts))

    def rank(prefix: str) -> tuple[int, int, int]:
        p = prefix.lower()
        lm = any(h in p for h in _LM_HINTS)
        other = any(h in p for h in _NON_LM_HINTS)
        return (1 if lm else 0, 0 if other else 1, counts[prefix])

    best = max(counts, key=rank)
    others = ", ".join(f"{p or '(no prefix)'} ({counts[p]} tensors)" for p in counts if p != best)
    notes.append(f"attention of the language model under '{best}' used; left out: {others}")
    return best


def _unknown_message(names: list[str], config: ModelConfig) -> str:
    sample = sorted(names)[:12]
    arch = config.architecture or "unknown architecture"
    more = f" (+{len(names) - len(sample)} more)" if len(names) > len(sample) else ""
    return f"no attention tensors recognised ({arch}); tensors found: {', '.join(sample)}{more}"


def split_fused_qkv(t: TensorInfo, config: ModelConfig) -> tuple[list[tuple[str, int, np.ndarray]], str]:
    """Masks selecting Q, K and V inside a fused tensor, in the architecture's own order."""
    nh, nkv, hd = config.n_heads, config.n_kv_heads, config.head_dim
    if not nh or not hd:
        return [], "head counts not in the config"
    total = (nh + 2 * (nkv or nh)) * hd
    if len(t.shape) == 1:
        axis, length = 1, t.shape[0]
    elif t.shape[0] == total:
        axis, length = 0, t.shape[0]
    elif len(t.shape) == 2 and t.shape[1] == total:
        axis, length = 1, t.shape[1]  # Conv1D (GPT-2): stored (in, out)
    else:
        return [], f"shape {list(t.shape)} does not match {nh} Q heads + 2x{nkv or nh} KV heads of {hd}"
    which, why = fused_qkv_parts(length, config, t.format)
    if which is None:
        return [], why
    return [(r, axis, which == i) for i, r in enumerate(("q", "k", "v"))], ""


def fused_qkv_parts(length: int, config: ModelConfig, fmt: str) -> tuple[np.ndarray | None, str]:
    """Which of Q (0), K (1) and V (2) each of the ``length`` fused outputs belongs to, in the file's order
    (rows of an (out, in) weight, columns of a Conv1D one, elements of a bias); (None, why) when the head
    counts do not fit. Q's outputs, in file order, are then in the order of the unfused Q's rows (head by
    head), and so are K's and V's: ``np.flatnonzero(which == 0)`` are the file rows of Q's rows 0, 1, ..."""
    nh, nkv, hd = config.n_heads, config.n_kv_heads, config.head_dim
    if not nh or not hd:
        return None, "head counts not in the config"
    nkv = nkv or nh
    total = (nh + 2 * nkv) * hd
    if length != total:
        return None, f"length {length} does not match {nh} Q heads + 2x{nkv} KV heads of {hd}"
    layout = qkv_layout(config, fmt)
    which = np.empty(total, dtype=np.int8)  # 0 = q, 1 = k, 2 = v
    if layout == "interleaved":  # (heads, 3, head_dim): NeoX, Bloom, old Falcon
        if nkv != nh:
            return None, "interleaved QKV layout with grouped KV heads"
        which[:] = np.repeat(np.tile(np.arange(3), nh), hd)
    elif layout == "grouped":  # (kv_heads, q_per_kv + 2, head_dim): Falcon new_decoder_architecture
        if nh % nkv:
            return None, f"grouped QKV layout with {nh} Q heads not a multiple of {nkv} KV heads"
        per = nh // nkv
        slot = np.concatenate([np.zeros(per, np.int8), [1, 2]]).astype(np.int8)
        which[:] = np.repeat(np.tile(slot, nkv), hd)
    else:
        which[: nh * hd] = 0
        which[nh * hd : (nh + nkv) * hd] = 1
        which[(nh + nkv) * hd :] = 2
    return which, ""


def qkv_layout(config: ModelConfig, fmt: str) -> str:
    """The fused QKV layout of a model's files: llama.cpp's converter rewrites every layout as [Q | K | V]."""
    return config.qkv_layout if fmt != "gguf" else "contiguous"


QKV_LAYOUT_WORDS = {
    "contiguous": "[Q | K | V] blocks",
    "interleaved": "interleaved per head, [q, k, v] of each head in turn, as GPT-NeoX and BLOOM store it",
    "grouped": "Falcon's grouped layout: per KV group its query heads, then one K and one V head",
}


def fused_qkv_words(config: ModelConfig, fmt: str) -> str:
    """How a fused QKV of this model is laid out, in words, e.g. for the note that it was split."""
    words = QKV_LAYOUT_WORDS.get(qkv_layout(config, fmt), qkv_layout(config, fmt))
    if config.conv1d:
        return f"GPT-2 Conv1D c_attn, stored (in, out): Q, K and V are {words} of columns"
    return words

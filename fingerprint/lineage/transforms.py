"""Transformations that leave a Llama-family model's outputs unchanged (exactly) or nearly so.

The lineage stress test applies each one to a model and shows which lineage signals survive it.
Every transform takes the HF-named weight dict {name: ndarray} and the HF config dict, returns a
NEW dict of NEW arrays (the input is never mutated) and is deterministic given its seed.

Returned arrays are float64: the exact transforms multiply by arbitrary scales and rotations, and
rounding the result back to float32 would add ~1e-7 relative error per weight - small, but it would
blur the proof (`forward.output_change` ~1e-12 for an exact transform in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fingerprint.lineage.forward import HFConfig, Weights, dims

_ATTN = "model.layers.{}.self_attn.{}_proj.{}"
_MLP = "model.layers.{}.mlp.{}_proj.weight"
_NORM = "model.layers.{}.{}_layernorm.weight"


def _copy(weights: Weights) -> Weights:
    return {name: np.array(arr, dtype=np.float64, copy=True) for name, arr in weights.items()}


def _layers(config: HFConfig) -> range:
    return range(int(config["num_hidden_layers"]))


def _log_uniform(rng: np.random.Generator, size: int, lo: float = 0.25, hi: float = 4.0) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))


def _scale_heads(out: Weights, layer: int, proj: str, factors: np.ndarray, head_dim: int) -> None:
    """Scale the rows (and bias) of q/k/v_proj head by head: head h's rows times factors[h]."""
    per_row = np.repeat(factors, head_dim)
    for kind in ("weight", "bias"):
        name = _ATTN.format(layer, proj, kind)
        if name in out:
            out[name] = out[name] * (per_row[:, None] if kind == "weight" else per_row)


def scale_qk(weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    """Per layer and KV group: W_q (+ bias) rows of the group's query heads times c, W_k (+ bias) of
    its KV head times 1/c, c log-uniform in [0.25, 4]. Exact: q·k is unchanged and RoPE is linear."""
    rng = np.random.default_rng(seed)
    _, n_heads, n_kv, hd = dims(config)
    out = _copy(weights)
    for i in _layers(config):
        c = _log_uniform(rng, n_kv)
        _scale_heads(out, i, "q", np.repeat(c, n_heads // n_kv), hd)
        _scale_heads(out, i, "k", 1.0 / c, hd)
    return out


def scale_vo(weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    """Per layer and KV head: W_v (+ bias) rows of the head times c, and the W_o columns of every
    query head reading that V head times 1/c. Exact: attention output is linear in V."""
    rng = np.random.default_rng(seed)
    _, n_heads, n_kv, hd = dims(config)
    out = _copy(weights)
    for i in _layers(config):
        c = _log_uniform(rng, n_kv)
        _scale_heads(out, i, "v", c, hd)
        o = _ATTN.format(i, "o", "weight")
        out[o] = out[o] / np.repeat(np.repeat(c, n_heads // n_kv), hd)[None, :]
    return out


def _head_rows(head_order: np.ndarray, head_dim: int) -> np.ndarray:
    """Row indices that put whole heads in `head_order` (rotary pairs stay inside their head)."""
    return (np.asarray(head_order)[:, None] * head_dim + np.arange(head_dim)[None, :]).reshape(-1)


def permute_heads(weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    """Per layer: shuffle the KV groups (a KV head with its query heads) and the query heads within
    each group; q/k/v rows (+ biases) and o columns move together. Exact."""
    rng = np.random.default_rng(seed)
    _, n_heads, n_kv, hd = dims(config)
    group = n_heads // n_kv
    out = _copy(weights)
    for i in _layers(config):
        kv_order = rng.permutation(n_kv)  # new KV head j is old KV head kv_order[j]
        q_order = np.concatenate([g * group + rng.permutation(group) for g in kv_order])
        rows = {"q": _head_rows(q_order, hd), "k": _head_rows(kv_order, hd), "v": _head_rows(kv_order, hd)}
        for proj, idx in rows.items():
            for kind in ("weight", "bias"):
                name = _ATTN.format(i, proj, kind)
                if name in out:
                    out[name] = out[name][idx]
        o = _ATTN.format(i, "o", "weight")
        out[o] = out[o][:, rows["q"]]
    return out


def permute_mlp(weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    """Per layer: shuffle the MLP's intermediate neurons (gate/up rows, down columns). Exact."""
    rng = np.random.default_rng(seed)
    out = _copy(weights)
    for i in _layers(config):
        perm = rng.permutation(out[_MLP.format(i, "gate")].shape[0])
        out[_MLP.format(i, "gate")] = out[_MLP.format(i, "gate")][perm]
        out[_MLP.format(i, "up")] = out[_MLP.format(i, "up")][perm]
        out[_MLP.format(i, "down")] = out[_MLP.format(i, "down")][:, perm]
    return out


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-random n x n orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))[None, :]


def rotate_hidden(weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    """Rotate the residual stream by a random orthogonal Q (SliceGPT / QuaRot). RMSNorm weights are
    first folded into the matrices that read the norm's output (a tied lm_head is untied: the result
    has its own `lm_head.weight`) and set to ones; then embed @ Q, readers W @ Q, writers Q^T @ W.
    Exact: an RMSNorm of weight 1 commutes with an orthogonal Q."""
    rng = np.random.default_rng(seed)
    hidden = dims(config)[0]
    out = _copy(weights)
    rot = random_orthogonal(hidden, rng)
    embed = "model.embed_tokens.weight"
    if "lm_head.weight" not in out:
        out["lm_head.weight"] = out[embed].copy()
    readers = {"model.norm.weight": ["lm_head.weight"]}
    for i in _layers(config):
        readers[_NORM.format(i, "input")] = [_ATTN.format(i, p, "weight") for p in "qkv"]
        readers[_NORM.format(i, "post_attention")] = [_MLP.format(i, p) for p in ("gate", "up")]
    for norm, mats in readers.items():
        for m in mats:
            out[m] = (out[m] * out[norm][None, :]) @ rot  # fold the norm's scale, then read rotated input
        out[norm] = np.ones_like(out[norm])
    out[embed] = out[embed] @ rot
    for i in _layers(config):
        for w in (_ATTN.format(i, "o", "weight"), _MLP.format(i, "down")):
            out[w] = rot.T @ out[w]  # write into the rotated residual stream
    return out


def quantize(weights: Weights, config: HFConfig, qtype: str = "Q8_0") -> Weights:
    """Round-trip every 2-D matrix through GGML block quantization (gguf.quants). A matrix whose row
    length is not a multiple of the block size (32) cannot be block-quantized and stays float (as
    llama.cpp also keeps it in a float type); 1-D tensors (norms, biases) stay float. Approximate."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize
    from gguf.quants import quantize as gguf_quantize

    kind = GGMLQuantizationType[qtype.upper()]
    block = GGML_QUANT_SIZES[kind][0]
    out = _copy(weights)
    for name, arr in out.items():
        if arr.ndim == 2 and arr.shape[1] % block == 0:
            packed = gguf_quantize(np.ascontiguousarray(arr, dtype=np.float32), kind)
            out[name] = dequantize(packed, kind).reshape(arr.shape).astype(np.float64)
    return out


def skipped_by_quantize(weights: Weights, block: int = 32) -> list[str]:
    """The 2-D tensors `quantize` leaves in float because their rows are not a multiple of `block`."""
    return [n for n, a in weights.items() if np.ndim(a) == 2 and np.shape(a)[1] % block]


def add_noise(weights: Weights, config: HFConfig, seed: int = 0, relative: float = 0.01) -> Weights:
    """Add Gaussian noise of std `relative` x the tensor's own std to every 2-D tensor. Approximate."""
    rng = np.random.default_rng(seed)
    out = _copy(weights)
    for name in sorted(out):
        arr = out[name]
        if arr.ndim == 2:
            out[name] = arr + rng.normal(0.0, relative * float(arr.std()), size=arr.shape)
    return out


@dataclass(frozen=True)
class Transform:
    key: str
    label: str  # short, for a UI
    description: str  # one sentence: what it does, exact or approximate
    exact: bool  # True: outputs identical up to float64 round-off
    fn: Callable[[Weights, HFConfig, int], Weights]  # (weights, config, seed) -> new weights

    def __call__(self, weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
        return self.fn(weights, config, seed)


def _q8_0(weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    return quantize(weights, config, "Q8_0")


def _q4_0(weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    return quantize(weights, config, "Q4_0")


_ENTRIES = [
    (
        "scale_qk",
        "Rescale Q/K",
        True,
        scale_qk,
        "Multiplies each layer's query heads by c and their key head by 1/c (c in [0.25, 4]); exact, q·k is unchanged.",
    ),
    (
        "scale_vo",
        "Rescale V/O",
        True,
        scale_vo,
        "Multiplies each value head by c and the output-projection columns that read it by 1/c; exact.",
    ),
    (
        "permute_heads",
        "Permute attention heads",
        True,
        permute_heads,
        "Shuffles KV groups and the query heads within each group, moving q/k/v rows and o columns together; exact.",
    ),
    (
        "permute_mlp",
        "Permute MLP neurons",
        True,
        permute_mlp,
        "Shuffles each layer's intermediate neurons (gate/up rows together with down columns); exact.",
    ),
    (
        "rotate_hidden",
        "Rotate residual stream",
        True,
        rotate_hidden,
        "Folds the RMSNorm weights into the next linear layers and rotates the hidden space by a random orthogonal "
        "matrix (SliceGPT/QuaRot); exact up to float round-off.",
    ),
    (
        "quantize_q8_0",
        "Quantize Q8_0",
        False,
        _q8_0,
        "Round-trips every matrix whose rows are a multiple of 32 through GGML Q8_0 (8-bit blocks); approximate: the "
        "outputs change (measured).",
    ),
    (
        "quantize_q4_0",
        "Quantize Q4_0",
        False,
        _q4_0,
        "Round-trips every matrix whose rows are a multiple of 32 through GGML Q4_0 (4-bit blocks); approximate: the "
        "outputs change more than with Q8_0 (measured).",
    ),
    (
        "add_noise",
        "Add 1% noise",
        False,
        add_noise,
        "Adds Gaussian noise with 1% of each matrix's own std to every matrix; approximate: the outputs change (measured).",
    ),
]
TRANSFORMS: dict[str, Transform] = {
    key: Transform(key, label, description, exact, fn) for key, label, exact, fn, description in _ENTRIES
}


def apply(name: str, weights: Weights, config: HFConfig, seed: int = 0) -> Weights:
    """Apply the registered transform `name` (a key of TRANSFORMS); returns new weights."""
    if name not in TRANSFORMS:
        raise KeyError(f"unknown transform {name!r}; known: {', '.join(TRANSFORMS)}")
    return TRANSFORMS[name](weights, config, seed)

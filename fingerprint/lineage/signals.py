"""Lineage signals between two probes: each says what it measured, on what, and when it can't.

Weakest to strongest against a model that was changed on purpose:
- sigma        per-layer σ of Q/K/V/O, correlated over depth (HonestAGI). Changed at will by
               rescaling W_q by c and W_k by 1/c; look-alike recipes score high. Weakest.
- vectors      norm weights and q/k/v biases, mean-centred Pearson per layer.
- elementwise  Pearson of the weights at identical positions (same shapes). Copies, quantized
               copies and fine-tunes score ~1; independent models ~0. Broken by a permutation.
- awm          hidden dimensions aligned through the embedding rows of shared tokens (linear
               assignment; or a fitted rotation when shared tokens outnumber hidden dims 2:1),
               then unbiased linear CKA of Q and of K per layer (AWM, arXiv 2510.06738).
               Survives head/neuron permutations, head-space rotations, long training; a
               rotated residual stream only when the rotation can be fitted.
- depth        layer-by-layer similarity and the best monotone layer alignment.
- moe          each expert's MLP against a dense model's MLP after matching neurons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..formats.dtypes import requantized
from .measures import (
    HiddenAlignment,
    align_hidden,
    centred_pearson,
    match_neurons,
    monotone_alignment,
    pearson_matrix,
    unbiased_cka,
)
from .probe import Probe, RowSample
from .vocab import tokens_are_numbers

SIGNAL_ORDER = ("elementwise", "awm", "vectors", "depth", "moe", "sigma")
SIGNAL_LABELS = {
    "sigma": "σ-curve correlation (weakest)",
    "vectors": "norm weights & biases (centred Pearson)",
    "elementwise": "weights at identical positions (Pearson)",
    "awm": "Q/K attention matrices after lining up the hidden dimensions (AWM)",
    "depth": "layer alignment (mean similarity along the best monotone path)",
    "moe": "MoE experts vs dense MLP (matched neurons)",
}
SIGNAL_READS = {
    "sigma": "Q, K, V, O σ per layer over the probe's rows (exact when they were read whole)",
    "vectors": "the norm weights before attention and MLP, the final norm, q/k/v biases: read whole",
    "elementwise": "sampled rows of Q, K, V, O, gate, up, down at shape-determined positions",
    "awm": "embedding rows of windows of token ids around hash-picked tokens (shared tokens matched by text) + sampled rows of Q and K",
    "depth": "the same rows as elementwise (or awm when shapes differ), every layer against every layer",
    "moe": "gate/up rows of up to 8 experts in up to 4 MoE layers + the dense model's gate/up rows",
}
MIN_SHARED_TOKENS = 32
MATRIX_ELEMENTS = 4096  # elements per tensor in the layer-by-layer matrix (cheap even for 80x80 layers)


@dataclass
class Signal:
    name: str
    value: float | None
    available: bool
    reason: str | None = None  # why not available
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return SIGNAL_LABELS[self.name]

    @property
    def measured(self) -> float | None:
        """The value when the signal could be computed, else None."""
        return self.value if self.available else None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["label"] = self.label
        d["reads"] = SIGNAL_READS[self.name]
        return d


def missing(name: str, reason: str) -> Signal:
    return Signal(name, None, False, reason)


# ---------------------------------------------------------------------------------------


def _common_rows(a: RowSample, b: RowSample) -> tuple[np.ndarray, np.ndarray] | None:
    """The elements both samples hold, at the same positions of the weight, a's then b's."""
    if a.transposed != b.transposed:
        return _crossing(a, b)
    if a.shape != b.shape:
        return None
    common, ia, ib = np.intersect1d(a.rows, b.rows, assume_unique=True, return_indices=True)
    if len(common) == 0:
        return None
    return a.data[ia], b.data[ib]


def _crossing(a: RowSample, b: RowSample) -> tuple[np.ndarray, np.ndarray] | None:
    """A weight stored (in, out) (Conv1D) against one stored (out, in) (e.g. its GGUF copy): the elements W[o, i]
    for the output rows o the (out, in) sample read and the input dimensions i the Conv1D sample read."""
    if a.shape != b.shape[::-1]:
        return None
    conv, linear = (a, b) if a.transposed else (b, a)
    x = conv.data[:, linear.rows].T  # (outputs read by linear, inputs read by conv)
    y = linear.data[:, conv.rows]
    if x.size == 0:
        return None
    return (x, y) if conv is a else (y, x)


def _r(x: np.ndarray, y: np.ndarray) -> float | None:
    return centred_pearson(x.reshape(-1), y.reshape(-1))


def _layer_pairs(pa: Probe, pb: Probe, depth: DepthInfo | None) -> list[tuple[int, int]]:
    if pa.n_layers == pb.n_layers:
        return [(i, i) for i in range(pa.n_layers)]
    if depth is not None and depth.pairs:
        return depth.pairs
    return []


@dataclass
class DepthInfo:
    pairs: list[tuple[int, int]]
    signal: Signal


def depth_signal(pa: Probe, pb: Probe, alignment: HiddenAlignment | None) -> DepthInfo:
    """Every layer of a against every layer of b, then the best monotone alignment."""
    sim, basis = _elementwise_matrix(pa, pb)
    if sim is None and alignment is not None:
        sim, basis = _cka_matrix(pa, pb, alignment), "awm"
    if sim is None or not np.isfinite(sim).any():
        return DepthInfo(
            [], missing("depth", "no matrix of the same shape in both models and no shared-token alignment")
        )
    al = monotone_alignment(sim)
    detail = {
        "basis": basis,
        "matrix": [[None if not np.isfinite(v) else round(float(v), 4) for v in row] for row in sim],
        "pairs": [list(p) for p in al.pairs],
        "skipped_a": al.skipped_a,
        "skipped_b": al.skipped_b,
        "diagonal": al.diagonal_similarity,
    }
    value = float(al.mean_similarity) if np.isfinite(al.mean_similarity) else None
    return DepthInfo(list(al.pairs), Signal("depth", value, value is not None, None, detail))


def _elementwise_matrix(pa: Probe, pb: Probe) -> tuple[np.ndarray | None, str]:
    """Mean element-wise r of every layer of a against every layer of b, on at most MATRIX_ELEMENTS
    elements per matrix. Layers whose samples have the same shape and rows are thinned alike, so each
    such group of a against each group of b is one matrix product, not one correlation per layer pair."""
    roles = [k for k in ("q", "k", "v", "o", "gate", "up", "down") if k in pa.matrices and k in pb.matrices]
    total = np.zeros((pa.n_layers, pb.n_layers))
    count = np.zeros((pa.n_layers, pb.n_layers))
    for k in roles:
        groups_a, groups_b = _same_sampling(pa.matrices[k]), _same_sampling(pb.matrices[k])
        for layers_a in groups_a:
            for layers_b in groups_b:
                picked = _thinning(pa.matrices[k][layers_a[0]], pb.matrices[k][layers_b[0]])
                if picked is None:
                    continue
                ia, ib, step = picked
                xs = np.stack([pa.matrices[k][i].data[ia].reshape(-1)[::step] for i in layers_a])
                ys = np.stack([pb.matrices[k][j].data[ib].reshape(-1)[::step] for j in layers_b])
                r = pearson_matrix(xs, ys)
                known = np.isfinite(r)
                cells = np.ix_(layers_a, layers_b)
                total[cells] += np.where(known, r, 0.0)
                count[cells] += known
    if not count.any():
        return None, "elementwise"
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), "elementwise"


def _same_sampling(layers: dict[int, RowSample]) -> list[list[int]]:
    """The layers grouped by the shape and the rows of their samples (groups of layers thinned alike)."""
    groups: dict[tuple[tuple[int, ...], bytes], list[int]] = {}
    for i in sorted(layers):
        s = layers[i]
        groups.setdefault((tuple(s.shape), s.rows.tobytes()), []).append(i)
    return list(groups.values())


def _thinning(a: RowSample, b: RowSample) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(rows of a, rows of b, element stride) that compare two samples on their common rows."""
    if a.shape != b.shape or a.transposed != b.transposed:
        return None
    common, ia, ib = np.intersect1d(a.rows, b.rows, assume_unique=True, return_indices=True)
    if len(common) == 0:
        return None
    return ia, ib, max(1, len(common) * a.shape[1] // MATRIX_ELEMENTS)


MATRIX_DIMS = 1024  # hidden dims (CKA examples) in the all-layers matrix: 48 x 48 layers stay a few seconds
MATRIX_FEATURES = 256


def _cka_matrix(pa: Probe, pb: Probe, al: HiddenAlignment) -> np.ndarray:
    sim = np.full((pa.n_layers, pb.n_layers), np.nan)
    keep = np.unique(np.linspace(0, len(al.dims_a) - 1, min(MATRIX_DIMS, len(al.dims_a))).astype(int))
    dims_a, dims_b, signs = al.dims_a[keep], al.dims_b[keep], al.signs[keep]

    def thin(f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: x[:, :: max(1, x.shape[1] // MATRIX_FEATURES)] for k, x in f.items()}

    kept = readable_alignment(pa, pb, replace(al, dims_a=dims_a, dims_b=dims_b, signs=signs, cos=al.cos[keep]))
    dims_a, dims_b, signs = kept.dims_a, kept.dims_b, kept.signs
    feats_a = {i: thin(_qk_features(pa, i, dims_a, signs)) for i in range(pa.n_layers)}
    feats_b = {j: thin(_qk_features(pb, j, dims_b, None)) for j in range(pb.n_layers)}
    for i, fa in feats_a.items():
        for j, fb in feats_b.items():
            cka = [unbiased_cka(fa[k], fb[k]) for k in ("q", "k") if k in fa and k in fb]
            vals = [v for v in cka if v is not None]
            if vals:
                sim[i, j] = float(np.mean(vals))
    return sim


def _qk_features(p: Probe, layer: int, dims: np.ndarray, signs: np.ndarray | None) -> dict[str, np.ndarray]:
    """Q and K of a layer as (hidden dims, sampled output rows): hidden dims are the examples. A Conv1D Q/K
    (stored (in, out)) holds every output of the hidden dims it read: (hidden dims, outputs), when it read
    all of ``dims`` (``readable_dims`` says which it did)."""
    out = {}
    for k in ("q", "k"):
        s = p.matrices.get(k, {}).get(layer)
        if s is None:
            continue
        if s.transposed:
            at = np.searchsorted(s.rows, dims)
            if len(dims) == 0 or at.max() >= len(s.rows) or not np.array_equal(s.rows[at], dims):
                continue
            x = s.data_of(at).astype(np.float64)
        elif s.shape[1] < dims.max(initial=0) + 1:
            continue
        else:
            x = s.data[:, dims].T.astype(np.float64)
        if signs is not None:
            x = x * signs[:, None]
        out[k] = x
    return out


@dataclass
class SharedTokens:
    """The AWM alignment from the embedding rows of the tokens both probes read, and those rows (same order)
    when there are enough of them to fit a rotation (else they are not kept: at 8192 dims they weigh 128 MB)."""

    emb_a: np.ndarray | None
    emb_b: np.ndarray | None
    alignment: HiddenAlignment
    by_profiles: bool = False  # lined up by the hidden dims' weight profiles, not by shared tokens


ROTATION_TOKENS = 2  # a rotation is fitted only with at least this many shared tokens per hidden dim


def hidden_alignment(pa: Probe, pb: Probe) -> tuple[SharedTokens | None, str | None]:
    rows_a, rows_b = pa.embedding_rows, pb.embedding_rows
    if rows_a is None or rows_b is None:
        who = [p.model for p in (pa, pb) if p.embedding_rows is None]
        return None, f"no embedding rows with a vocabulary for {', '.join(who)}"
    stand_in = [p.model for p in (pa, pb) if tokens_are_numbers(p.vocab_source)]
    if stand_in and pa.vocab_size != pb.vocab_size:
        return None, (
            f"no vocabulary for {', '.join(stand_in)} and the vocabulary sizes differ ({pa.vocab_size} vs "
            f"{pb.vocab_size}): tokens matched by their number cannot be shared tokens"
        )
    index_b = {t: i for i, t in enumerate(pb.tokens)}
    pairs = [(i, index_b[t]) for i, t in enumerate(pa.tokens) if t in index_b]
    if len(pairs) < MIN_SHARED_TOKENS:
        return None, f"only {len(pairs)} shared tokens among those read (need {MIN_SHARED_TOKENS})"
    ia, ib = (np.array(x) for x in zip(*pairs))
    dims = (rows_a.shape[1], rows_b.shape[1])
    if dims[0] == dims[1] and len(pairs) >= ROTATION_TOKENS * dims[0]:
        ea, eb = rows_a.data_of(ia), rows_b.data_of(ib)
        return SharedTokens(ea, eb, align_hidden(ea, eb)), None
    ea, eb = (rows.data_of(i).astype(np.float64) for rows, i in ((rows_a, ia), (rows_b, ib)))
    return SharedTokens(None, None, align_hidden(ea, eb, overwrite=True)), None


MIN_PROFILE_FEATURES = 8  # weight profiles shorter than this cannot tell hidden dims apart
_PROFILE_VECTORS = ("attn_norm", "ffn_norm")
_PROFILE_MATRICES = ("q", "k", "v", "gate", "up")  # matrices that read the hidden state: one column per hidden dim


def _profile_feature(p: Probe, layer: int, role: str) -> np.ndarray | None:
    """One value per hidden dim: a norm's weight, or the RMS of a matrix's column over the rows read."""
    if role in _PROFILE_VECTORS:
        v = p.vectors.get(role, {}).get(layer)
        return None if v is None else np.asarray(v, dtype=np.float64)
    s = p.matrices.get(role, {}).get(layer)
    if s is None or s.transposed:
        return None
    rms: np.ndarray = np.sqrt(np.mean(np.square(s.data, dtype=np.float64), axis=0))
    return rms


def profile_alignment(pa: Probe, pb: Probe) -> tuple[SharedTokens | None, str | None]:
    """Hidden dims lined up without any token: each hidden dim's profile through the model - its norm weights and
    the scale of its column in Q, K, V, gate and up, layer by layer (layers mapped in proportion when the depths
    differ) - matched one to one between the models as AWM matches embedding columns. Training leaves each dim its
    own profile and a copy, a fine-tune or a pruned model keeps it, while two models trained apart share none: so
    models of different widths and without a shared vocabulary can still be weighed. A rotation of the hidden
    space mixes the profiles and defeats it."""
    n = min(pa.n_layers, pb.n_layers)
    if n < 1:
        return None, "no layers to profile"
    fa: list[np.ndarray] = []
    fb: list[np.ndarray] = []
    for layer in range(n):
        la = round(layer * (pa.n_layers - 1) / max(n - 1, 1))
        lb = round(layer * (pb.n_layers - 1) / max(n - 1, 1))
        for role in (*_PROFILE_VECTORS, *_PROFILE_MATRICES):
            x, y = _profile_feature(pa, la, role), _profile_feature(pb, lb, role)
            if x is not None and y is not None and np.all(np.isfinite(x)) and np.all(np.isfinite(y)):
                fa.append(x)
                fb.append(y)
    if len(fa) < MIN_PROFILE_FEATURES:
        return None, f"only {len(fa)} weight profiles read in both models (need {MIN_PROFILE_FEATURES})"
    standard = [
        (f - f.mean(axis=1, keepdims=True)) / (f.std(axis=1, keepdims=True) + 1e-12) for f in map(np.array, (fa, fb))
    ]
    al = align_hidden(standard[0], standard[1], overwrite=True)
    # a profile says nothing about a dim's sign (a flipped dim keeps its norm weight and column scales)
    al = replace(al, signs=np.ones_like(al.signs))
    return SharedTokens(None, None, al, by_profiles=True), None


def _rotation(shared: SharedTokens) -> np.ndarray | None:
    """The orthogonal map of a's hidden space onto b's that best carries a's shared-token embeddings onto
    b's (orthogonal Procrustes) - only when the tokens far outnumber the hidden dims, so that it cannot
    simply fit noise, and the widths are equal."""
    if shared.emb_a is None or shared.emb_b is None:
        return None
    ea, eb = shared.emb_a.astype(np.float64), shared.emb_b.astype(np.float64)
    u, _, vt = np.linalg.svd(ea.T @ eb, full_matrices=False)
    rotation: np.ndarray = u @ vt
    return rotation


def _per_layer_cka(
    layer_pairs: list[tuple[int, int]],
    features_a: Callable[[int], dict[str, np.ndarray]],
    features_b: Callable[[int], dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    """Unbiased CKA of Q and of K for each aligned layer pair; ``features_*(layer)`` give (hidden dims, rows)."""
    out: list[dict[str, Any]] = []
    for i, j in layer_pairs:
        fa, fb = features_a(i), features_b(j)
        cka = {k: unbiased_cka(fa[k], fb[k]) for k in ("q", "k") if k in fa and k in fb}
        vals = {k: v for k, v in cka.items() if v is not None}
        if vals:
            out.append(
                {
                    "a": i,
                    "b": j,
                    **{k: round(v, 4) for k, v in vals.items()},
                    "mean": float(np.mean(list(vals.values()))),
                }
            )
    return out


def readable_dims(p: Probe) -> np.ndarray | None:
    """The hidden dimensions whose Q/K values a probe holds: all (None), or - for a sampled Conv1D Q/K, stored
    (in, out) and read by input dimension - the input dimensions read (the same in every layer and for Q and K:
    one read of c_attn gives both)."""
    dims: np.ndarray | None = None
    for k in ("q", "k"):
        for s in p.matrices.get(k, {}).values():
            if s.transposed and not s.complete:
                dims = s.rows if dims is None else np.intersect1d(dims, s.rows)
    return dims


def readable_alignment(pa: Probe, pb: Probe, al: HiddenAlignment) -> HiddenAlignment:
    """The aligned hidden-dimension pairs whose Q/K values both probes hold (all of them unless one is a sampled
    Conv1D model: then the pairs of input dimensions both read)."""
    keep = np.ones(len(al.dims_a), bool)
    for dims, have in ((al.dims_a, readable_dims(pa)), (al.dims_b, readable_dims(pb))):
        if have is not None:
            keep &= np.isin(dims, have)
    if keep.all():
        return al
    return replace(al, dims_a=al.dims_a[keep], dims_b=al.dims_b[keep], signs=al.signs[keep], cos=al.cos[keep])


def awm_signal(
    pa: Probe, pb: Probe, shared: SharedTokens | None, why: str | None, layer_pairs: list[tuple[int, int]]
) -> Signal:
    """AWM: a's hidden dims matched to b's by linear assignment on the shared-token embeddings (signed
    permutation), then unbiased CKA of Q and of K per layer. When there are enough shared tokens, a general
    rotation is fitted too (orthogonal Procrustes), which also undoes a rotated residual stream; the
    alignment that gives the higher similarity is reported (the calibration is computed the same way)."""
    if shared is None:
        return missing("awm", why or "no alignment")
    if not layer_pairs:
        return missing("awm", "depths differ and no layer alignment was found")
    al = readable_alignment(pa, pb, shared.alignment)
    per_layer = _per_layer_cka(
        layer_pairs,
        lambda i: _qk_features(pa, i, al.dims_a, al.signs),
        lambda j: _qk_features(pb, j, al.dims_b, None),
    )
    if not per_layer:
        return missing("awm", "Q/K rows missing in one model (a fused QKV that could not be split?)")
    value = float(np.mean([p["mean"] for p in per_layer]))
    method = (
        "weight profiles (norm weights and column scales layer by layer; no shared tokens), linear assignment"
        if shared.by_profiles
        else "signed permutation (linear assignment, AWM)"
    )
    rot = _rotation(shared)
    if rot is not None:
        every_dim = np.arange(rot.shape[1])
        alt = _per_layer_cka(
            layer_pairs,
            lambda i: {k: (x.T @ rot).T for k, x in _qk_features(pa, i, np.arange(rot.shape[0]), None).items()},
            lambda j: _qk_features(pb, j, every_dim, None),
        )
        alt_value = float(np.mean([p["mean"] for p in alt])) if alt else None
        if alt_value is not None and alt_value > value:
            per_layer, value, method = alt, alt_value, "rotation (orthogonal Procrustes on the shared tokens)"
    detail = {
        "per_layer": per_layer,
        "shared_tokens": al.n_tokens,
        "alignment_quality": round(float(al.quality), 4),
        "alignment": method,
        "hidden_dims": len(al.dims_a),  # the aligned hidden dims CKA was taken over (fewer: a sampled Conv1D)
    }
    return Signal("awm", value, True, None, detail)


def _rounding_r(sa: RowSample, sb: RowSample, x: np.ndarray, y: np.ndarray) -> tuple[float, str] | None:
    """When one side was read from a quantized GGUF type and the other from plain floats: the r between the plain
    rows and those very rows rounded the quantized side's way (what a quantized copy of them would score), and the
    type. None otherwise (both quantized, neither, or a type the gguf library cannot quantize)."""
    quantized = [
        (s.encoding.removeprefix("gguf:"), other) for s, other in ((sa, y), (sb, x)) if s.encoding.startswith("gguf:")
    ]
    if len(quantized) != 1:
        return None
    dtype, plain = quantized[0]
    rounded = requantized(plain, dtype)
    r = centred_pearson(plain.reshape(-1), rounded.reshape(-1)) if rounded is not None else None
    return (r, dtype) if r is not None else None


def elementwise_signal(pa: Probe, pb: Probe, layer_pairs: list[tuple[int, int]]) -> Signal:
    per_role: dict[str, list[float]] = {}
    rel_diff: list[float] = []
    rounding: list[float] = []
    rounding_types: set[str] = set()
    for role in ("q", "k", "v", "o", "gate", "up", "down"):
        for i, j in layer_pairs:
            sa, sb = pa.matrices.get(role, {}).get(i), pb.matrices.get(role, {}).get(j)
            if sa is None or sb is None:
                continue
            common = _common_rows(sa, sb)
            if common is None:
                continue
            r = _r(*common)
            if r is not None:
                per_role.setdefault(role, []).append(r)
                x, y = common
                rel_diff.append(float(np.linalg.norm(x - y) / max(float(np.linalg.norm(x)), 1e-30)))
                if (got := _rounding_r(sa, sb, x, y)) is not None:
                    rounding.append(got[0])
                    rounding_types.add(got[1])
    for (li, e), sa in pa.experts.get("gate", {}).items():  # MoE vs MoE: experts at identical positions
        sb = pb.experts.get("gate", {}).get((li, e))
        common = _common_rows(sa, sb) if sb is not None else None
        if common is not None and (r := _r(*common)) is not None:
            per_role.setdefault("experts", []).append(r)
    if not per_role:
        shapes = (
            "no matrix has the same shape in both models" if layer_pairs else "depths differ and no layer alignment"
        )
        return missing("elementwise", shapes)
    all_r = [r for rs in per_role.values() for r in rs]
    detail = {
        "per_kind": {k: round(float(np.median(v)), 6) for k, v in per_role.items()},
        "tensors": len(all_r),
        "min": float(np.min(all_r)),
        "relative_difference": float(np.median(rel_diff)) if rel_diff else None,
        # a quantized side: what its own rounding of the other side's weights would score (a copy's r)
        "rounding_r": float(np.median(rounding)) if rounding else None,
        "rounding_type": ", ".join(sorted(rounding_types)) or None,
    }
    return Signal("elementwise", float(np.median(all_r)), True, None, detail)


def vectors_signal(pa: Probe, pb: Probe, layer_pairs: list[tuple[int, int]]) -> Signal:
    per_role: dict[str, list[float]] = {}
    for role in ("attn_norm", "ffn_norm", "q_bias", "k_bias", "v_bias"):
        for i, j in layer_pairs:
            a, b = pa.vectors.get(role, {}).get(i), pb.vectors.get(role, {}).get(j)
            if a is not None and b is not None and (r := centred_pearson(a, b)) is not None:
                per_role.setdefault(role, []).append(r)
    a, b = pa.vectors.get("final_norm", {}).get(0), pb.vectors.get("final_norm", {}).get(0)
    if a is not None and b is not None and (r := centred_pearson(a, b)) is not None:
        per_role["final_norm"] = [r]
    if not per_role:
        return missing("vectors", "no norm weight or bias of the same length in both models")
    all_r = [r for rs in per_role.values() for r in rs]
    detail = {"per_kind": {k: round(float(np.median(v)), 4) for k, v in per_role.items()}, "vectors": len(all_r)}
    return Signal("vectors", float(np.median(all_r)), True, None, detail)


def moe_signal(pa: Probe, pb: Probe) -> Signal:
    if pa.is_moe == pb.is_moe:
        return missing(
            "moe",
            "does not apply: both models are dense"
            if not pa.is_moe
            else "does not apply: both models are MoE (their experts are compared element-wise)",
        )
    moe, dense = (pa, pb) if pa.is_moe else (pb, pa)
    per_layer: dict[int, list[float]] = {}
    for role in ("gate", "up"):
        for (layer, _expert), s in sorted(moe.experts.get(role, {}).items()):
            d = dense.matrices.get(role, {}).get(_dense_layer(layer, moe.n_layers, dense.n_layers))
            if d is None or d.transposed or d.shape[1] != s.shape[1]:
                continue
            m = match_neurons(s.data, d.data)
            per_layer.setdefault(layer, []).append(float(m.mean_abs_corr))
    if not per_layer:
        return missing("moe", "no expert of the MoE model has the dense model's hidden size")
    layers = {str(k): round(float(np.mean(v)), 4) for k, v in per_layer.items()}
    value = float(np.median([v for vs in per_layer.values() for v in vs]))
    return Signal("moe", value, True, None, {"per_layer": layers, "moe_model": moe.model, "dense_model": dense.model})


def _dense_layer(layer: int, n_moe: int, n_dense: int) -> int:
    return layer if n_moe == n_dense else round(layer * (n_dense - 1) / max(n_moe - 1, 1))


def sigma_signal(score: float | None, resampled: bool, reason: str | None = None) -> Signal:
    if score is None:
        return missing("sigma", reason or "σ-curves could not be compared")
    return Signal("sigma", float(score), True, None, {"resampled": resampled})


def all_signals(pa: Probe, pb: Probe, sigma: Signal) -> dict[str, Signal]:
    shared, why = hidden_alignment(pa, pb)
    if shared is None:  # no shared tokens: line the hidden dims up by their weight profiles instead
        shared, why_not = profile_alignment(pa, pb)
        why = f"{why}; {why_not}" if shared is None else None
    depth = depth_signal(pa, pb, shared.alignment if shared else None)
    pairs = _layer_pairs(pa, pb, depth)
    out = {
        "elementwise": elementwise_signal(pa, pb, pairs),
        "awm": awm_signal(pa, pb, shared, why, pairs),
        "vectors": vectors_signal(pa, pb, pairs),
        "depth": depth.signal,
        "moe": moe_signal(pa, pb),
        "sigma": sigma,
    }
    return {k: out[k] for k in SIGNAL_ORDER}

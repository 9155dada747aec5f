"""The numerical measures behind lineage signals: correlation, CKA and the alignments they need.

A derived model (fine-tune, continued pre-training, pruned or merged copy) keeps most of its
parent's weights up to symmetries that change no output: hidden dimensions can be permuted and
sign-flipped (or, more generally, rotated), MLP neurons reordered, layers dropped. Each measure
here is invariant to exactly the symmetries a laundering step could apply, and sensitive to
what training from scratch cannot reproduce:

- ``centred_pearson``: two per-layer curves / flattened vectors; invariant to offset and scale.
- ``unbiased_cka``: two representations of the same examples; invariant to orthogonal
  transforms and isotropic scaling of either feature space, and unbiased, so ~0 when unrelated.
- ``align_hidden``: which hidden dim of one model is which of the other (permutation and sign),
  read from the embedding rows of the tokens both vocabularies share (AWM, arXiv 2510.06738).
- ``monotone_alignment``: which layer of one model is which of the other when depths differ.
- ``match_neurons``: which MLP neuron is which, after the hidden dims have been aligned.
- ``null_level_abs_corr``: what ``match_neurons`` scores for unrelated random rows.

Everything is float64 numpy/scipy; no Gram matrix of size examples x examples is ever formed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

__all__ = [
    "DepthAlignment",
    "HiddenAlignment",
    "NeuronMatch",
    "align_hidden",
    "centred_pearson",
    "match_neurons",
    "monotone_alignment",
    "null_level_abs_corr",
    "unbiased_cka",
]

MIN_POINTS = 3  # a correlation of fewer points says nothing
FLAT = 1e-12  # relative peak-to-peak below which a vector counts as constant


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _matrix(x: ArrayLike, name: str) -> np.ndarray:
    m = np.asarray(x, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} has NaN or Inf values")
    return m


# --------------------------------------------------------------------------------------------
# Correlation


def centred_pearson(a: ArrayLike, b: ArrayLike) -> float | None:
    """Pearson correlation of two equal-length 1-D arrays, or None when it means nothing.

    Invariant to an offset and a positive scale of either array (a negative scale flips the
    sign). Always mean-centred, never a raw cosine: the weights of norm layers are all near 1,
    so the cosine of two unrelated models' norm vectors is ~0.99; only the deviations from the
    mean carry identity.

    None when the lengths differ, there are fewer than 3 points, any value is NaN/Inf, or either
    array is constant (peak-to-peak <= 1e-12 x its largest magnitude: no shape to correlate).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < MIN_POINTS:
        return None
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return None
    for v in (x, y):
        if np.ptp(v) <= FLAT * np.max(np.abs(v)):
            return None
    x = x - x.mean()
    y = y - y.mean()
    denom = math.sqrt(float(x @ x) * float(y @ y))
    if not denom > 0.0:
        return None
    return float(np.clip(float(x @ y) / denom, -1.0, 1.0))


def pearson_matrix(xs: ArrayLike, ys: ArrayLike) -> np.ndarray:
    """``centred_pearson`` of every row of xs (n, m) against every row of ys (k, m), as one (n, k) matrix product:
    NaN where ``centred_pearson`` gives None (a row with NaN/Inf, a flat row, fewer than 3 points)."""
    x = np.array(xs, dtype=np.float64, ndmin=2)
    y = np.array(ys, dtype=np.float64, ndmin=2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"rows of different lengths: {x.shape} vs {y.shape}")
    if x.shape[1] < MIN_POINTS:
        return np.full((x.shape[0], y.shape[0]), np.nan)
    units, valid = [], []
    for m in (x, y):
        finite = np.isfinite(m).all(axis=1)
        m[~finite] = 0.0
        ok = finite & (np.ptp(m, axis=1) > FLAT * np.abs(m).max(axis=1))
        m -= m.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", m, m))
        ok &= norms > 0.0
        m /= np.where(ok, norms, 1.0)[:, None]
        units.append(m)
        valid.append(ok)
    r = np.clip(units[0] @ units[1].T, -1.0, 1.0)
    r[~valid[0], :] = np.nan
    r[:, ~valid[1]] = np.nan
    return r


# --------------------------------------------------------------------------------------------
# CKA


def _hsic_terms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """diag(K) and K~1 for K = x x^T with zeroed diagonal, in O(n p)."""
    diag = np.einsum("ij,ij->i", x, x)
    row_sums = x @ x.sum(axis=0) - diag
    return diag, row_sums


def _hsic_u(cross_fro2: float, dk: np.ndarray, rk: np.ndarray, dl: np.ndarray, rl: np.ndarray, n: int) -> float:
    """Song et al. (2012) unbiased HSIC from ||x^T y||_F^2, diag(K), K~1, diag(L), L~1."""
    trace = cross_fro2 - float(dk @ dl)  # tr(K~ L~)
    sum_k = float(rk.sum())  # 1^T K~ 1
    sum_l = float(rl.sum())
    sum_kl = float(rk @ rl)  # 1^T K~ L~ 1
    return (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * sum_kl) / (n * (n - 3))


def unbiased_cka(x: ArrayLike, y: ArrayLike) -> float | None:
    """Unbiased linear CKA between two representations of the same n examples (rows).

    x is (n, p), y is (n, q): row i of both belongs to the same input (token, prompt).
    CKA = HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L)) with K = x x^T, L = y y^T and the
    unbiased HSIC estimator of Song et al. (2012), as used by AWM (arXiv 2510.06738).

    Invariant to any orthogonal transform (permutation, sign flip, rotation) and isotropic
    scaling of either feature space, which is exactly what a model can apply to its hidden
    basis without changing its outputs; it needs no alignment of the features and works when
    p != q. Unlike biased CKA, whose value for unrelated representations grows with p/n, the
    unbiased estimate is ~0 for independent representations, so a clearly positive value is
    evidence of shared structure. It is not invariant to per-feature scaling, and it is not
    bounded below by 0 (small negatives occur for unrelated inputs).

    Computed through the identities tr(K~L~) = ||x^T y||_F^2 - sum_i K_ii L_ii,
    1^T K~ 1 = ||sum_i x_i||^2 - sum_i K_ii and (K~1)_i = x_i . sum_j x_j - K_ii, so the n x n
    Gram matrices are never formed: cost O(n p q + n p^2 + n q^2) flops for the three p x q
    cross products, O(n (p + q) + p q) memory. (When n is much smaller than p and q a Gram
    formulation would be cheaper; for the usual n >> p it is not.) Columns are not centred:
    the unbiased estimator does not need it.

    None when n < 4, or a self-HSIC is <= 0 (e.g. constant representation). Raises ValueError
    when the arrays are not 2-D, their row counts differ, or they hold NaN/Inf.
    """
    x = _matrix(x, "x")
    y = _matrix(y, "y")
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y must have the same rows (examples): {x.shape} vs {y.shape}")
    if n < 4:
        return None
    dk, rk = _hsic_terms(x)
    dl, rl = _hsic_terms(y)
    # ||x^T x||_F^2 = ||x x^T||_F^2 ; numpy routes x.T @ x to the symmetric rank-k BLAS update.
    hkk = _hsic_u(float(np.square(x.T @ x).sum()), dk, rk, dk, rk, n)
    hll = _hsic_u(float(np.square(y.T @ y).sum()), dl, rl, dl, rl, n)
    if not (hkk > 0.0 and hll > 0.0):
        return None
    hkl = _hsic_u(float(np.square(x.T @ y).sum()), dk, rk, dl, rl, n)
    value = hkl / math.sqrt(hkk * hll)
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# Hidden-dimension alignment


@dataclass(frozen=True, eq=False)
class HiddenAlignment:
    """Matched hidden dims: ``emb_a[:, dims_a] * signs ≈ emb_b[:, dims_b]`` (up to per-dim scale).

    All arrays have length min(d_a, d_b) and are ordered by ``dims_b``: when d_a >= d_b,
    ``dims_b`` is ``arange(d_b)`` and ``emb_a[:, dims_a] * signs`` is a's embedding in b's basis;
    when d_a < d_b, ``dims_a`` is a permutation of ``arange(d_a)`` and ``dims_b`` lists the d_a
    dims of b that were matched (increasing), the others had no partner.
    """

    dims_a: np.ndarray  # int64: dim of a matched to dims_b[k]
    dims_b: np.ndarray  # int64, strictly increasing
    signs: np.ndarray  # float64, +1 or -1
    cos: np.ndarray  # float64: signed cosine of each matched pair of columns
    quality: float  # mean |cos| over matched pairs: 1 = same basis; see null_level_abs_corr for chance
    n_tokens: int  # shared-token rows the cosines were taken over


def _unit_columns(m: np.ndarray, centre: bool, in_place: bool = False) -> np.ndarray:
    """Columns scaled to unit length (centred first when asked); ``in_place`` for an array the caller owns
    (a hidden size of 8192 makes each copy hundreds of MB)."""
    if centre:
        m = m - m.mean(axis=0)
    elif not in_place:
        m = m.copy()
    norms = np.sqrt(np.einsum("ij,ij->j", m, m))
    m /= np.where(norms > 0.0, norms, 1.0)  # an all-zero column keeps cos 0 with everything
    return m


def align_hidden(emb_a: ArrayLike, emb_b: ArrayLike, *, overwrite: bool = False) -> HiddenAlignment:
    """Align the hidden dims of two models through the embedding rows of their shared tokens.

    emb_a is (tokens, d_a), emb_b is (tokens, d_b); row t of both is the same token (the caller
    intersects the vocabularies and orders them). Column j is hidden dim j seen across tokens.
    The cosine between every column of a and every column of b gives cost 1 - |cos|, and the
    Hungarian assignment (scipy ``linear_sum_assignment``) picks the one-to-one matching of
    min(d_a, d_b) pairs with the largest summed |cos|; the sign of each matched cosine is the
    sign flip. This undoes the permutation / sign-flip symmetry of the residual stream (AWM,
    arXiv 2510.06738) and is invariant to a per-dim scale of either model (cosine), but not to a
    general rotation (then no single dim matches: quality drops toward chance, and basis-free
    measures such as ``unbiased_cka`` apply instead).

    Raw cosine, not centred: embedding columns of trained models are near zero-mean, and a
    column's mean offset is itself part of the dimension's identity.

    Cost: O(tokens d_a d_b) for the cosines plus the assignment; measured 4096 tokens x 4096
    dims in 3-4 s on 2 cores (about 1.7 s matmul, 1.2-1.9 s assignment). Raises ValueError when
    the arrays are not 2-D, have different token counts, fewer than 2 tokens, no columns, or
    NaN/Inf. ``overwrite``: float64 inputs may be scaled in place (saves a copy of each; with
    8192 dims and 2048 tokens, 128 MB apiece).
    """
    a = _matrix(emb_a, "emb_a")
    b = _matrix(emb_b, "emb_b")
    n_tokens = a.shape[0]
    if b.shape[0] != n_tokens:
        raise ValueError(f"emb_a and emb_b must hold the same tokens as rows: {a.shape} vs {b.shape}")
    if n_tokens < 2 or a.shape[1] == 0 or b.shape[1] == 0:
        raise ValueError(f"need at least 2 tokens and 1 dim on each side: {a.shape} vs {b.shape}")
    ua = _unit_columns(a, centre=False, in_place=overwrite or not np.shares_memory(a, emb_a))
    ub = _unit_columns(b, centre=False, in_place=overwrite or not np.shares_memory(b, emb_b))
    del a, b
    cos = ua.T @ ub  # (d_a, d_b)
    del ua, ub
    rows_a, rows_b, matched = _assign(cos)
    signs = np.where(matched < 0.0, -1.0, 1.0)
    return HiddenAlignment(
        dims_a=_frozen(rows_a),
        dims_b=_frozen(rows_b),
        signs=_frozen(signs),
        cos=_frozen(matched),
        quality=float(np.abs(matched).mean()),
        n_tokens=int(n_tokens),
    )


def _best_per_line(sim: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """When the largest entry of every row (of every column, when there are more rows) falls in a different column
    (row), picking it everywhere is the best one-to-one matching: no matching can exceed the sum of the lines'
    maxima. That is the rule for related models (a copy, a fine-tune, a permuted copy), and it spares the Hungarian
    assignment its cubic cost. (None, None) when it does not hold."""
    if sim.shape[0] <= sim.shape[1]:
        cols = sim.argmax(axis=1)
        if len(np.unique(cols)) == len(cols):
            return np.arange(sim.shape[0]), cols
    else:
        rows = sim.argmax(axis=0)
        if len(np.unique(rows)) == len(rows):
            return rows, np.arange(sim.shape[1])
    return None, None


def _assign(sim: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Max-|sim| one-to-one matching of rows to columns, ordered by column index. Overwrites ``sim``:
    -|sim| is minimised in its place (what ``maximize=True`` does on a copy), the signs kept aside."""
    negative = sim < 0.0
    np.abs(sim, out=sim)
    rows, cols = _best_per_line(sim)
    np.negative(sim, out=sim)
    if rows is None or cols is None:
        rows, cols = linear_sum_assignment(sim)
    order = np.argsort(cols, kind="stable")
    rows = rows[order].astype(np.int64)
    cols = cols[order].astype(np.int64)
    matched = -sim[rows, cols]
    return rows, cols, np.where(negative[rows, cols], -matched, matched).astype(np.float64)


# --------------------------------------------------------------------------------------------
# Depth alignment


@dataclass(frozen=True)
class DepthAlignment:
    """Layer pairs (layer_a, layer_b), increasing in both, covering every layer of the shallower model."""

    pairs: list[tuple[int, int]]
    mean_similarity: float  # mean sim over the pairs (NaN entries left out; NaN if all are)
    diagonal_similarity: float | None  # same on the proportional diagonal; None if undefined
    skipped_a: list[int]  # layers of a in no pair (empty unless a is the deeper model)
    skipped_b: list[int]


def monotone_alignment(sim: ArrayLike) -> DepthAlignment:
    """Best order-preserving map of the shallower model's layers into the deeper model's.

    sim is (n_a, n_b): sim[i, j] is how alike layer i of a and layer j of b are (any measure
    where larger = more alike; NaN = unknown, treated as lower than every known value). Finds
    the strictly increasing injection f of the shallower model's layers into the deeper one's
    that maximises the summed similarity, by dynamic programming in O(n_a n_b). Pairs are always
    reported as (layer_a, layer_b), whichever model is deeper; with n_a == n_b the only
    injection is the identity.

    Used for depth-pruned or layer-dropped derivatives: a per-layer signal compared on the
    proportional diagonal is smeared by every dropped layer, while the monotone alignment finds
    the layers that were kept. It maximises a sum, so it is not invariant to a nonlinear
    rescaling of sim: fill the matrix with one measure. Ties go to the earliest layer of the
    deeper model.
    The maximum over injections is biased upward when sim is noise (it picks the best of many),
    hence ``diagonal_similarity``, the mean on the proportional diagonal (layer i of the
    shallower model against round-half-up(i (n_long - 1) / (n_short - 1)) of the deeper), for
    comparison; None when the shallower model has a single layer or those entries are all NaN.

    Raises ValueError when sim is not 2-D or empty, or holds Inf.
    """
    s = np.asarray(sim, dtype=np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"sim must be a non-empty 2-D matrix, got shape {s.shape}")
    if np.any(np.isinf(s)):
        raise ValueError("sim holds Inf values")
    n_a, n_b = s.shape
    flipped = n_a > n_b
    oriented = s.T if flipped else s  # rows = shallower model
    n_short, n_long = oriented.shape

    known = np.isfinite(oriented)
    if known.any():
        lo, hi = float(oriented[known].min()), float(oriented[known].max())
        fill = lo - (hi - lo) - 1.0  # below every known value, by more than any known spread
    else:
        fill = 0.0
    filled = np.where(known, oriented, fill)

    # best[j] = best sum mapping short layers 0..i into long layers 0..j; cand[i][j] = layer i on j.
    cands = []
    best = np.empty(0)  # set by layer 0, read from layer 1 on
    for i in range(n_short):
        cand = np.full(n_long, -np.inf)
        if i == 0:
            cand[:] = filled[0]
        else:
            cand[i:] = best[i - 1 : n_long - 1] + filled[i, i:]
        cands.append(cand)
        best = np.maximum.accumulate(cand)
    chosen = []
    upper = n_long  # layer i may use long layers < upper
    for i in range(n_short - 1, -1, -1):
        j = int(np.argmax(cands[i][:upper]))
        chosen.append(j)
        upper = j
    chosen.reverse()

    short_to_long = list(enumerate(chosen))
    pairs = [(j, i) for i, j in short_to_long] if flipped else short_to_long
    used_a = {p[0] for p in pairs}
    used_b = {p[1] for p in pairs}
    mean_sim = _nanmean([s[i, j] for i, j in pairs])

    diagonal = None
    if n_short >= 2:
        diag_long = [math.floor(i * (n_long - 1) / (n_short - 1) + 0.5) for i in range(n_short)]
        values = [oriented[i, j] for i, j in enumerate(diag_long)]
        if any(math.isfinite(v) for v in values):
            diagonal = _nanmean(values)

    return DepthAlignment(
        pairs=pairs,
        mean_similarity=mean_sim,
        diagonal_similarity=diagonal,
        skipped_a=[i for i in range(n_a) if i not in used_a],
        skipped_b=[j for j in range(n_b) if j not in used_b],
    )


def _nanmean(values: Iterable[float]) -> float:
    finite = [float(v) for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


# --------------------------------------------------------------------------------------------
# Neuron matching


@dataclass(frozen=True, eq=False)
class NeuronMatch:
    """Matched neurons: row ``rows_a[k]`` of a ≈ ``sign(corr[k])`` x row ``rows_b[k]`` of b, up to offset and scale.

    All arrays have length min(m_a, m_b) and are ordered by ``rows_b`` (so when m_a >= m_b,
    ``rows_b`` is ``arange(m_b)`` and ``a_rows[rows_a]`` is a's neurons in b's order).
    """

    rows_a: np.ndarray  # int64
    rows_b: np.ndarray  # int64, strictly increasing
    corr: np.ndarray  # float64: signed Pearson correlation of each matched pair of rows
    mean_abs_corr: float  # mean |corr| over the pairs; compare with null_level_abs_corr(d, m)


def match_neurons(a_rows: ArrayLike, b_rows: ArrayLike) -> NeuronMatch:
    """Match the neurons (rows) of two weight matrices whose columns are already aligned.

    a_rows is (m_a, d), b_rows is (m_b, d): each row is one neuron's weights over the d hidden
    dims (e.g. rows of an MLP gate/up projection), columns in the same order on both sides
    (apply ``align_hidden`` first when the bases may differ). The Pearson correlation of every
    pair of rows (each row mean-centred) feeds a Hungarian assignment on -|corr|, matching
    min(m_a, m_b) pairs. This undoes the permutation symmetry of MLP neurons (and the sign,
    for activations where it is a symmetry); correlation makes it invariant to each neuron's
    scale and offset. Cost: 4096 x 4096 rows of width 1024 in about 3 s; 11008 x 11008 rows
    of width 4096 (a Llama-7B MLP) in about 30 s and 3.6 GB.

    Chance level: for independent Gaussian rows mean_abs_corr is far from 0, since the
    assignment picks the largest of m chance correlations of spread 1/sqrt(d): about 0.26 for
    256 x 128 rows, see ``null_level_abs_corr``. A constant row correlates 0 with every row.

    Raises ValueError when the arrays are not 2-D, have different widths, fewer than 3
    columns, no rows, or NaN/Inf.
    """
    a = _matrix(a_rows, "a_rows")
    b = _matrix(b_rows, "b_rows")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a_rows and b_rows must have the same width (hidden dims): {a.shape} vs {b.shape}")
    if a.shape[1] < MIN_POINTS or a.shape[0] == 0 or b.shape[0] == 0:
        raise ValueError(f"need at least 1 row and {MIN_POINTS} columns on each side: {a.shape} vs {b.shape}")
    corr = _unit_columns(a.T, centre=True).T @ _unit_columns(b.T, centre=True)  # (m_a, m_b)
    np.clip(corr, -1.0, 1.0, out=corr)
    rows_a, rows_b, matched = _assign(corr)
    return NeuronMatch(
        rows_a=_frozen(rows_a),
        rows_b=_frozen(rows_b),
        corr=_frozen(matched),
        mean_abs_corr=float(np.abs(matched).mean()),
    )


@lru_cache(maxsize=64)
def null_level_abs_corr(d: int, m: int, *, m_b: int | None = None) -> float:
    """Expected ``match_neurons(...).mean_abs_corr`` for m (and m_b) independent Gaussian rows of length d.

    Monte Carlo, deterministic (seeded by the arguments), with enough repeats for ~1024 matched
    pairs in all; cached. The level grows with m (more candidates to pick the best of) and
    shrinks like 1/sqrt(d); e.g. 0.255 for d=128, m=256; 0.091 for d=1024, m=256; 0.058 for
    d=4096, m=4096.
    Also the chance level of ``align_hidden(...).quality`` with d = number of tokens and
    m = hidden size (cosine instead of correlation makes no difference for zero-mean columns).

    Real weights are not Gaussian (heavy tails, shared low-rank structure), so an unrelated
    pair of real models can sit above this level; prefer calibrating on a known-unrelated pair
    and use this as the floor. Costs one m x m_b assignment per repeat: slow for m of many
    thousands (about 5 s for d = m = 4096).
    """
    m_b = m if m_b is None else m_b
    if d < MIN_POINTS or m < 1 or m_b < 1:
        raise ValueError(f"need d >= {MIN_POINTS}, m >= 1, m_b >= 1; got d={d}, m={m}, m_b={m_b}")
    rng = np.random.default_rng([d, m, m_b])
    repeats = max(1, -(-1024 // min(m, m_b)))
    levels = [
        match_neurons(rng.standard_normal((m, d)), rng.standard_normal((m_b, d))).mean_abs_corr for _ in range(repeats)
    ]
    return float(np.mean(levels))

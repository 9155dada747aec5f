"""σ-curve comparison as HonestAGI did it (arXiv 2507.03014): Pearson r per role, mean over roles.

Pearson r is invariant to each curve's scale and offset, so z-scoring the curves first (as
the paper does) changes nothing. Curves of different depth are linearly resampled onto the
longer one, and the result says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .result import Fingerprint
from .roles import ROLE_ORDER, WEIGHT_ROLES

MIN_POINTS = 3  # fewer layers than this give no meaningful correlation


@dataclass
class PairComparison:
    a: str
    b: str
    score: float | None  # mean of per-role r over the projection roles both models have
    per_role: dict[str, float | None]  # every role both have, biases and norms included
    score_roles: list[str]
    layers_a: int
    layers_b: int
    resampled: bool
    notes: list[str] = field(default_factory=list)


def as_array(curve: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in curve], dtype=np.float64)


def resample(curve: np.ndarray, n: int) -> np.ndarray:
    """Linearly resample a per-layer curve (NaN = missing layer) onto n evenly spaced depths."""
    if len(curve) == n:
        return curve
    x = np.linspace(0.0, 1.0, len(curve)) if len(curve) > 1 else np.zeros(1)
    ok = np.isfinite(curve)
    if ok.sum() == 0:
        return np.full(n, np.nan)
    resampled: np.ndarray = np.interp(np.linspace(0.0, 1.0, n), x[ok], curve[ok])
    return resampled


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < MIN_POINTS:
        return None
    a, b = a[ok], b[ok]
    for v in (a, b):
        if np.ptp(v) <= 1e-9 * np.max(np.abs(v)):
            return None  # a flat curve has no shape to correlate
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    if denom == 0.0:
        return None
    return float(np.clip(np.dot(a, b) / denom, -1.0, 1.0))


def compare_pair(fa: Fingerprint, fb: Fingerprint) -> PairComparison:
    n = max(fa.layers, fb.layers)
    resampled = fa.layers != fb.layers
    shared = [r for r in ROLE_ORDER if r in fa.curves and r in fb.curves]
    shared += sorted((set(fa.curves) & set(fb.curves)) - set(shared))
    per_role = {}
    for role in shared:
        per_role[role] = pearson(resample(as_array(fa.curves[role]), n), resample(as_array(fb.curves[role]), n))
    score_roles = [r for r in shared if r in WEIGHT_ROLES and per_role[r] is not None]
    score = float(np.mean([per_role[r] for r in score_roles])) if score_roles else None
    notes = []
    if resampled:
        notes.append(f"depths differ ({fa.layers} vs {fb.layers} layers): the shorter curve was linearly resampled")
    if not shared:
        notes.append("the two models share no attention role")
    return PairComparison(fa.model, fb.model, score, per_role, score_roles, fa.layers, fb.layers, resampled, notes)


def role_score(c: PairComparison, role: str = "mean") -> float | None:
    """The number a view shows for a pair: the score for ``role='mean'``, else that role's r."""
    return c.score if role == "mean" else c.per_role.get(role)


def pair_matrix(fps: Sequence[Fingerprint]) -> list[list[PairComparison]]:
    """Every pair compared once, as an N x N table (symmetric; a model with itself on the diagonal)."""
    n = len(fps)
    out: list[list[PairComparison | None]] = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            c = compare_pair(fps[i], fps[j])
            out[i][j] = c
            out[j][i] = c if i == j else dataclasses.replace(c, a=c.b, b=c.a, layers_a=c.layers_b, layers_b=c.layers_a)
    return out  # type: ignore[return-value]


def matrix_from_pairs(pairs: Sequence[Sequence[PairComparison]], role: str = "mean") -> np.ndarray:
    """N x N matrix of ``role_score`` over a ``pair_matrix``; NaN where undefined."""
    n = len(pairs)
    m = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            v = role_score(pairs[i][j], role)
            if v is not None:
                m[i, j] = v
    return m


def similarity_matrix(fps: Sequence[Fingerprint], role: str = "mean") -> np.ndarray:
    """N x N matrix of the mean score (role='mean') or of one role's r; NaN where undefined."""
    return matrix_from_pairs(pair_matrix(fps), role)

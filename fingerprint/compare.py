"""σ-curve comparison as HonestAGI did it (arXiv 2507.03014): Pearson r per role, mean over roles.

Pearson r is invariant to each curve's scale and offset, so z-scoring the curves first (as
the paper does) changes nothing. Curves of different depth are linearly resampled onto the
longer one, and the result says so.

A sampled fingerprint's σ each carry a standard error; a pair with one gives every r an interval, from a parametric
bootstrap: both curves redrawn within their errors (a seed from the numbers themselves, so the same inputs give the same
interval), r computed for every draw. A pair of exact fingerprints has no interval: its r is exact.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .result import Fingerprint
from .roles import ROLE_ORDER, WEIGHT_ROLES

MIN_POINTS = 3  # fewer layers than this give no meaningful correlation
INTERVAL_LEVEL = 0.95
INTERVAL_DRAWS = 400  # bootstrap draws per fingerprint: the interval's ends move by about 0.01 from one seed to another


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
    exact: bool = True  # no σ of either model carries a standard error: every r is exact
    # role (or "mean" for the score) -> INTERVAL_LEVEL interval of its r; empty when exact
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


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
    return _compare(fa, fb, _draws(fa), _draws(fb))


def _compare(fa: Fingerprint, fb: Fingerprint, da: _Draws, db: _Draws) -> PairComparison:
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
    c = PairComparison(fa.model, fb.model, score, per_role, score_roles, fa.layers, fb.layers, resampled, notes)
    if da.exact and db.exact:
        return c
    return dataclasses.replace(c, exact=False, intervals=_intervals(da, db, c))


def role_score(c: PairComparison, role: str = "mean") -> float | None:
    """The number a view shows for a pair: the score for ``role='mean'``, else that role's r."""
    return c.score if role == "mean" else c.per_role.get(role)


def role_interval(c: PairComparison, role: str = "mean") -> tuple[float, float] | None:
    """The interval of ``role_score(c, role)``: None when the pair is exact or that r is undefined."""
    return c.intervals.get(role)


def pair_matrix(fps: Sequence[Fingerprint]) -> list[list[PairComparison]]:
    """Every pair compared once, as an N x N table (symmetric; a model with itself on the diagonal)."""
    n = len(fps)
    draws = [_draws(fp) for fp in fps]  # once per model, not once per pair
    out: list[list[PairComparison | None]] = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            c = _compare(fps[i], fps[j], draws[i], draws[j])
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


# ---------------------------------------------------------------- intervals from sampled σ


@dataclass(frozen=True)
class _Draws:
    """A fingerprint's curves redrawn within their standard errors: role -> (INTERVAL_DRAWS x layers); a fingerprint
    without errors has its curves as one row each."""

    exact: bool
    curves: dict[str, np.ndarray]
    # the same rows centred and scaled to unit length, for a role every layer has: r is then one dot product
    unit: dict[str, np.ndarray]


def _errors(fp: Fingerprint, role: str) -> np.ndarray:
    err = as_array(list(fp.stats.get(role, {}).get("std_err") or [None] * fp.layers))
    return np.nan_to_num(err, nan=0.0) if len(err) == fp.layers else np.zeros(fp.layers)


def _draws(fp: Fingerprint) -> _Draws:
    errors = {role: _errors(fp, role) for role in fp.curves}
    exact = not any(np.any(e > 0) for e in errors.values())  # exact mode, or every tensor read whole
    curves, unit = {}, {}
    for role, err in errors.items():
        curve = as_array(fp.curves[role])
        if exact:
            drawn = curve[None, :]
        else:
            # from the numbers alone: the same model gives the same interval on every machine, wherever it is stored
            seed = zlib.crc32(role.encode() + curve.tobytes() + err.tobytes())
            drawn = curve + err * np.random.default_rng(seed).standard_normal((INTERVAL_DRAWS, len(curve)))
        curves[role] = drawn
        if np.all(np.isfinite(curve)):
            unit[role] = _unit_rows(drawn)
    return _Draws(exact, curves, unit)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, x / norm, np.nan)


def _resample_rows(rows: np.ndarray, n: int) -> np.ndarray:
    """``resample`` of every row at once (the missing layers are the same in every row)."""
    if rows.shape[1] == n:
        return rows
    ok = np.isfinite(rows[0])
    if not ok.any():
        return np.full((len(rows), n), np.nan)
    x = np.linspace(0.0, 1.0, rows.shape[1])[ok] if rows.shape[1] > 1 else np.zeros(1)
    weights = np.stack([np.interp(np.linspace(0.0, 1.0, n), x, e) for e in np.eye(int(ok.sum()))])
    resampled: np.ndarray = rows[:, ok] @ weights
    return resampled


def _r_draws(da: _Draws, db: _Draws, role: str, n: int) -> np.ndarray:
    """Pearson r of every draw (NaN where a draw is flat)."""
    ua, ub = da.unit.get(role), db.unit.get(role)
    if ua is None or ub is None or ua.shape[1] != ub.shape[1]:
        a, b = _resample_rows(da.curves[role], n), _resample_rows(db.curves[role], n)
        ok = np.isfinite(a[0]) & np.isfinite(b[0])
        ua, ub = _unit_rows(a[:, ok]), _unit_rows(b[:, ok])
    r = np.einsum("ij,ij->i", *np.broadcast_arrays(ua, ub))
    return np.broadcast_to(np.clip(r, -1.0, 1.0), (INTERVAL_DRAWS,))


def _intervals(da: _Draws, db: _Draws, c: PairComparison) -> dict[str, tuple[float, float]]:
    """The INTERVAL_LEVEL interval of every defined r and of the score (see ``_basic_intervals``)."""
    n = max(c.layers_a, c.layers_b)
    keys = [role for role, r in c.per_role.items() if r is not None]
    if not keys:
        return {}
    measured = [c.per_role[k] for k in keys]
    draws = np.stack([_r_draws(da, db, k, n) for k in keys])
    if c.score is not None:
        draws = np.vstack([draws, draws[[keys.index(r) for r in c.score_roles]].mean(axis=0)])
        keys.append("mean")
        measured.append(c.score)
    low, high = _basic_intervals(draws, np.array(measured, dtype=np.float64))
    return {k: (float(lo), float(hi)) for k, lo, hi in zip(keys, low, high, strict=True)}


def _basic_intervals(draws: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of draws, the basic (reverse percentile) bootstrap interval, widened to hold the r measured.

    Noise in the curves pulls a correlation towards 0, so the measured r already leans that way: the draws' spread
    around the measured r mirrors the measured r's spread around the exact one. (The draws' own central range missed
    the exact r about a quarter of the time on the demo models; this interval held it about 95% of the time.)"""
    tail = (1 - INTERVAL_LEVEL) / 2
    ordered = np.sort(draws, axis=1)  # NaN (a flat draw) sorts last
    last = np.isfinite(ordered).sum(axis=1) - 1
    low_q = ordered[np.arange(len(ordered)), np.maximum(np.floor(tail * last).astype(int), 0)]
    high_q = ordered[np.arange(len(ordered)), np.maximum(np.ceil((1 - tail) * last).astype(int), 0)]
    low = np.where(last >= 0, np.minimum(2 * measured - high_q, measured), measured)
    high = np.where(last >= 0, np.maximum(2 * measured - low_q, measured), measured)
    return np.clip(low, -1.0, 1.0), np.clip(high, -1.0, 1.0)

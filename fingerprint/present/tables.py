"""The numbers as tables and matrices, for the pages, the report and the exports: the pairs of a σ comparison,
one verdict's signals, one lineage signal over many models, the stress test.

No plotly here."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

import numpy as np

from ..compare import INTERVAL_LEVEL, PairComparison, pair_matrix
from ..lineage.calibration import Calibration
from ..lineage.signals import SIGNAL_LABELS, SIGNAL_ORDER, SIGNAL_READS
from ..lineage.verdict import Verdict
from ..result import Fingerprint
from .evidence_words import (
    has_calibration,
    placement_text,
    relation_short,
    strength_phrase,
    stress_verdict_text,
)
from .formatting import ordinal
from .labels import MATRIX_SIGNALS, SHORT_SIGNAL, display_names, short_role
from .sigma_words import interval_range, strength
from .texts import transformation_kind

if TYPE_CHECKING:
    from ..lineage.stress import StressReport

Cell = str | int | float | None  # None: no value (shown empty or as n/a)
Row = dict[str, Cell]  # column name -> cell, in column order
PAIR_SCORE = "r (mean over projections)"
PAIR_INTERVAL = f"{INTERVAL_LEVEL:.0%} interval of r"  # "exact" when no σ of the pair carries an error


def pairs_rows(
    fps: Sequence[Fingerprint],
    names: Sequence[str] | None = None,
    pairs: Sequence[Sequence[PairComparison]] | None = None,
) -> list[Row]:
    """One row per unordered pair of different models, highest score first."""
    names = list(names) if names is not None else display_names(fps)
    pairs = pairs if pairs is not None else pair_matrix(fps)
    rows = []
    for i in range(len(fps)):
        for j in range(i + 1, len(fps)):
            c = pairs[i][j]
            row: Row = {
                "model A": names[i],
                "model B": names[j],
                PAIR_SCORE: c.score,
                PAIR_INTERVAL: interval_range(c),
                "strength": strength(c.score),
                "layers": f"{c.layers_a} / {c.layers_b}",
                "depths resampled": "yes" if c.resampled else "no",
            }
            for role, v in c.per_role.items():
                row[f"r {short_role(role)}"] = v
            rows.append(row)
    rows.sort(key=_score_or_lowest, reverse=True)
    return rows


def _score_or_lowest(row: Row) -> float:
    score = row[PAIR_SCORE]
    return -math.inf if score is None or isinstance(score, str) else score


# ---------------------------------------------------------------- lineage evidence


def signal_rows(v: Verdict, cal: Calibration | None = None) -> list[Row]:
    """The evidence as a table: one row per signal, every number named."""
    calibrated = has_calibration(cal)
    rows: list[Row] = []
    for name in SIGNAL_ORDER:
        s = v.signals.get(name)
        if s is None:
            continue
        place = v.placements.get(name)
        rows.append(
            {
                "signal": SIGNAL_LABELS[name],
                "value": s.value if s.available else None,
                "among unrelated pairs": placement_text(place, calibrated=calibrated) if s.available else "",
                "percentile (unrelated)": place.get("percentile") if place else None,
                "z (unrelated)": place.get("z") if place else None,
                "why not available": "" if s.available else (s.reason or ""),
                "what it reads": SIGNAL_READS[name],
            }
        )
    return rows


def signal_rows_text(v: Verdict, cal: Calibration | None = None) -> list[dict[str, str]]:
    """``signal_rows`` with every cell as text, for a table on screen: one type per column (a column of numbers
    and "n/a" cannot be shown as numbers), values rounded to what they support, percentiles as ordinals."""
    out = []
    for r in signal_rows(v, cal):
        value, pct, z = r["value"], r["percentile (unrelated)"], r["z (unrelated)"]
        out.append(
            {
                **{k: "" if x is None else str(x) for k, x in r.items()},
                "value": "n/a" if not isinstance(value, int | float) else f"{value:.3f}",
                "percentile (unrelated)": ordinal(pct) if isinstance(pct, int | float) else "",
                "z (unrelated)": z_text(z) if isinstance(z, int | float) else "",
            }
        )
    return out


def z_text(z: float) -> str:
    """A z-score as a table shows it: beyond 10 standard deviations the digits say nothing more (a z of +634.6 is
    an artefact of unrelated pairs that all score about 0)."""
    return f"{z:+.1f}" if abs(z) <= 10 else ("above +10 (far beyond)" if z > 0 else "below -10 (far beyond)")


def find_verdict(verdicts: Mapping[tuple[str, str], Verdict], a: str, b: str) -> Verdict | None:
    return verdicts.get((a, b)) or verdicts.get((b, a))


def missing_pairs(
    keys: Sequence[str],
    verdicts: Mapping[tuple[str, str], Verdict],
    skip: AbstractSet[tuple[str, str]] = frozenset(),
) -> list[tuple[str, str]]:
    """The unordered pairs of ``keys`` that have no verdict yet (and are not in ``skip``)."""
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if find_verdict(verdicts, a, b) is None and (a, b) not in skip and (b, a) not in skip:
                out.append((a, b))
    return out


def signal_matrix(
    keys: Sequence[str], verdicts: Mapping[tuple[str, str], Verdict], signal: str
) -> tuple[np.ndarray, list[list[str]]]:
    """(N x N values, N x N notes): the diagonal is 1 (a model with itself); a pair without a verdict or where the
    signal is unavailable is NaN with the reason in the note."""
    n = len(keys)
    m = np.full((n, n), np.nan)
    notes = [[""] * n for _ in range(n)]
    for i in range(n):
        m[i, i] = 1.0
        notes[i][i] = "the same model (1 by definition, not computed)"
        for j in range(i + 1, n):
            v = find_verdict(verdicts, keys[i], keys[j])
            if v is None:
                note, val = "not computed yet", None
            else:
                s = v.signals.get(signal)
                val = s.value if s is not None and s.available else None
                note = "" if val is not None else (s.reason if s is not None else "not computed") or "not available"
            if val is not None:
                m[i, j] = m[j, i] = float(val)
            notes[i][j] = notes[j][i] = note
    return m, notes


_RANK = {"same_weights": 0, "quantized_copy": 1, "fine_tune": 2, "moe_upcycle": 3, "depth_width_derivative": 3}


def verdict_rows(
    keys: Sequence[str],
    names: Sequence[str],
    verdicts: Mapping[tuple[str, str], Verdict],
    sort_by: str = "verdict",
    cal: Calibration | None = None,
) -> list[dict[str, str]]:
    """One row per unordered pair: its verdict, how strong, every matrix signal and σ, as text. ``sort_by``
    'verdict': related pairs first, strongest first, then no evidence, can't tell, not computed; a signal's name:
    that signal's value, highest first, pairs without it last."""
    signals = [*MATRIX_SIGNALS, "sigma"]
    rows: list[tuple[tuple[float, float], dict[str, str]]] = []
    for i, a in enumerate(keys):
        for j in range(i + 1, len(keys)):
            v = find_verdict(verdicts, a, keys[j])
            row = {
                "model A": names[i],
                "model B": names[j],
                "verdict": relation_short(v) if v else "not computed yet",
                "how strong": strength_phrase(v, cal) if v else "",
            }
            values = {}
            for name in signals:
                sig = v.signals.get(name) if v else None
                values[name] = sig.value if sig is not None and sig.available and sig.value is not None else None
                row[SHORT_SIGNAL[name]] = "n/a" if values[name] is None else f"{values[name]:.3f}"
            if sort_by == "verdict":
                group = 4.0 if v is None else 3.0 if v.verdict == "insufficient_data" else 2.0
                if v is not None and v.related:
                    group = 0.0 if _RANK.get(v.verdict) is not None else 1.0
                key = (group, -(v.strength if v is not None and v.related else 0.0))
            else:
                x = values.get(sort_by)
                key = (0.0, -x) if x is not None else (1.0, 0.0)
            rows.append((key, row))
    rows.sort(key=lambda kr: kr[0])
    return [r for _, r in rows]


def stress_rows(report: StressReport, cal: Calibration | None = None) -> list[Row]:
    """One row per transformation: exact or not, the measured output change, the verdict, every signal's value."""
    rows: list[Row] = []
    for r in report.rows:
        row: Row = {
            "transformation": r.label,
            "kind": transformation_kind(r.exact),
            "output change (nats)": r.output_change,
        }
        for name in SIGNAL_ORDER:
            s = r.signals.get(name)
            if s is None:
                continue
            row[SHORT_SIGNAL[name]] = s.value if s.available else None
        row["verdict (changed vs original)"] = stress_verdict_text(r.verdict, cal)
        rows.append(row)
    return rows

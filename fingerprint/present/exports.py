"""The files a session can be exported to: the matrix and the curves as CSV, the fingerprints and the lineage
evidence as JSON. Never a token: fingerprints carry none. No plotly here."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .. import __version__
from ..compare import INTERVAL_LEVEL, PairComparison, matrix_from_pairs, pair_matrix, role_interval, role_score
from ..lineage import calibration
from ..result import Fingerprint
from .labels import display_names, public_reference, score_label
from .ordering import display_order

if TYPE_CHECKING:
    from ..lineage.stress import StressReport
    from ..lineage.verdict import Verdict


def matrix_csv(
    fps: Sequence[Fingerprint],
    role: str = "mean",
    order: str = "clustered",
    names: Sequence[str] | None = None,
    pairs: Sequence[Sequence[PairComparison]] | None = None,
) -> str:
    """The N x N matrix the heatmap shows, in the same order and with the same names; empty cell = undefined."""
    names = list(names) if names is not None else display_names(fps)
    pairs = pairs if pairs is not None else pair_matrix(fps)
    m = matrix_from_pairs(pairs, role)
    idx = display_order(m, order)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([f"model \\ {score_label(role)}"] + [names[i] for i in idx])
    for i in idx:
        w.writerow([names[i]] + ["" if not math.isfinite(m[i, j]) else f"{m[i, j]:.6f}" for j in idx])
    return buf.getvalue()


def pairs_csv(
    fps: Sequence[Fingerprint],
    names: Sequence[str] | None = None,
    pairs: Sequence[Sequence[PairComparison]] | None = None,
) -> str:
    """One row per unordered pair: the score and every role's r, each with its 95% interval (both ends equal the r
    when the pair is exact, see the ``exact`` column); empty cells = undefined."""
    names = list(names) if names is not None else display_names(fps)
    pairs = pairs if pairs is not None else pair_matrix(fps)
    roles = list(dict.fromkeys(r for row in pairs for c in row for r in c.per_role))
    level = f"{100 * INTERVAL_LEVEL:.0f}"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["model_a", "model_b", "exact", "layers_a", "layers_b", "resampled"]
    for key in ["mean", *roles]:
        col = "score_mean_r" if key == "mean" else f"r_{key}"
        header += [col, f"{col}_low{level}", f"{col}_high{level}"]
    w.writerow(header)
    for i in range(len(fps)):
        for j in range(i + 1, len(fps)):
            c = pairs[i][j]
            row: list[object] = [names[i], names[j], c.exact, c.layers_a, c.layers_b, c.resampled]
            for key in ["mean", *roles]:
                r = role_score(c, key)
                low, high = role_interval(c, key) or (r, r)
                row += [_number(r), _number(low), _number(high)]
            w.writerow(row)
    return buf.getvalue()


def verdicts_csv(rows: Sequence[Mapping[str, str]]) -> str:
    """The pairs table of the verdicts (``tables.verdict_rows``) as CSV: what each pair's weights are consistent
    with, how strong that is, and every signal's value ("n/a": not available for that pair)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if rows:
        w.writerow(list(rows[0]))
        w.writerows([list(r.values()) for r in rows])
    return buf.getvalue()


def _number(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.6f}"


def curves_csv(fps: Sequence[Fingerprint], names: Sequence[str] | None = None, *, local_paths: bool = False) -> str:
    """Every σ-curve in long form: one row per model, role and layer (local models by name, see public_reference)."""
    names = list(names) if names is not None else display_names(fps)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["name", "model", "revision", "format", "mode", "role", "layer", "sigma", "sigma_std_err", "mean", "rms"]
    )
    for fp, name in zip(fps, names, strict=True):
        for role, curve in fp.curves.items():
            s = fp.stats.get(role, {})
            for layer, sd in enumerate(curve):

                def cell(key: str, layer: int = layer, s: Mapping[str, list[float | None]] = s) -> str:
                    vals = s.get(key) or []
                    v = vals[layer] if layer < len(vals) else None
                    return "" if v is None or not math.isfinite(v) else repr(float(v))

                w.writerow(
                    [
                        name,
                        public_reference(fp, local_paths),
                        fp.revision,
                        fp.format,
                        fp.mode,
                        role,
                        layer,
                        "" if sd is None or not math.isfinite(sd) else repr(float(sd)),
                        cell("std_err"),
                        cell("mean"),
                        cell("rms"),
                    ]
                )
    return buf.getvalue()


def fingerprints_json(fps: Sequence[Fingerprint], *, local_paths: bool = False) -> str:
    """The fingerprints with their provenance: the same JSON array as ``compute --json`` (SCHEMA.md), local models
    named by file or folder name (or ``demo:<name>``) unless ``local_paths``."""
    return json.dumps([{**fp.to_json(), "model": public_reference(fp, local_paths)} for fp in fps], indent=1)


def lineage_json(
    verdicts: Sequence[Verdict] = (),
    references: Sequence[tuple[str, str]] | None = None,
    stress: StressReport | None = None,
) -> str:
    """The lineage evidence computed so far: every verdict with all its signals and placements (``Verdict.to_json``),
    the models' shareable references next to the names it uses, and the stress test's table when one was run."""
    cal = calibration.load()
    out = []
    for k, v in enumerate(verdicts):
        d = v.to_json()
        if references is not None:
            d = {"reference_a": references[k][0], "reference_b": references[k][1], **d}
        out.append(d)
    payload = {
        "tool": "llm-fingerprint",
        "tool_version": __version__,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "calibration": {
            "unrelated_pairs": max((len(x) for x in cal.unrelated.values()), default=0),
            "related_pairs": max((len(x) for x in cal.related.values()), default=0),
        },
        "verdicts": out,
        "stress_test": stress.to_json() if stress is not None else None,
    }
    return json.dumps(payload, indent=1, ensure_ascii=False)

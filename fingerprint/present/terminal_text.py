"""What the command line prints: a model's inspection, the fingerprints a run computed, the σ comparison of pairs
(a table, CSV or JSON) and a lineage verdict, with aligned plain-text tables. No plotly here."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..compare import PairComparison, role_interval
from ..roles import ROLE_LABELS, ROLE_ORDER
from .formatting import human_bytes, ordinal
from .labels import format_label
from .texts import SIGMA_CAVEAT_WITH_EXAMPLES

if TYPE_CHECKING:
    from ..fingerprinting import Inspection, Outcome
    from ..lineage.verdict import Verdict

SIGMA_MEASURE = "pearson r of per-layer attention weight std (σ-curves)"


def text_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell, a dashed rule under the header, no trailing spaces."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def inspection_text(info: Inspection) -> str:
    """What ``inspect`` found: format, architecture, tensors per role and the bytes a fingerprint will read."""
    lines = [
        f"{info.model}",
        f"  revision      {info.revision}",
        f"  format        {format_label(info.format, len(info.files))}",
        f"  architecture  {info.architecture}   layers {info.layers}",
        f"  config        {', '.join(f'{k}={v}' for k, v in info.config.items())}",
        f"  files         {len(info.files)} ({human_bytes(info.bytes_total)})",
    ]
    lines += [f"  {role:<14}{n} tensors   {ROLE_LABELS.get(role, '')}" for role, n in info.tensors_by_role.items()]
    lines.append(
        f"  bytes to read exact {human_bytes(info.bytes_needed_exact)}, sampled {human_bytes(info.bytes_needed_sampled)}"
        f" (default mode: {info.default_mode})"
    )
    lines += [f"  note: {note}" for note in info.notes]
    return "\n".join(lines)


def outcomes_table(outcomes: Sequence[Outcome]) -> str:
    """One row per fingerprint a run computed or found in the cache ('' when there is none)."""
    rows: list[list[object]] = []
    for o in outcomes:
        fp = o.fingerprint
        if fp:
            status = "cached" if o.cached else "ok"
            read = "0 B (cache)" if o.cached else f"{human_bytes(fp.bytes_read)} of {human_bytes(fp.bytes_total)}"
            rows.append([fp.model, fp.architecture or "?", fp.layers, fp.mode, fp.short_revision, read, status])
    if not rows:
        return ""
    return text_table(rows, ["model", "architecture", "layers", "mode", "revision", "bytes read", "status"])


def _column_key(role: str) -> tuple[int, int, str]:
    """Labelled roles in their labels' order, then the others (biases, ...) in display order, then by name: the
    same columns in the same order on every run."""
    labelled = list(ROLE_LABELS)
    return (
        labelled.index(role) if role in labelled else len(labelled),
        ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER),
        role,
    )


def comparison_roles(pairs: Sequence[PairComparison]) -> list[str]:
    """Every role any pair has a correlation for, in column order."""
    return sorted({r for c in pairs for r in c.per_role}, key=_column_key)


def _r(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def comparison_table(pairs: Sequence[PairComparison]) -> str:
    """The pairs' σ-curve correlations as a table, what the numbers are above it and the caveat below."""
    roles = comparison_roles(pairs)
    rows = [
        [
            c.a,
            c.b,
            _r(c.score),
            *[_r(c.per_role.get(r)) for r in roles],
            f"{c.layers_a}/{c.layers_b}",
            "yes" if c.resampled else "",
        ]
        for c in pairs
    ]
    return "\n".join(
        [
            "σ-curve correlation (Pearson r of per-layer attention weight std; mean over Q/K/V/O-type roles)",
            text_table(rows, ["model A", "model B", "mean r", *[f"r {r}" for r in roles], "layers", "resampled"]),
            "",
            "Caveat: " + SIGMA_CAVEAT_WITH_EXAMPLES,
        ]
    )


def comparison_csv(pairs: Sequence[PairComparison]) -> str:
    """One CSV row per pair (excel dialect: lines end in CRLF); an empty cell is an undefined r. The last columns
    are the score's 95% interval (equal ends for an exact pair) and whether the pair is exact."""
    roles = comparison_roles(pairs)
    buf = io.StringIO()
    w = csv.writer(buf)
    header = ["a", "b", "score_mean_r", *[f"r_{r}" for r in roles], "layers_a", "layers_b", "resampled"]
    w.writerow([*header, "score_interval_low", "score_interval_high", "exact"])
    for c in pairs:
        low, high = role_interval(c) or (c.score, c.score)
        w.writerow(
            [
                *[c.a, c.b, _r(c.score), *[_r(c.per_role.get(r)) for r in roles], c.layers_a, c.layers_b, c.resampled],
                *[_r(low), _r(high), c.exact],
            ]
        )
    return buf.getvalue()


def comparison_json(pairs: Sequence[PairComparison]) -> str:
    """Every pair with all its numbers, what they measure and the caveat."""
    out = [
        {
            "a": c.a,
            "b": c.b,
            "score": c.score,
            "per_role": c.per_role,
            "score_roles": c.score_roles,
            "layers_a": c.layers_a,
            "layers_b": c.layers_b,
            "resampled": c.resampled,
            "exact": c.exact,
            "intervals": {k: list(v) for k, v in c.intervals.items()},  # 95%, per role and "mean"; {} when exact
            "notes": c.notes,
            "measure": SIGMA_MEASURE,
            "caveat": SIGMA_CAVEAT_WITH_EXAMPLES,
        }
        for c in pairs
    ]
    return json.dumps(out, indent=2)


def verdict_text(v: Verdict) -> str:
    """The verdict with its strength and reasons, every signal against unrelated pairs, what was read, what could
    not be checked and the caveats."""
    lines = [
        f"{v.a}  vs  {v.b}",
        "",
        f"Verdict: {v.sentence}  [{v.verdict}]",
        f"Strength: {v.strength:.2f} (0..1, probability-like)",
    ]
    lines += [f"  because {b}" for b in v.because]
    rows = []
    for name, s in v.signals.items():
        place = v.placements.get(name) or {}
        value = f"{s.value:.4f}" if s.available else "n/a"
        where = (
            f"{ordinal(place['percentile'])} percentile, z={place['z']}"
            if place and place.get("z") is not None
            else ("" if s.available else s.reason or "")
        )
        rows.append([s.label, value, where])
    lines += ["", text_table(rows, ["signal", "value", "vs unrelated pairs (or why not available)"])]
    if v.reads:
        lines += ["", "Read (all signals together):"]
        lines += [
            f"  - {m}: {human_bytes(r['bytes_read'])} of {human_bytes(r['bytes_total'])} in {r.get('requests', '?')} reads ({r['mode']})"
            for m, r in v.reads.items()
        ]
    if v.not_checked:
        lines += ["", "Could not be checked:"] + [f"  - {n}" for n in v.not_checked]
    lines += ["", "Caveats:"] + [f"  - {c}" for c in v.caveats]
    return "\n".join(lines)

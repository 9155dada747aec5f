"""The N x N matrix of verdicts: what each pair's weights are consistent with, one colour per relation, the
relation written in the cell and the reasons in its hover. The answer over many models, where the σ heatmap is
only the weakest of the signals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ..lineage.calibration import Calibration
from ..lineage.verdict import Verdict
from .evidence_words import RELATION_SHORT, strength_phrase
from .figure_style import CELL_TEXT_MAX, MARGIN, heatmap_side, square_matrix_axes, title, wrap
from .ordering import display_order
from .tables import find_verdict

# (cell kind, colour): related kinds in reds, strongest darkest; no evidence white; the rest greys
VERDICT_COLOURS: tuple[tuple[str, str], ...] = (
    ("same_weights", "#67001f"),
    ("quantized_copy", "#b2182b"),
    ("fine_tune", "#d6604d"),
    ("moe_upcycle", "#f4a582"),
    ("depth_width_derivative", "#f4a582"),
    ("same_lineage", "#fddbc7"),
    ("no_evidence", "#ffffff"),
    ("insufficient_data", "#d4d4d4"),
    ("not_computed", "#ebebeb"),
    ("itself", "#f7f7f7"),
)
VerdictCell = tuple[str, Verdict | None, str]  # (cell kind, verdict or None, note)
_CODE = {kind: i for i, (kind, _) in enumerate(VERDICT_COLOURS)}
CELL_WORDS: dict[str, str] = {str(k): w for k, w in RELATION_SHORT.items()} | {
    "not_computed": "not yet",
    "itself": "itself",
}


def _discrete_scale() -> list[list[object]]:
    k = len(VERDICT_COLOURS)
    scale: list[list[object]] = []
    for i, (_, colour) in enumerate(VERDICT_COLOURS):
        scale += [[i / k, colour], [(i + 1) / k, colour]]
    return scale


def verdict_grid(
    keys: Sequence[str], verdicts: Mapping[tuple[str, str], Verdict], failed: Mapping[object, str] | None = None
) -> list[list[VerdictCell]]:
    """(cell kind, verdict or None, note) for every ordered pair of ``keys``."""
    failed = failed or {}
    grid = []
    for a in keys:
        row: list[VerdictCell] = []
        for b in keys:
            if a == b:
                row.append(("itself", None, "the same model"))
                continue
            v = find_verdict(verdicts, a, b)
            if v is not None:
                row.append((v.verdict, v, ""))
            else:
                why = failed.get((a, b)) or failed.get((b, a)) or ""
                row.append(("not_computed", None, f"could not be computed: {why}" if why else "not computed yet"))
        grid.append(row)
    return grid


def _similarity(grid: list[list[VerdictCell]]) -> np.ndarray:
    """For the clustered order: a related pair's strength, 0 for anything else, 1 on the diagonal."""
    n = len(grid)
    m = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            kind, v, _ = grid[i][j]
            m[i, j] = 1.0 if kind == "itself" else v.strength if v is not None and v.related else 0.0
    return m


def verdict_matrix_figure(
    names: Sequence[str],
    grid: list[list[VerdictCell]],
    order: str = "clustered",
    cal: Calibration | None = None,
) -> go.Figure:
    """The N x N verdicts of ``grid`` (from ``verdict_grid``), rows and columns named ``names``."""
    n = len(names)
    idx = display_order(_similarity(grid), order)
    labels = [names[i] for i in idx]
    z, text, hover = [], [], []
    for i in idx:
        zr, tr, hr = [], [], []
        for j in idx:
            kind, v, note = grid[i][j]
            zr.append(_CODE[kind] + 0.5)  # the middle of its colour band
            tr.append(CELL_WORDS[kind].replace(" ", "<br>", 1))  # two short lines fit a phone's cell
            h = f"<b>{names[i]}</b><br>vs <b>{names[j]}</b><br>"
            if v is not None:
                h += wrap(v.sentence, 50) + "<br>" + wrap(f"how strong: {strength_phrase(v, cal)}", 50)
                if v.not_checked:
                    h += "<br>" + wrap(f"not checked: {len(v.not_checked)} signal(s), see the pair view", 50)
            else:
                h += wrap(note, 50)
            hr.append(h)
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    gap = 1 if n <= 30 else 0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            zmin=0,
            zmax=len(VERDICT_COLOURS),
            colorscale=_discrete_scale(),
            showscale=False,
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            text=text,
            texttemplate="%{text}" if n <= CELL_TEXT_MAX else None,
            textfont_size=12 if n <= 6 else 10,
            xgap=gap,
            ygap=gap,
            name="verdict",
        )
    )
    square_matrix_axes(fig, labels)
    fig.update_layout(
        height=heatmap_side(n),
        plot_bgcolor="#bdbdbd",  # the gaps between cells: a white cell (no evidence) keeps its outline
        title=title(
            "Verdicts: what each pair's weights are consistent with",
            "from all the lineage signals against pairs of unrelated models. Evidence, not proof: hover a cell "
            "for how strong it is.",
        ),
        margin=MARGIN,
    )
    return fig

"""The N x N heatmap of one lineage signal over many models, on the σ heatmap's -1..1 diverging scale."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from ..lineage.calibration import Calibration
from ..lineage.signals import SIGNAL_LABELS
from .evidence_words import calibration_or_default, placement_text
from .figure_style import (
    CELL_TEXT_MAX,
    MARGIN,
    NOT_AVAILABLE,
    diverging_heatmap,
    heatmap_side,
    square_matrix_axes,
    title,
    wrap,
)
from .formatting import number_or_na
from .labels import SHORT_SIGNAL, WHAT_SIGNAL
from .ordering import display_order


def signal_heatmap_figure(
    names: Sequence[str],
    matrix: np.ndarray,
    notes: Sequence[Sequence[str]],
    signal: str,
    order: str = "clustered",
    cal: Calibration | None = None,
) -> go.Figure:
    """The N x N heatmap of one lineage signal on the σ heatmap's fixed -1..1 diverging scale."""
    cal = calibration_or_default(cal)
    calibrated = bool(cal.unrelated)
    n = len(names)
    idx = display_order(matrix, order)
    labels = [names[i] for i in idx]
    z, text, hover = [], [], []
    for i in idx:
        zr, tr, hr = [], [], []
        for j in idx:
            x = matrix[i, j]
            ok = bool(np.isfinite(x))
            zr.append(float(x) if ok else None)
            tr.append(f"{x:.2f}" if ok else "n/a")
            h = f"<b>{names[i]}</b><br>vs <b>{names[j]}</b><br>{SIGNAL_LABELS[signal]}: {number_or_na(x if ok else None)}"
            if i != j and ok:
                p = cal.place(signal, float(x))
                h += "<br>" + placement_text(p.to_json() if p else None, calibrated=calibrated)
            if notes[i][j]:
                h += "<br>" + wrap(notes[i][j], 50)
            hr.append(h)
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    gap = 1 if n <= 30 else 0
    heat = diverging_heatmap(z, labels, text, hover, scale_title=SHORT_SIGNAL[signal], name=signal, hover_on_gaps=False)
    heat.colorbar.update(thickness=14)
    fig = go.Figure(heat)
    gaps = [[0.0 if x is None else None for x in row] for row in z]
    if any(x is not None for row in gaps for x in row):  # not available: grey, not white (white means 0)
        fig.add_trace(
            go.Heatmap(
                z=gaps,
                x=labels,
                y=labels,
                zmin=0,
                zmax=1,
                colorscale=[[0, NOT_AVAILABLE], [1, NOT_AVAILABLE]],
                showscale=False,
                customdata=hover,
                hovertemplate="%{customdata}<extra></extra>",
                hoverongaps=False,
                text=[["n/a" if x is None else "" for x in row] for row in z],
                texttemplate="%{text}" if n <= CELL_TEXT_MAX else None,
                textfont=dict(color="#777"),
                xgap=gap,
                ygap=gap,
                name="not available",
            )
        )
    side = heatmap_side(n)
    t = cal.threshold(signal)
    bg = (
        f"values above {t:.2f} are clearly above every unrelated pair"
        if t is not None
        else "no calibration: compare the cells with each other, not with a threshold"
    )
    square_matrix_axes(fig, labels)
    fig.update_layout(
        height=side,
        plot_bgcolor="white",
        title=title(
            f"{SHORT_SIGNAL[signal]}: {WHAT_SIGNAL[signal]}", f"{bg}. Grey cell: not available (hover says why)."
        ),
        margin=MARGIN,
    )
    return fig

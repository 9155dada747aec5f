"""The stress test as a figure: transformations by signals, each cell survived, broke or not available."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from ..lineage.calibration import Calibration
from ..lineage.signals import SIGNAL_LABELS, SIGNAL_ORDER
from .evidence_words import calibration_or_default
from .figure_style import COLORSCALE, NOT_AVAILABLE, title, wrap
from .formatting import number_or_na
from .labels import SHORT_SIGNAL
from .texts import transformation_kind

if TYPE_CHECKING:
    from ..lineage.stress import StressReport

SURVIVED = "#1b9e77"
BROKE = "#d95f02"


def _change_text(x: float) -> str:
    return f"{x:.0e}" if x < 1e-3 else f"{x:.2g}"


def stress_figure(report: StressReport, cal: Calibration | None = None) -> go.Figure:
    """Rows: transformations (function-preserving or output-changing, output change); columns: signals; a cell is the signal's value,
    coloured survived / broke / not available - or, without a calibration, by value on the -1..1 scale."""
    cal = calibration_or_default(cal)
    signals = [n for n in SIGNAL_ORDER if any(n in r.signals for r in report.rows)]
    judged = any(v is not None for r in report.rows for v in r.survived.values())
    # written upwards (see the x axis below), so six columns fit a phone's width as well as a wide screen
    xs = [SHORT_SIGNAL[n].split(" (")[0] for n in signals]
    ys = list(range(len(report.rows)))
    z, text, hover = [], [], []
    for r in report.rows:
        zr, tr, hr = [], [], []
        for n in signals:
            s = r.signals.get(n)
            value = s.measured if s is not None else None
            ok = value is not None
            state = r.survived.get(n)
            if judged:
                zr.append(None if state is None else (1.0 if state else 0.0))
            else:
                zr.append(None if value is None else float(value))
            word = (
                ("survived: still clearly above every unrelated pair" if state else "broke: in the unrelated range")
                if state is not None
                else ("not judged: no calibration" if ok else "not available")
            )
            tr.append("n/a" if value is None else f"{value:.2f}")
            why = "" if ok or s is None else f"<br>{wrap(s.reason or '', 50)}"
            hr.append(
                f"<b>{r.label}</b> ({transformation_kind(r.exact)})<br>{SIGNAL_LABELS[n]}: "
                f"{number_or_na(value)}<br>{word}{why}"
            )
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    if judged:
        colours = dict(
            zmin=0, zmax=1, colorscale=[[0, BROKE], [0.5, BROKE], [0.5, SURVIVED], [1, SURVIVED]], showscale=False
        )
    else:
        colours = dict(zmin=-1, zmax=1, zmid=0, colorscale=COLORSCALE, showscale=False)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=xs,
            y=ys,
            text=text,
            texttemplate="%{text}",
            textfont=dict(size=11),
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            xgap=2,
            ygap=2,
            name="signals",
            **colours,
        )
    )
    if judged:
        for label, colour in (
            ("survived (still clearly above every unrelated pair)", SURVIVED),
            ("broke (in the unrelated range)", BROKE),
            ("not available", NOT_AVAILABLE),
        ):
            fig.add_trace(
                go.Scatter(
                    x=[None], y=[None], mode="markers", name=label, marker=dict(symbol="square", size=14, color=colour)
                )
            )
    ticks = [
        f"<b>{r.label}</b><br><span style='font-size:10px;color:#666'>"
        f"{'same outputs' if r.exact else 'outputs move'}: {_change_text(r.output_change)} nats</span>"
        for r in report.rows
    ]
    fig.update_yaxes(
        tickmode="array",
        tickvals=ys,
        ticktext=ticks,
        autorange="reversed",
        automargin=True,
        showgrid=False,
        zeroline=False,
    )
    fig.update_xaxes(side="top", showgrid=False, zeroline=False, tickfont_size=12, tickangle=-90, automargin=True)
    # the verdict of each changed model is in the table under the figure (and the report's): not beside the cells,
    # where it took 260 px that a phone does not have
    sub = (
        "colour: did the signal still see the copy?"
        if judged
        else "no calibration: cells coloured by value on the -1..1 scale (red = alike, white = nothing in common)"
    )
    longest = max(len(SHORT_SIGNAL[n]) for n in SIGNAL_ORDER)
    fig.update_layout(
        # the signal names are written upwards above the cells: the title stays clear of them
        title=title(f"Stress test of {report.model}", sub, above=int(longest * 7.5) + 16),
        height=260 + 58 * len(report.rows),
        margin=dict(r=20, t=8),
        plot_bgcolor=NOT_AVAILABLE,
        legend=dict(orientation="h", yanchor="top", y=-0.04, x=0),
    )
    return fig

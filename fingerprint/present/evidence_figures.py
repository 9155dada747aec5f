"""Figures of one pair's lineage evidence: every signal against the unrelated background, the layer-by-layer
alignment, the MoE panel. The dashboard shows them and the HTML report embeds the same ones."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from ..lineage.calibration import Calibration
from ..lineage.signals import SIGNAL_LABELS, SIGNAL_ORDER, SIGNAL_READS
from ..lineage.verdict import Verdict
from .evidence_words import calibration_or_default, placement_text
from .figure_style import COLORSCALE, MARGIN, legend_below, title, wrap
from .formatting import number_or_na
from .labels import SHORT_SIGNAL, WHAT_SIGNAL

BACKGROUND = "rgba(110,110,110,0.55)"
RELATED = "rgba(230,130,30,0.45)"
THIS_PAIR = "#111111"


ROW_HEIGHT = 150  # pixels per signal: its name and reading on top (up to four lines at 400 px), the dots below
LABEL_CHARS = 56  # a line of a signal's name and reading fits a phone's width


def _jitter(n: int, spread: float = 0.2) -> list[float]:
    """Deterministic vertical offsets in [-spread, spread] (golden-ratio sequence): dots of equal value stay apart."""
    return [spread * (2 * ((k * 0.6180339887) % 1.0) - 1) for k in range(n)]


def evidence_figure(v: Verdict, cal: Calibration | None = None) -> go.Figure:
    """One row per signal: the unrelated pairs' values (grey), related pairs' (orange), this pair's (black diamond);
    the value and where it falls among unrelated pairs are written on the right; unavailable signals say why."""
    cal = calibration_or_default(cal)
    calibrated = bool(cal.unrelated)
    names = [n for n in SIGNAL_ORDER if n in v.signals]
    ys = list(range(len(names)))
    fig = go.Figure()
    lo = -0.15
    legend_done: set[str] = set()

    def legend_once(key: str) -> bool:
        first = key not in legend_done
        legend_done.add(key)
        return first

    for y, name in zip(ys, names, strict=True):
        s = v.signals[name]
        bg = cal.unrelated.get(name) or []
        rel = cal.related.get(name) or []
        lo = min([lo, *(x - 0.05 for x in bg), *(x - 0.05 for x in rel)])
        if bg:
            fig.add_trace(
                go.Scatter(
                    x=bg,
                    y=[y + d for d in _jitter(len(bg))],
                    mode="markers",
                    name="unrelated pairs (calibration)",
                    legendgroup="unrelated",
                    showlegend=legend_once("unrelated"),
                    marker=dict(color=BACKGROUND, size=7, line=dict(width=0)),
                    hovertemplate=f"unrelated pair<br>{SIGNAL_LABELS[name]} = %{{x:.3f}}<extra></extra>",
                )
            )
        if rel:
            fig.add_trace(
                go.Scatter(
                    x=rel,
                    y=[y - d for d in _jitter(len(rel), 0.14)],
                    mode="markers",
                    name="related pairs (calibration)",
                    legendgroup="related",
                    showlegend=legend_once("related"),
                    marker=dict(color=RELATED, size=7, symbol="circle-open", line=dict(width=1.5)),
                    hovertemplate=f"related pair<br>{SIGNAL_LABELS[name]} = %{{x:.3f}}<extra></extra>",
                )
            )
        t = cal.threshold(name)
        if t is not None:
            fig.add_trace(
                go.Scatter(
                    x=[t, t],
                    y=[y - 0.26, y + 0.26],
                    mode="lines",
                    name="threshold: clearly above every unrelated pair",
                    legendgroup="threshold",
                    showlegend=legend_once("threshold"),
                    line=dict(color="#888", width=1.5, dash="dash"),
                    hovertemplate=f"threshold for {SHORT_SIGNAL[name]}: {t:.3f}<extra></extra>",
                )
            )
        place = v.placements.get(name)
        if s.available and s.value is not None and math.isfinite(s.value):
            lo = min(lo, s.value - 0.05)
            where = placement_text(place, calibrated=calibrated)
            related_below = place.get("related_below") if place else None
            extra = "" if related_below is None else f"<br>{related_below:.0f}% of related pairs score lower"
            fig.add_trace(
                go.Scatter(
                    x=[s.value],
                    y=[y],
                    mode="markers",
                    name="this pair",
                    legendgroup="pair",
                    showlegend=legend_once("pair"),
                    marker=dict(color=THIS_PAIR, size=17, symbol="diamond", line=dict(color="white", width=1.5)),
                    hovertemplate=(
                        f"<b>{SIGNAL_LABELS[name]}</b><br>this pair: {s.value:.4f}<br>{where}{extra}"
                        f"<br>reads: {wrap(SIGNAL_READS[name], 60)}<extra></extra>"
                    ),
                )
            )
            readout = f"<b>{s.value:.3f}</b>" + (f": {where}" if calibrated else "")
        else:
            reason = s.reason or "unknown"
            reason = reason if len(reason) <= 80 else reason[:78].rsplit(" ", 1)[0] + " …"
            readout = f"<span style='color:#999'>not available: {reason}</span>"
            fig.add_hrect(y0=y - 0.3, y1=y + 0.3, fillcolor="#f2f2f2", line_width=0, layer="below")
        # the signal's name and reading above its row, across the whole width: nothing beside the plot to squeeze it
        heading = f"<b>{SHORT_SIGNAL[name]}</b> <span style='color:#666'>({WHAT_SIGNAL[name]})</span>"
        fig.add_annotation(
            x=0,
            xref="paper",
            y=y - 0.28,
            yref="y",
            text=wrap(f"{heading}<br>{readout}", LABEL_CHARS),
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            align="left",
            font=dict(size=12),
        )
    fig.update_yaxes(
        range=[len(names) - 0.7, -0.85],  # reversed: the first signal on top, room above it for its name
        showticklabels=False,
        showgrid=False,
        zeroline=False,
    )
    fig.update_xaxes(
        range=[max(-1.05, lo), 1.08],
        zeroline=True,
        zerolinecolor="#ccc",
        gridcolor="#eee",
        title_text="value of the signal<br>(a correlation or similarity: 1 = identical weights)",
        title_font_size=11,
        automargin=True,
    )
    sub = "" if calibrated else "no calibration: the values of unrelated pairs cannot be drawn behind this pair's"
    fig.update_layout(
        title=title(f"Lineage evidence: {v.a} vs {v.b}", sub),
        height=200 + ROW_HEIGHT * len(names),
        margin=MARGIN,
        plot_bgcolor="white",
        showlegend=True,
        legend=legend_below(font_size=11),
        hoverlabel=dict(align="left"),
    )
    return fig


def depth_figure(v: Verdict) -> go.Figure | None:
    """The layer-by-layer similarity matrix (A's layers down, B's across) with the best monotone alignment drawn."""
    s = v.signals.get("depth")
    if s is None or not s.available or not s.detail.get("matrix"):
        return None
    m = s.detail["matrix"]
    z = [[None if x is None else float(x) for x in row] for row in m]
    na, nb = len(z), len(z[0]) if z else 0
    basis = s.detail.get("basis", "elementwise")
    what = (
        "Pearson r of the weights at identical positions"
        if basis == "elementwise"
        else "CKA of Q/K after aligning the hidden dimensions (AWM)"
    )
    text = [["n/a" if x is None else f"{x:.2f}" for x in row] for row in z]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(nb)),
            y=list(range(na)),
            zmin=-1,
            zmax=1,
            zmid=0,
            colorscale=COLORSCALE,
            text=text,
            texttemplate="%{text}" if na * nb <= 400 else None,
            colorbar=dict(title=dict(text="similarity", side="right"), tickvals=[-1, -0.5, 0, 0.5, 1], thickness=14),
            hovertemplate=(f"layer %{{y}} of {v.a}<br>layer %{{x}} of {v.b}<br>{what}: %{{text}}<extra></extra>"),
            name="similarity",
        )
    )
    pairs = s.detail.get("pairs") or []
    if pairs:
        fig.add_trace(
            go.Scatter(
                x=[p[1] for p in pairs],
                y=[p[0] for p in pairs],
                mode="lines+markers",
                line=dict(color="rgba(0,0,0,0.35)", width=2),
                marker=dict(
                    size=max(10, min(34, 420 // max(na, nb, 1))),
                    symbol="square-open",
                    color="black",
                    line=dict(width=2),
                ),
                name="best monotone alignment",
                hovertemplate="aligned: layer %{y} ↔ layer %{x}<extra></extra>",
            )
        )
    fig.update_yaxes(
        title_text=wrap(f"layer of {v.a}", 30),
        range=[na - 0.5, -0.5],
        dtick=1 if na <= 40 else None,
        scaleanchor="x",
        constrain="domain",
        showgrid=False,
        zeroline=False,
        automargin=True,
    )
    fig.update_xaxes(
        automargin=True,
        title_text=wrap(f"layer of {v.b}", 40),
        range=[-0.5, nb - 0.5],
        dtick=1 if nb <= 40 else None,
        side="bottom",
        showgrid=False,
        zeroline=False,
        constrain="domain",
    )
    mean = "n/a" if s.value is None else f"{s.value:.3f}"
    diag = s.detail.get("diagonal")
    diag_text = "" if diag is None else f"; on the plain diagonal: {diag:.3f}"
    fig.update_layout(
        title=title(
            f"Layer-by-layer similarity ({what})",
            f"line: the best order-keeping alignment of layers; mean similarity along it: {mean}{diag_text}",
        ),
        height=max(480, min(900, 200 + 34 * na)),
        margin=MARGIN,
        plot_bgcolor="white",
        legend=legend_below(),
    )
    return fig


def moe_figure(v: Verdict, cal: Calibration | None = None) -> go.Figure | None:
    """Per MoE layer: how well the experts' neurons match the dense model's MLP (mean |r| after matching)."""
    s = v.signals.get("moe")
    if s is None or not s.available or not s.detail.get("per_layer"):
        return None
    cal = calibration_or_default(cal)
    per = s.detail["per_layer"]
    layers = sorted(per, key=lambda k: int(k))
    fig = go.Figure(
        go.Bar(
            x=[f"layer {k}" for k in layers],
            y=[per[k] for k in layers],
            marker_color="#4c78a8",
            text=[f"{per[k]:.3f}" for k in layers],
            textposition="outside",
            name="mean |r| of matched neurons",
            hovertemplate="MoE layer %{x}<br>mean |r| of matched neurons: %{y:.3f}<extra></extra>",
        )
    )
    t = cal.threshold("moe")
    if t is not None:
        fig.add_hline(
            y=t,
            line_dash="dash",
            line_color="#888",
            annotation_text=f"threshold {t:.2f}: above every unrelated pair",
        )
    fig.update_yaxes(range=[0, 1.1], title_text="mean |r| of matched neurons", automargin=True)
    fig.update_xaxes(automargin=True)
    fig.update_layout(
        title=title(
            f"MoE experts vs dense MLP: {s.detail.get('moe_model')} against {s.detail.get('dense_model')}",
            f"each expert's gate/up neurons matched to the dense model's; median over experts: {number_or_na(s.value)}",
        ),
        height=380,
        margin=MARGIN,
        showlegend=False,
    )
    return fig

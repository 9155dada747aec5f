"""Figures of σ-curve fingerprints: the N x N correlation heatmap, the σ-curves overlaid, a pair view.

The dashboard shows these figures and the HTML report embeds the same ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..compare import PairComparison, as_array, compare_pair, matrix_from_pairs, pair_matrix, resample, role_score
from ..result import Fingerprint
from ..roles import WEIGHT_ROLES
from .figure_style import (
    LEGEND_CHARS,
    MARGIN,
    PALETTE,
    SYMBOLS,
    diverging_heatmap,
    heatmap_side,
    legend_below,
    tick_labels,
    tick_style,
    title,
    wrap,
)
from .formatting import number_or_na
from .labels import display_names, role_label, roles_present, score_label, short_role
from .ordering import cluster_order
from .sigma_words import interval_words
from .texts import HEATMAP_SCALE


def _hover(c: PairComparison, role: str, na: str, nb: str) -> str:
    per = " · ".join(f"{short_role(r)} {number_or_na(v, 2)}" for r, v in c.per_role.items()) or "none"
    depth = f"{c.layers_a} vs {c.layers_b} layers"
    depth += " (different depths: the shorter curve was resampled)" if c.resampled else " (same depth, no resampling)"
    how_sure = interval_words(c, role)
    return (
        f"<b>{na}</b><br>vs <b>{nb}</b><br>r = {number_or_na(role_score(c, role))} ({role_label(role)})"
        + (f"<br>how sure: {how_sure}" if how_sure else "")
        + f"<br>per role: {per}<br>{depth}"
    )


def heatmap_figure(
    fps: Sequence[Fingerprint],
    role: str = "mean",
    order: str = "clustered",
    names: Sequence[str] | None = None,
    pairs: list[list[PairComparison]] | None = None,
) -> go.Figure:
    """The N x N heatmap of σ-curve Pearson r, fixed -1..1 diverging scale; clustered order adds a dendrogram."""
    names = list(names) if names is not None else display_names(fps)
    pairs = pairs if pairs is not None else pair_matrix(fps)
    full = matrix_from_pairs(pairs, role)
    n = len(fps)
    idx, link = cluster_order(full) if order == "clustered" else (list(range(n)), None)
    m = full[np.ix_(idx, idx)]
    labels = [names[i] for i in idx]
    hover = [[_hover(pairs[i][j], role, names[i], names[j]) for j in idx] for i in idx]
    text = [[number_or_na(v, 2) for v in row] for row in m]
    z = [[None if not math.isfinite(v) else float(v) for v in row] for row in m]

    heat = diverging_heatmap(z, labels, text, hover, scale_title="Pearson r", name="correlation")
    tick_font, max_len = tick_style(n)
    ticks = dict(tickmode="array", tickvals=labels, ticktext=tick_labels(labels, max_len))
    side = heatmap_side(n)
    heading = title(score_label(role), HEATMAP_SCALE)
    heat.colorbar.update(thickness=14)
    if link is None:
        fig = go.Figure(heat)
        fig.update_yaxes(autorange="reversed", tickfont_size=tick_font, automargin=True, **ticks)
        fig.update_xaxes(tickfont_size=tick_font, tickangle=-35 if n <= 20 else -60, automargin=True, **ticks)
        fig.update_layout(height=side, title=heading, margin=MARGIN)
        # square cells; both axes shrink to the square, so the labels stay next to the cells at any width
        fig.update_yaxes(scaleanchor="x", constrain="domain")
        fig.update_xaxes(constrain="domain")
        return fig

    from scipy.cluster.hierarchy import dendrogram

    dend = dendrogram(link, no_plot=True)
    fig = make_subplots(rows=2, cols=1, row_heights=[0.16, 0.84], vertical_spacing=0.01)
    for xs, ys in zip(dend["icoord"], dend["dcoord"], strict=True):
        fig.add_trace(
            go.Scatter(
                x=[(x - 5.0) / 10.0 for x in xs],
                y=ys,
                mode="lines",
                line=dict(color="#555", width=1),
                hoverinfo="skip",
                showlegend=False,
            ),
            row=1,
            col=1,
        )
    heat.colorbar.update(len=0.8, y=0.0, yanchor="bottom")
    fig.add_trace(heat, row=2, col=1)
    fig.update_xaxes(range=[-0.5, n - 0.5], showticklabels=False, showgrid=False, zeroline=False, row=1, col=1)
    fig.update_yaxes(
        title_text="1 - r", title_font_size=10, showgrid=False, zeroline=False, tickfont_size=9, row=1, col=1
    )
    fig.update_xaxes(
        range=[-0.5, n - 0.5],
        tickfont_size=tick_font,
        tickangle=-35 if n <= 20 else -60,
        automargin=True,
        row=2,
        col=1,
        **ticks,
    )
    fig.update_yaxes(autorange="reversed", tickfont_size=tick_font, automargin=True, row=2, col=1, **ticks)
    fig.update_layout(height=int(side * 1.15), title=heading, plot_bgcolor="white", margin=MARGIN)
    return fig


def _zscore(y: np.ndarray) -> np.ndarray:
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return y
    sd = float(np.std(y[ok]))
    centred = y - float(np.mean(y[ok]))
    return centred / sd if sd > 0 else centred


def curves_figure(
    fps: Sequence[Fingerprint],
    roles: Sequence[str] | None = None,
    normalise: bool = False,
    names: Sequence[str] | None = None,
) -> go.Figure:
    """σ per layer, one panel per role, every model overlaid. Different depths: x is relative depth and the
    curves that a comparison resamples are dashed."""
    names = list(names) if names is not None else display_names(fps)
    roles = list(roles) if roles is not None else [r for r in roles_present(fps) if r in WEIGHT_ROLES]
    roles = roles or roles_present(fps)[:4]
    depths = {f.layers for f in fps}
    same_depth = len(depths) <= 1
    deepest = max(depths) if depths else 0
    fig = _stacked(roles, [role_label(r) for r in roles])
    legend_names = tick_labels(names, 36 if len(fps) > 20 else 80)  # distinguishable; hover has the full name
    drawn: list[dict[str, np.ndarray]] = []
    for k, fp in enumerate(fps):
        color = PALETTE[k % len(PALETTE)]
        stretched = not same_depth and fp.layers != deepest
        shown_curves = {}
        for role in roles:
            if role in fp.curves:
                y = as_array(fp.curves[role])
                shown_curves[role] = _zscore(y) if normalise else y
        twin = _same_curves(shown_curves, drawn)
        drawn.append(shown_curves)
        label = legend_names[k] + (f" ({fp.layers} layers, resampled to {deepest} to compare)" if stretched else "")
        if twin is not None:
            label += f" (same curve as {legend_names[twin]}, drawn dotted on top)"
        shown = False
        for p, role in enumerate(roles):
            if role not in fp.curves:
                continue
            y = as_array(fp.curves[role])
            err = as_array(fp.stats.get(role, {}).get("std_err", [None] * len(y))) if fp.mode == "sampled" else None
            if normalise:
                sd = np.nanstd(y) if np.isfinite(y).sum() > 1 else 0.0
                y = _zscore(y)
                err = err / sd if err is not None and sd > 0 else None
            n = len(y)
            x = list(range(n)) if same_depth else [i / (n - 1) if n > 1 else 0.0 for i in range(n)]
            symbol = SYMBOLS[k % len(SYMBOLS)] + ("-open" if stretched or twin is not None else "")
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[None if not math.isfinite(v) else float(v) for v in y],
                    mode="lines+markers",
                    name=wrap(label, LEGEND_CHARS),
                    legendgroup=names[k],
                    showlegend=not shown,
                    line=dict(
                        color=color,
                        width=2,
                        dash="dot" if twin is not None else "dash" if stretched else "solid",
                    ),
                    marker=dict(size=9 if twin is not None else 7, symbol=symbol),
                    error_y=dict(
                        type="data", array=[0 if not math.isfinite(e) else float(e) for e in err], visible=True
                    )
                    if err is not None
                    else None,
                    hovertemplate=f"<b>{names[k]}</b><br>{role_label(role)}<br>layer %{{customdata}}<br>"
                    + ("z-scored σ" if normalise else "σ")
                    + " = %{y:.4g}<extra></extra>",
                    customdata=list(range(n)),
                ),
                row=p + 1,
                col=1,
            )
            shown = True
    xtitle = "layer" if same_depth else "relative depth (0 = first layer, 1 = last)"
    fig.update_xaxes(title_text=xtitle, title_font_size=11, row=len(roles), col=1)
    if same_depth and deepest <= 40:
        fig.update_xaxes(dtick=1)  # layers are whole numbers
    fig.update_yaxes(title_text="σ, z-scored" if normalise else "σ", title_font_size=11)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    what = (
        "each curve shifted and scaled to mean 0, std 1: only the shape is left, which is what the correlation sees"
        if normalise
        else "σ = the standard deviation of a layer's weights"
    ) + ". Click a model's name to hide its curve."
    fig.update_layout(
        height=_stacked_height(len(roles), len(fps)),
        title=title("σ-curves per layer", what, above=SUBPLOT_TITLE),
        legend=legend_below(font_size=9 if len(fps) > 20 else 11),
        margin=MARGIN,
    )
    return fig


SUBPLOT_TITLE = 26  # the height of a subplot's title, kept free under the figure's title
PANEL_HEIGHT = 190  # one subplot of a stacked figure: wide and low at 1600 px, still readable at 400 px


def _stacked(roles: Sequence[str], titles: Sequence[str]) -> go.Figure:
    """One subplot per role, stacked in one column with a shared x axis: they fit a phone and a wide screen alike,
    and only the bottom one carries the x axis, so no axis title meets a subplot title."""
    rows = max(1, len(roles))
    return make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        subplot_titles=list(titles),
        vertical_spacing=min(0.3, 60 / (PANEL_HEIGHT * rows)) if rows > 1 else 0.0,
    )


def _stacked_height(panels: int, legend_entries: int) -> int:
    """Room for the panels, the title and a legend below that wraps onto several lines on a narrow screen."""
    return 170 + (PANEL_HEIGHT + 60) * max(1, panels) + 22 * min(legend_entries, 12)


def _same_curves(curves: dict[str, np.ndarray], earlier: list[dict[str, np.ndarray]]) -> int | None:
    """The index of an earlier model whose drawn curves this model's would hide (e.g. a quantized copy's), or None."""
    for j, other in enumerate(earlier):
        if other.keys() != curves.keys() or not curves:
            continue
        same = True
        for role, y in curves.items():
            z = other[role]
            if len(z) != len(y):
                same = False
                break
            ok = np.isfinite(y) & np.isfinite(z)
            span = float(np.ptp(y[ok])) if ok.any() else 0.0
            if not ok.any() or not np.allclose(y[ok], z[ok], rtol=0, atol=0.01 * span + 1e-12):
                same = False
                break
        if same:
            return j
    return None


def pair_figure(
    fa: Fingerprint, fb: Fingerprint, name_a: str, name_b: str, pair: PairComparison | None = None
) -> go.Figure:
    """Two models' curves aligned on a common depth and z-scored, one panel per shared role, r in each title."""
    pair = pair or compare_pair(fa, fb)
    roles = [r for r in pair.per_role if r in WEIGHT_ROLES] + [r for r in pair.per_role if r not in WEIGHT_ROLES]
    roles = roles or ["(none)"]
    n = max(fa.layers, fb.layers)
    titles = [f"{role_label(r)}: r = {number_or_na(pair.per_role.get(r), 3)}" for r in roles]
    fig = _stacked(roles, titles)
    for p, role in enumerate(roles):
        if role not in fa.curves or role not in fb.curves:
            continue
        for k, (fp, name, color) in enumerate(((fa, name_a, PALETTE[0]), (fb, name_b, PALETTE[1]))):
            style = dict(width=4, dash="solid") if k == 0 else dict(width=2, dash="dot")
            y = _zscore(resample(as_array(fp.curves[role]), n))
            stretched = fp.layers != n
            fig.add_trace(
                go.Scatter(
                    x=list(range(n)),
                    y=[None if not math.isfinite(v) else float(v) for v in y],
                    mode="lines+markers",
                    name=name + (f" (resampled from {fp.layers} layers)" if stretched else ""),
                    legendgroup=name,
                    showlegend=p == 0,
                    line=dict(color=color, **style),
                    marker=dict(
                        size=9 if k == 0 else 7,
                        symbol="circle" if k == 0 else "diamond-open" if stretched else "diamond",
                    ),
                    hovertemplate=f"<b>{name}</b><br>{role_label(role)}<br>layer %{{x}}<br>z-scored σ = %{{y:.3f}}<extra></extra>",
                ),
                row=p + 1,
                col=1,
            )
    fig.update_xaxes(
        title_text="layer" if fa.layers == fb.layers else f"layer (aligned on {n} layers)",
        title_font_size=11,
        row=len(roles),
        col=1,
    )
    fig.update_yaxes(title_text="σ, z-scored", title_font_size=11, automargin=True)
    fig.update_xaxes(automargin=True)
    fig.update_layout(
        height=_stacked_height(len(roles), 2),
        title=title(
            f"{name_a} vs {name_b}: σ-curves aligned and z-scored",
            f"{score_label('mean')}: {number_or_na(pair.score)}",
            above=SUBPLOT_TITLE,
        ),
        legend=legend_below(font_size=11),
        margin=MARGIN,
    )
    return fig

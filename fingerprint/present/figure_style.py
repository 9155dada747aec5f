"""What every figure shares: the diverging colour scale, the palette, axis labels that fit, text that wraps, and a
layout that reads at 400 px and at 1600 px wide.

Plotly cannot know the width a figure will be drawn at, so every figure is laid out to work at any width: titles
are short lines, wrapped, left-aligned and given their own room (automargin); legends sit below the plot; subplots
are stacked in one column; margins start small and grow to fit the labels (automargin)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.colors import qualitative

COLORSCALE = "RdBu_r"  # diverging: red = +1, white = 0, blue = -1
CELL_TEXT_MAX = 12  # write the value into the cells of a heatmap up to this many models
PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Dark24 + qualitative.Light24
SYMBOLS = ("circle", "diamond", "square", "triangle-up", "x", "cross", "star", "triangle-down", "pentagon", "hexagon")
NOT_AVAILABLE = "#e6e6e6"  # a cell with no value: grey, not white (white means 0)


def tick_label(name: str, max_len: int) -> str:
    """A name cut in the middle to ``max_len`` characters (start and end carry the most: org and variant)."""
    if len(name) <= max_len:
        return name
    keep = max_len - 1
    head = (keep + 1) // 2
    return name[:head] + "…" + name[len(name) - (keep - head) :]


def tick_labels(names: Sequence[str], max_len: int) -> list[str]:
    """Axis labels of at most ``max_len`` characters that stay distinguishable: what all names share at the start
    and end is cut first ("…"), the part that differs is kept; the full names are in the hover."""
    names = list(names)
    if all(len(n) <= max_len for n in names):
        return names
    if len(names) < 2:
        return [tick_label(n, max_len) for n in names]
    shortest = min(len(n) for n in names)
    p = len(os.path.commonprefix(names))  # noqa: RUF071 - a prefix of characters is what is wanted
    sfx = len(os.path.commonprefix([n[::-1] for n in names]))  # noqa: RUF071
    p = min(p, shortest)
    sfx = min(sfx, shortest - p)
    out = []
    for n in names:
        if len(n) <= max_len:
            out.append(n)
            continue
        core = n[p : len(n) - sfx]
        budget = max_len - (1 if p else 0) - (1 if sfx else 0)
        if len(core) >= budget:
            out.append(("…" if p else "") + tick_label(core, budget) + ("…" if sfx else ""))
            continue
        extra = budget - len(core)
        left = min(p, (extra + 1) // 2 if sfx else extra)
        right = min(sfx, extra - left)
        left = min(p, extra - right)
        head = ("…" if left < p else "") + n[p - left : p]
        tail = n[len(n) - sfx : len(n) - sfx + right] + ("…" if right < sfx else "")
        out.append(head + core + tail)
    return out


def tick_style(n: int) -> tuple[int, int]:
    """(font size, longest label) for n models on an axis: smaller and shorter as n grows; hover has the full name."""
    if n <= 12:
        return 12, 48
    if n <= 20:
        return 11, 40
    if n <= 35:
        return 10, 30
    return 9, 24


_SPACE_OUTSIDE_TAGS = re.compile(r" +(?![^<]*>)")
_TAG = re.compile(r"<[^>]*>")


def wrap(text: str, width: int = 40) -> str:
    """Plotly text does not wrap: break at spaces with <br>. A <br> already in the text is kept; tags
    (<b>, <span style='...'>) are never split and take no width; Plotly carries a style over a line break."""
    out = []
    for paragraph in text.split("<br>"):
        lines, line = [], ""
        for w in _SPACE_OUTSIDE_TAGS.split(paragraph.strip()):
            if line and len(_TAG.sub("", line)) + 1 + len(_TAG.sub("", w)) > width:
                lines.append(line)
                line = w
            else:
                line = f"{line} {w}" if line else w
        lines.append(line)
        out.append("<br>".join(lines))
    return "<br>".join(out)


TITLE_CHARS = 40  # a title line fits a phone's width (about 370 px at 16 px) ...
SUBTITLE_CHARS = 58  # ... and so does a subtitle line, in <sup>
MARGIN = dict(l=8, r=8, t=8, b=8)  # grown by automargin to what the labels need, no more


def title(text: str, subtitle: str = "", above: int = 0) -> dict[str, object]:
    """A title that fits 400 px and reads at 1600 px: wrapped lines, left-aligned, above the plot area (automargin
    reserves the room; ``above``: pixels kept free under it, e.g. for the top subplot's title). ``text`` and
    ``subtitle`` are wrapped at spaces (a <br> in them is kept)."""
    lines = wrap(text, TITLE_CHARS)
    if subtitle:
        lines += "".join(f"<br><sup>{line}</sup>" for line in wrap(subtitle, SUBTITLE_CHARS).split("<br>"))
    return dict(
        text=lines,
        x=0,
        xref="container",
        xanchor="left",
        y=1,
        yref="paper",  # with automargin: the margin grows to the title's height (a "container" title grows upwards)
        yanchor="bottom",
        pad=dict(l=8, t=8, b=8 + above),
        automargin=True,
        font_size=16,
    )


LEGEND_CHARS = 44  # a legend entry's line, with its symbol, fits a phone's width


def legend_below(heading: str = "", **extra: object) -> dict[str, object]:
    """A horizontal legend under the plot, left-aligned, its heading on a line of its own: it wraps into as many
    lines as the width needs and never takes width from the plot (wrap long entries' names with LEGEND_CHARS)."""
    legend = dict(orientation="h", x=0, xanchor="left", xref="container", y=0, yanchor="bottom", yref="container")
    if heading:
        legend["title"] = dict(text=heading, side="top left")
    return legend | extra


def heatmap_side(n: int) -> int:
    """Height in pixels of an N x N heatmap."""
    return max(520, min(1500, 160 + 26 * n))


def diverging_heatmap(
    z: list[list[float | None]],
    labels: Sequence[str],
    text: list[list[str]],
    hover: list[list[str]],
    scale_title: str,
    name: str,
    hover_on_gaps: bool = True,
) -> go.Heatmap:
    """An N x N matrix of scores on the fixed -1..1 diverging scale (red = alike, white = 0), values written in the
    cells of small matrices, one hover text per cell; the σ and the lineage-signal heatmaps share it."""
    n = len(labels)
    gap = 1 if n <= 30 else 0
    return go.Heatmap(
        z=z,
        x=labels,
        y=labels,
        zmin=-1.0,
        zmax=1.0,
        zmid=0.0,
        colorscale=COLORSCALE,
        customdata=hover,
        hovertemplate="%{customdata}<extra></extra>",
        hoverongaps=hover_on_gaps,
        text=text,
        texttemplate="%{text}" if n <= CELL_TEXT_MAX else None,
        xgap=gap,
        ygap=gap,
        colorbar=dict(title=dict(text=scale_title, side="right"), tickvals=[-1, -0.5, 0, 0.5, 1]),
        name=name,
    )


def square_matrix_axes(fig: go.Figure, labels: Sequence[str]) -> None:
    """The axes of an N x N model matrix: the same names on both, the first row on top, square cells, and the
    labels kept next to the cells however the window's width shrinks the square."""
    tick_font, max_len = tick_style(len(labels))
    ticks = dict(tickmode="array", tickvals=list(labels), ticktext=tick_labels(labels, max_len))
    axis = dict(automargin=True, constrain="domain", showgrid=False, zeroline=False, tickfont_size=tick_font, **ticks)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", **axis)
    fig.update_xaxes(tickangle=-35 if len(labels) <= 20 else -60, **axis)

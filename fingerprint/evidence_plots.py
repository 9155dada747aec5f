"""Figures and words for the lineage evidence: one pair's signals against the unrelated background, the
layer-by-layer alignment, the MoE panel, a heatmap of any signal over many models, and the stress test.

Only plotly and numpy here (never streamlit): the dashboard shows these figures and the HTML report embeds
the same ones. Every function takes the calibration as an argument (default: the shipped one); an empty
calibration draws no background and says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .lineage import calibration as calibration_mod
from .lineage.calibration import Calibration
from .lineage.signals import SIGNAL_LABELS, SIGNAL_ORDER, SIGNAL_READS
from .lineage.verdict import Verdict
from .plots import CELL_TEXT_MAX, COLORSCALE, cluster_order, tick_labels, tick_style

SHORT_SIGNAL = {
    "elementwise": "Element-wise",
    "awm": "AWM (Q/K aligned)",
    "vectors": "Norms & biases",
    "depth": "Layer alignment",
    "moe": "MoE experts",
    "sigma": "σ-curves",
}
WHAT_SIGNAL = {  # what the number is, in a few words (the axis sub-label)
    "elementwise": "Pearson r of weights at identical positions",
    "awm": "unbiased CKA of Q/K after aligning hidden dims",
    "vectors": "centred Pearson r of norm weights & biases",
    "depth": "mean similarity along the best layer alignment",
    "moe": "mean |r| of matched neurons, experts vs dense MLP",
    "sigma": "Pearson r of σ-curves (weakest)",
}
MATRIX_SIGNALS = ("elementwise", "awm", "vectors", "depth")  # what a heatmap over many models can show
BACKGROUND = "rgba(110,110,110,0.55)"
RELATED = "rgba(230,130,30,0.45)"
THIS_PAIR = "#111111"
SURVIVED = "#1b9e77"
BROKE = "#d95f02"
NOT_AVAILABLE = "#e6e6e6"

EVIDENCE_EXPLANATION = (
    "Each row is one lineage signal, computed from a sample of both models' weights. Grey dots: what pairs of "
    "models known to be *unrelated* score on that signal (the calibration); orange circles: pairs known to be "
    "related; the black diamond: this pair. A value far to the right of every grey dot is evidence of shared "
    "weights; a value among the grey dots is not - and is never proof of independence either. The signals are "
    "ordered from the hardest to fake (top) to the weakest (σ-curves, bottom)."
)
UNCALIBRATED_GUIDE = (
    "As a guide, from the demo models: the two independent babyllamas score about 0 element-wise, on norms and on "
    "layer alignment, and well below 0.5 on AWM, yet 0.95 on σ-curves (look-alike training recipes)."
)
EVIDENCE_EXPLANATION_UNCALIBRATED = (
    "Each row is one lineage signal, computed from a sample of both models' weights; the black diamond is this "
    "pair's value. No calibration is installed, so the values of unrelated pairs cannot be drawn behind it. "
    + UNCALIBRATED_GUIDE
    + " The signals are ordered from the hardest to fake (top) to the weakest (σ-curves, bottom)."
)


def evidence_explanation(cal: Calibration | None = None) -> str:
    return EVIDENCE_EXPLANATION if has_calibration(cal) else EVIDENCE_EXPLANATION_UNCALIBRATED


STRESS_EXPLANATION = (
    "The stress test changes a model's weights in ways that keep what it computes - **exact** transformations: "
    "rescaling Q against K, V against O, permuting attention heads or MLP neurons, rotating the residual stream - "
    "or change it only a little - **approximate** ones: quantization, 1% noise. The output change column measures "
    "that: the largest change of any next-token log-probability, in nats, over a few token sequences (about 1e-12 "
    "means the model is the same; an approximate transformation changes it measurably). Each changed model is then "
    "compared with the original, "
    "as if someone had published it as their own. A signal **survived** when it still places the pair clearly "
    "(by at least 0.05) above every unrelated pair, and **broke** when it falls into or just above the unrelated range.\n\n"
    "Why it matters: a signal that breaks under an *exact* transformation can be defeated on purpose, for free. "
    "Whoever copies a model can apply that transformation, and the model works exactly as before while the signal "
    'says "unrelated". A low value on such a signal is therefore never evidence of independence.'
)


def calibration_or_default(cal: Calibration | None) -> Calibration:
    return cal if cal is not None else calibration_mod.load()


def has_calibration(cal: Calibration | None = None) -> bool:
    return bool(calibration_or_default(cal).unrelated)


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _wrap(text: str, width: int = 40) -> str:
    """Plotly text does not wrap: break at spaces with <br>."""
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    if line:
        lines.append(line)
    return "<br>".join(lines)


def _jitter(n: int, spread: float = 0.28) -> list[float]:
    """Deterministic vertical offsets in [-spread, spread] (golden-ratio sequence): dots of equal value stay apart."""
    return [spread * (2 * ((k * 0.6180339887) % 1.0) - 1) for k in range(n)]


def placement_text(place: Mapping | None, *, calibrated: bool) -> str:
    """Where a value falls among unrelated pairs, in words ('' when there is nothing to say)."""
    if not calibrated:
        return "no calibration: cannot be placed"
    if not place:
        return "too few unrelated pairs for this signal"
    n = place.get("n_unrelated", 0)
    if place.get("above_unrelated_max"):
        where = f"above all {n} unrelated pairs"
    else:
        where = f"above {place['percentile']:.0f}% of {n} unrelated pairs"
    if place.get("z") is not None:
        where += f" (z = {place['z']:+.1f})"
    return where


def strength_text(v: Verdict, cal: Calibration | None = None) -> str:
    """What the strength number means for this kind of verdict."""
    if v.verdict == "insufficient_data":
        return "no strength: nothing decisive could be computed"
    if v.verdict == "no_evidence":
        if not has_calibration(cal):
            return f"strength {v.strength:.2f} of 1 - without a calibration this only means: undecided"
        return (
            f"strength {v.strength:.2f} of 1: how unlike the known related pairs this pair scores "
            "(1 = below every one of them)"
        )
    if v.verdict == "same_weights":
        return f"strength {v.strength:.2f} of 1: the weights are equal up to 16-bit rounding"
    if not has_calibration(cal):
        return (
            f"strength {v.strength:.2f} of 1, from the rule for near-identical weights alone "
            "(no calibration installed to compare with unrelated pairs)"
        )
    return (
        f"strength {v.strength:.2f} of 1: how unlikely an unrelated pair is to score this high "
        "(limited by how many unrelated pairs the calibration has)"
    )


def verdict_heading(v: Verdict) -> str:
    """The verdict as a sentence about the pair: always 'consistent with', never an accusation."""
    return f"{v.a} and {v.b}: {v.sentence}"


# ---------------------------------------------------------------- one pair: every signal side by side


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
                    y=[y - d for d in _jitter(len(rel), 0.2)],
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
                    y=[y - 0.38, y + 0.38],
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
                        f"<br>reads: {_wrap(SIGNAL_READS[name], 60)}<extra></extra>"
                    ),
                )
            )
            readout = f"<b>{s.value:.3f}</b>" + (
                f"<br><span style='color:#555'>{_wrap(where, 36)}</span>" if calibrated else ""
            )
        else:
            reason = s.reason or "unknown"
            reason = reason if len(reason) <= 80 else reason[:78].rsplit(" ", 1)[0] + " …"
            readout = f"<span style='color:#999'>not available:<br>{_wrap(reason, 36)}</span>"
            fig.add_hrect(y0=y - 0.45, y1=y + 0.45, fillcolor="#f2f2f2", line_width=0, layer="below")
        fig.add_annotation(
            x=1.01,
            xref="paper",
            y=y,
            yref="y",
            text=readout,
            showarrow=False,
            xanchor="left",
            align="left",
            font=dict(size=12),
        )
    ticks = [
        f"<b>{SHORT_SIGNAL[n]}</b><br><span style='font-size:10px;color:#666'>{WHAT_SIGNAL[n]}</span>" for n in names
    ]
    fig.update_yaxes(
        tickmode="array",
        tickvals=ys,
        ticktext=ticks,
        autorange="reversed",
        range=None,
        showgrid=False,
        zeroline=False,
        automargin=True,
    )
    fig.update_xaxes(
        range=[max(-1.05, lo), 1.08],
        zeroline=True,
        zerolinecolor="#ccc",
        gridcolor="#eee",
        title_text="value of the signal (a correlation or similarity: 1 = identical weights)",
        title_font_size=11,
    )
    sub = (
        ""
        if calibrated
        else "<br><sup>no calibration: the values of unrelated pairs cannot be drawn behind this pair's</sup>"
    )
    fig.update_layout(
        title=dict(text=f"Lineage evidence: {v.a} vs {v.b}{sub}", x=0.01, xanchor="left", xref="container"),
        height=180 + 92 * len(names),
        margin=dict(r=270, t=120),
        plot_bgcolor="white",
        showlegend=True,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, xanchor="left", font_size=11),
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
            colorbar=dict(title=dict(text="similarity", side="right"), tickvals=[-1, -0.5, 0, 0.5, 1]),
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
        title_text=f"layer of {v.a}",
        range=[na - 0.5, -0.5],
        dtick=1 if na <= 40 else None,
        scaleanchor="x",
        constrain="domain",
        showgrid=False,
        zeroline=False,
    )
    fig.update_xaxes(
        title_text=f"layer of {v.b}",
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
        title=(
            f"Layer-by-layer similarity ({what})<br><sup>line: the best order-keeping alignment of layers; "
            f"mean similarity along it: {mean}{diag_text}</sup>"
        ),
        height=max(480, min(900, 200 + 34 * na)),
        plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"),
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
            annotation_text=f"threshold {t:.2f} (clearly above every unrelated pair)",
        )
    fig.update_yaxes(range=[0, 1.1], title_text="mean |r| of matched neurons")
    fig.update_layout(
        title=(
            f"MoE experts vs dense MLP: {s.detail.get('moe_model')} against {s.detail.get('dense_model')}"
            f"<br><sup>each expert's gate/up neurons matched to the dense model's; median over experts: "
            f"{_fmt(s.value)}</sup>"
        ),
        height=380,
        showlegend=False,
    )
    return fig


def signal_rows(v: Verdict, cal: Calibration | None = None) -> list[dict]:
    """The evidence as a table: one row per signal, every number named."""
    calibrated = has_calibration(cal)
    rows = []
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


# ---------------------------------------------------------------- many models: a heatmap of one signal


def find_verdict(verdicts: Mapping[tuple[str, str], Verdict], a: str, b: str) -> Verdict | None:
    return verdicts.get((a, b)) or verdicts.get((b, a))


def missing_pairs(
    keys: Sequence[str], verdicts: Mapping[tuple[str, str], Verdict], skip: set | frozenset = frozenset()
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
    idx = cluster_order(matrix)[0] if order == "clustered" else list(range(n))
    labels = [names[i] for i in idx]
    z, text, hover = [], [], []
    for i in idx:
        zr, tr, hr = [], [], []
        for j in idx:
            x = matrix[i, j]
            ok = bool(np.isfinite(x))
            zr.append(float(x) if ok else None)
            tr.append(f"{x:.2f}" if ok else "n/a")
            h = f"<b>{names[i]}</b><br>vs <b>{names[j]}</b><br>{SIGNAL_LABELS[signal]}: {_fmt(x if ok else None)}"
            if i != j and ok:
                p = cal.place(signal, float(x))
                h += "<br>" + placement_text(p.to_json() if p else None, calibrated=calibrated)
            if notes[i][j]:
                h += "<br>" + _wrap(notes[i][j], 50)
            hr.append(h)
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    tick_font, max_len = tick_style(n)
    ticks = dict(tickmode="array", tickvals=labels, ticktext=tick_labels(labels, max_len))
    gap = 1 if n <= 30 else 0
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            zmin=-1.0,
            zmax=1.0,
            zmid=0.0,
            colorscale=COLORSCALE,
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            hoverongaps=False,
            text=text,
            texttemplate="%{text}" if n <= CELL_TEXT_MAX else None,
            xgap=gap,
            ygap=gap,
            colorbar=dict(title=dict(text=SHORT_SIGNAL[signal], side="right"), tickvals=[-1, -0.5, 0, 0.5, 1]),
            name=signal,
        )
    )
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
    side = max(420, min(1500, 160 + 26 * n))
    t = cal.threshold(signal)
    bg = (
        f"values above {t:.2f} are clearly above every unrelated pair"
        if t is not None
        else "no calibration: compare the cells with each other, not with a threshold"
    )
    fig.update_yaxes(
        autorange="reversed",
        tickfont_size=tick_font,
        automargin=True,
        scaleanchor="x",
        constrain="domain",
        showgrid=False,
        zeroline=False,
        **ticks,
    )
    fig.update_xaxes(
        tickfont_size=tick_font,
        tickangle=-35 if n <= 20 else -60,
        automargin=True,
        showgrid=False,
        zeroline=False,
        **ticks,
    )
    fig.update_layout(
        height=side,
        plot_bgcolor="white",
        title=(
            f"{SHORT_SIGNAL[signal]}: {WHAT_SIGNAL[signal]}"
            f"<br><sup>{bg}. Grey cell: not available (hover says why).</sup>"
        ),
    )
    return fig


# ---------------------------------------------------------------- the stress test


def _change_text(x: float) -> str:
    return f"{x:.1e}" if x < 1e-3 else f"{x:.3f}"


def stress_verdict_text(verdict: str, cal: Calibration | None = None) -> str:
    """The verdict of a changed model against its original. Without a calibration only identical weights can be
    recognised, so 'no evidence' there says nothing: it is shown as 'no verdict'."""
    from .lineage.verdict import VERDICTS

    if verdict == "no_evidence" and not has_calibration(cal):
        return "no verdict: needs the calibration"
    return VERDICTS.get(verdict, verdict)


def stress_rows(report, cal: Calibration | None = None) -> list[dict]:
    """One row per transformation: exact or not, the measured output change, the verdict, every signal's value."""
    rows = []
    for r in report.rows:
        row = {
            "transformation": r.label,
            "kind": "exact" if r.exact else "approximate",
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


def stress_figure(report, cal: Calibration | None = None) -> go.Figure:
    """Rows: transformations (exact or approximate, output change); columns: signals; a cell is the signal's value,
    coloured survived / broke / not available - or, without a calibration, by value on the -1..1 scale."""
    cal = calibration_or_default(cal)
    signals = [n for n in SIGNAL_ORDER if any(n in r.signals for r in report.rows)]
    judged = any(v is not None for r in report.rows for v in r.survived.values())
    xs = [SHORT_SIGNAL[n].replace(" (", "<br>(").replace(" & ", " &<br>") for n in signals]
    ys = list(range(len(report.rows)))
    z, text, hover = [], [], []
    for r in report.rows:
        zr, tr, hr = [], [], []
        for n in signals:
            s = r.signals.get(n)
            ok = s is not None and s.available and s.value is not None
            state = r.survived.get(n)
            if judged:
                zr.append(None if state is None else (1.0 if state else 0.0))
            else:
                zr.append(float(s.value) if ok else None)
            word = (
                ("survived: still clearly above every unrelated pair" if state else "broke: in the unrelated range")
                if state is not None
                else ("not judged: no calibration" if ok else "not available")
            )
            tr.append(f"{s.value:.2f}" if ok else "n/a")
            why = "" if ok or s is None else f"<br>{_wrap(s.reason or '', 50)}"
            hr.append(
                f"<b>{r.label}</b> ({'exact' if r.exact else 'approximate'})<br>{SIGNAL_LABELS[n]}: "
                f"{_fmt(s.value if ok else None)}<br>{word}{why}"
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
            textfont=dict(size=13),
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
        f"{'exact' if r.exact else 'approximate'} · output change {_change_text(r.output_change)} nats</span>"
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
    fig.update_xaxes(side="top", showgrid=False, zeroline=False, tickfont_size=12, tickangle=0)
    for y, r in zip(ys, report.rows, strict=True):
        fig.add_annotation(
            x=1.01,
            xref="paper",
            y=y,
            yref="y",
            xanchor="left",
            showarrow=False,
            align="left",
            text=_wrap(stress_verdict_text(r.verdict, cal), 34),
            font=dict(size=11),
        )
    fig.add_annotation(
        x=1.01,
        xref="paper",
        y=1.0,
        yref="paper",
        yanchor="bottom",
        xanchor="left",
        showarrow=False,
        text="<b>verdict, changed vs original</b>",
        font=dict(size=11),
    )
    sub = (
        "colour: did the signal still see the copy?"
        if judged
        else "no calibration: cells coloured by value on the -1..1 scale (red = alike, white = nothing in common)"
    )
    fig.update_layout(
        title=dict(text=f"Stress test of {report.model}<br><sup>{sub}</sup>", x=0, xanchor="left", xref="paper"),
        height=200 + 58 * len(report.rows),
        margin=dict(r=260, t=130),
        plot_bgcolor=NOT_AVAILABLE,
        legend=dict(orientation="h", yanchor="top", y=-0.04, x=0),
    )
    return fig

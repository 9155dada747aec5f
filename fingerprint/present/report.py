"""The HTML report: one self-contained page (plotly.js inlined, works offline) with the charts, the model table,
every pair with its caveats, and the lineage evidence and stress test when they were computed.

Built from small functions, one per section; every text from the data goes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from .. import __version__
from ..compare import PairComparison, pair_matrix
from ..result import Fingerprint
from .evidence_figures import depth_figure, evidence_figure, moe_figure
from .evidence_words import evidence_explanation, strength_text
from .formatting import human_bytes, number_or_na
from .labels import display_names, hub_commit_url, public_reference, role_label, score_label, short_role
from .sigma_figures import curves_figure, heatmap_figure
from .sigma_words import pair_caveats
from .stress_figure import stress_figure
from .tables import PAIR_INTERVAL, pairs_rows, stress_rows
from .texts import GLOSSARY, PAPER_STATUS, PAPER_URL, SIGMA_CAVEAT_WITH_EXAMPLES, STRESS_EXPLANATION, WHAT_IS_R, plain

if TYPE_CHECKING:
    from ..lineage.stress import StressReport
    from ..lineage.verdict import Verdict

TITLE = "LLM σ-curve fingerprint report"
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.9em;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.caveat{background:#fff4e5;border-left:4px solid #f0a020;padding:0.8em 1em;margin:1em 0}
.small{color:#666;font-size:0.85em}
"""


def html_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table whose cells are already HTML (escape the text before)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_items(title: str, items: Sequence[str]) -> str:
    """A titled list of plain texts (escaped here); '' when there is none."""
    return f"<p><b>{title}</b></p><ul>" + "".join(f"<li>{escape(x)}</li>" for x in items) + "</ul>" if items else ""


def figure_html(fig: go.Figure, *, with_plotlyjs: bool = False) -> str:
    """A figure as a fragment of the page; plotly.js itself only ``with_plotlyjs`` (once per page, inlined)."""
    html: str = fig.to_html(include_plotlyjs=with_plotlyjs, full_html=False)
    return html


def html_report(
    fps: Sequence[Fingerprint],
    role: str = "mean",
    order: str = "clustered",
    names: Sequence[str] | None = None,
    failures: Sequence[str] = (),
    max_pairs: int = 200,
    verdicts: Sequence[Verdict] = (),
    stress: StressReport | None = None,
    max_evidence_figures: int = 24,
    local_paths: bool = False,
) -> str:
    """The whole page: charts, model table, pairs, caveats; the lineage evidence of the pairs that have a verdict
    (its text, the evidence panel and the layer alignment) and the stress test when one was run. Local models are
    named by file or folder name (or ``demo:<name>``) unless ``local_paths``."""
    names = list(names) if names is not None else display_names(fps)
    pairs = pair_matrix(fps)
    sections = [
        _heading(len(fps)),
        _models_section(fps, names, failures, local_paths),
        f"<h2>Correlation matrix: {escape(score_label(role))}</h2>",
        figure_html(heatmap_figure(fps, role, order, names, pairs), with_plotlyjs=True),
        _pairs_section(fps, names, pairs, max_pairs),
        "<h2>σ-curves</h2>",
        figure_html(curves_figure(fps, normalise=True, names=names)),
        figure_html(curves_figure(fps, normalise=False, names=names)),
        lineage_section(verdicts, stress, max_evidence_figures),
        html_items("What the words mean", [f"{t}: {m}." for t, m in GLOSSARY.items()]),
        f"<p class='small'>Role: {escape(role_label(role))}. Order: {escape(order)}. The fingerprints (with provenance) are in "
        "the JSON export of the same session.</p>",
    ]
    return html_page(TITLE, sections)


def html_page(title: str, sections: Iterable[str]) -> str:
    """A whole page: the title (plain text), the report's style, the sections (HTML) that are not empty."""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{CSS}</style></head>"
        "<body>\n" + "\n".join(s for s in sections if s) + "\n</body></html>"
    )


def generated_text() -> str:
    """When and by what a page was made, e.g. 'Generated 2026-05-01 12:00 UTC by llm-fingerprint 0.9.'"""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Generated {when} by llm-fingerprint {__version__}."


def _heading(n_models: int) -> str:
    return (
        f"<h1>{TITLE}</h1>\n"
        f"<p class='small'>{escape(generated_text())} {n_models} models. "
        f"Method: HonestAGI, <a href='{PAPER_URL}'>arXiv 2507.03014</a> ({escape(PAPER_STATUS)})</p>\n"
        f"<p>{escape(WHAT_IS_R)}</p>\n"
        f"<div class='caveat'><b>What this can and cannot show.</b> {escape(SIGMA_CAVEAT_WITH_EXAMPLES)}</div>"
    )


def _revision_cell(fp: Fingerprint) -> str:
    url = hub_commit_url(fp)
    rev = escape(fp.short_revision)
    if url:
        return f"<a href='{escape(url)}'>{rev}</a>"
    return ("sha256:" if fp.source == "local" else "") + rev


def _models_section(
    fps: Sequence[Fingerprint], names: Sequence[str], failures: Sequence[str], local_paths: bool = False
) -> str:
    header = ["name", "reference", "architecture", "layers", "format", "mode", "revision", "bytes read", "notes"]
    rows = [
        [
            escape(name),
            escape(public_reference(fp, local_paths)),
            escape(fp.architecture or ""),
            str(fp.layers),
            escape(fp.format),
            escape(fp.mode),
            _revision_cell(fp),
            f"{escape(human_bytes(fp.bytes_read))} of {escape(human_bytes(fp.bytes_total))}",
            escape("; ".join(fp.notes)),
        ]
        for fp, name in zip(fps, names, strict=True)
    ]
    out = "<h2>Models</h2>" + html_table(header, rows)
    if failures:
        out += "<h3>Models that could not be fingerprinted</h3><ul>" + "".join(
            f"<li>{escape(f)}</li>" for f in failures
        )
        out += "</ul>"
    return out


def _pairs_section(
    fps: Sequence[Fingerprint], names: Sequence[str], pairs: Sequence[Sequence[PairComparison]], max_pairs: int
) -> str:
    rows = pairs_rows(fps, names, pairs)
    out = "<h2>Pairs, highest first</h2>"
    if len(rows) > max_pairs:
        out += f"<p class='small'>The {max_pairs} highest of {len(rows)} pairs; the CSV export has all.</p>"
    index = {n: i for i, n in enumerate(names)}
    cells = []
    for row in rows[:max_pairs]:
        i, j = index[str(row["model A"])], index[str(row["model B"])]
        c = pairs[i][j]
        per_role = ", ".join(f"{short_role(r)} {number_or_na(v)}" for r, v in c.per_role.items())
        caveats = pair_caveats(fps[i], fps[j], c, names[i], names[j])[:-1]  # the general caveat is at the top
        cells.append(
            [
                escape(names[i]),
                escape(names[j]),
                number_or_na(c.score),
                escape(str(row[PAIR_INTERVAL])),
                escape(str(row["strength"])),
                escape(per_role),
                escape(str(row["layers"])),
                "<br>".join(escape(x) for x in caveats),
            ]
        )
    header = [
        "model A",
        "model B",
        "r (mean over projections)",
        PAIR_INTERVAL,
        "strength",
        "per role",
        "layers",
        "caveats",
    ]
    return out + html_table(header, cells)


def lineage_section(verdicts: Sequence[Verdict], stress: StressReport | None, max_figures: int = 24) -> str:
    """The report's lineage part: per verdict its sentence, strength, reasons, what was not checked, caveats and
    figures (the first ``max_figures`` verdicts); the stress test's figure and table. '' when there is neither."""
    parts = []
    if verdicts:
        parts.append(f"<h2>Lineage evidence</h2><p>{escape(plain(evidence_explanation()))}</p>")
        if len(verdicts) > max_figures:
            parts.append(
                f"<p class='small'>Figures for the first {max_figures} of {len(verdicts)} pairs; the text "
                "of every pair follows, and the lineage JSON export has every number.</p>"
            )
    parts += [verdict_section(v, with_figures=k < max_figures) for k, v in enumerate(verdicts)]
    if stress is not None and stress.rows:
        parts.append(_stress_section(stress))
    return "\n".join(parts)


def verdict_section(v: Verdict, *, with_figures: bool) -> str:
    """One pair's verdict: its sentence, how strong, why, what could not be checked, its caveats, and (when
    ``with_figures``) the evidence panel, the layer alignment and the MoE figure it has."""
    parts = [
        f"<h3>{escape(v.a)} vs {escape(v.b)}: {escape(v.sentence)}</h3>",
        f"<p class='small'>{escape(strength_text(v))}</p>",
        html_items("Why:", v.because),
        html_items("Could not be checked:", v.not_checked),
        "<div class='caveat'><b>Caveats.</b><ul>" + "".join(f"<li>{escape(c)}</li>" for c in v.caveats) + "</ul></div>",
    ]
    if with_figures:
        parts += [figure_html(fig) for fig in (evidence_figure(v), depth_figure(v), moe_figure(v)) if fig is not None]
    return "\n".join(p for p in parts if p)


def _stress_cell(column: str, x: object) -> str:
    if isinstance(x, float):
        x = f"{x:.2e}" if column == "output change (nats)" else f"{x:.3f}"
    return escape("n/a" if x is None else str(x))


def _stress_section(stress: StressReport) -> str:
    rows = stress_rows(stress)
    parts = [f"<h2>Stress test of {escape(stress.model)}</h2>"]
    parts += [f"<p>{escape(plain(p))}</p>" for p in STRESS_EXPLANATION.split("\n\n")]
    parts.append(figure_html(stress_figure(stress)))
    parts.append(html_table([escape(h) for h in rows[0]], [[_stress_cell(h, x) for h, x in r.items()] for r in rows]))
    parts += [f"<p class='small'>{escape(n)}</p>" for n in stress.notes]
    return "\n".join(parts)

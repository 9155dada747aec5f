"""A library scan as one self-contained HTML page (Find the base's "Download as HTML", ``scan --html``): the model
and the revision read, the library, the closest known base and the declared base, the candidates' table, what was
set aside, then each candidate's verdict with its evidence - the same section as the HTML report's lineage part,
with plotly.js inlined once so the page works offline.

Every text from the data goes through ``html.escape``; the library's folder is named only when asked (never on a
shared server: it is where the server keeps its files)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import PurePath

from plotly.offline import get_plotlyjs

from ..library.scan import ScanResult
from .evidence_words import evidence_explanation
from .report import generated_text, html_items, html_page, html_table, verdict_section
from .scan_words import (
    FACTS_AGREE,
    closest_text,
    declared_text,
    revision_text,
    scan_rows,
    set_aside_text,
    with_evidence,
)
from .texts import GLOSSARY, SIGMA_CAVEAT, VERDICT_NOT_PROOF, plain


def scan_html(result: ScanResult, *, library_path: bool = False, max_figures: int = 5) -> str:
    """The whole page. ``library_path``: name the library by its folder's path (else by the folder's name);
    ``max_figures``: the candidates whose figures are drawn (the strongest first; the text of every one follows)."""
    public = _public_text(result, library_path)
    return html_page(
        f"Find the base: {result.model}",
        [
            _heading(result, library_path),
            f"<div class='caveat'><b>What this can and cannot show.</b> {escape(VERDICT_NOT_PROOF)} "
            f"{escape(SIGMA_CAVEAT)}</div>",
            _answer(result, public),
            _candidates(result, public),
            _evidence(result, max_figures),
            html_items("What the words mean", [f"{t}: {m}." for t, m in GLOSSARY.items()]),
        ],
    )


def _public_text(result: ScanResult, library_path: bool) -> Callable[[str], str]:
    """A text from the scan (an error may quote a file of the library) with the library's path replaced by its
    folder's name unless ``library_path``."""
    folder = result.library
    name = PurePath(folder).name

    def public(text: str) -> str:
        return text if library_path or not folder else text.replace(folder, name)

    return public


def _heading(result: ScanResult, library_path: bool) -> str:
    library = result.library if library_path else PurePath(result.library).name
    weighed, aside = len(result.matches), len(result.set_aside)
    return (
        f"<h1>Find the base: {escape(result.model)}</h1>\n"
        f"<p>Revision: {escape(revision_text(result.revision))}. Compared with the reference library "
        f"<code>{escape(library)}</code> of {result.library_size} known models: {weighed} weighed, {aside} set "
        "aside by their facts.</p>\n"
        f"<p class='small'>{escape(generated_text())}</p>"
    )


def _answer(result: ScanResult, public: Callable[[str], str]) -> str:
    parts = [
        f"<h2>{escape(closest_text(result))}</h2>",
        f"<p><b>Declared base:</b> {escape(public(declared_text(result.declared)))}</p>",
    ]
    if result.itself:
        mine = ", ".join(e.model for e in result.itself)
        parts.append(
            f"<p class='small'>This exact model is in the library ({escape(mine)}); it was not compared with "
            "itself.</p>"
        )
    if result.cancelled:
        parts.append("<div class='caveat'>Cancelled: only the candidates weighed before are shown.</div>")
    return "\n".join(parts)


def _candidates(result: ScanResult, public: Callable[[str], str]) -> str:
    rows = scan_rows(result)
    if not rows:
        return "<h2>Candidates</h2><p>No library entry was weighed.</p>"
    out = "<h2>Candidates, the closest first</h2>" + html_table(
        [escape(h) for h in rows[0]], [[escape(public(c)) for c in row.values()] for row in rows]
    )
    more = len(result.matches) - len(rows)
    if more > 0:
        out += f"<p class='small'>{more} more weighed, none of them closer (the JSON export has them).</p>"
    out += f"<p class='small'>{escape(FACTS_AGREE)}</p>"
    if aside := set_aside_text(result):
        out += f"<p class='small'>{escape(aside)}</p>"
    return out


def _evidence(result: ScanResult, max_figures: int) -> str:
    shown = [m.verdict for m in with_evidence(result) if m.verdict is not None]
    if not shown:
        return ""
    parts = [
        "<h2>The evidence, candidate by candidate</h2>",
        f"<p>{escape(plain(evidence_explanation()))}</p>",
    ]
    if len(shown) > max_figures:
        parts.append(
            f"<p class='small'>Figures for the first {max_figures} of {len(shown)} candidates; the text of every "
            "one follows.</p>"
        )
    if max_figures > 0:
        parts.append(f"<script type='text/javascript'>{get_plotlyjs()}</script>")  # once, for every figure below
    parts += [verdict_section(v, with_figures=k < max_figures) for k, v in enumerate(shown)]
    return "\n".join(parts)

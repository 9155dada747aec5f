"""Exports (CSV, JSON, a self-contained HTML report, share links, static images) and the words that go with
the numbers.

Every builder returns a str (or bytes for images); nothing here imports streamlit. Never includes a token:
fingerprints carry none.

Share links (the dashboard's URL query parameters; the page is the URL path, e.g. ``/compare``):
  models  comma-separated references: Hub models pinned as ``repo@<40-hex commit>`` (with ``/file.gguf``
          when one file of the repository was chosen), demo models as ``demo:<name>``; other local paths
          are left out (they mean nothing on another machine)
  role    ``mean`` (the score) or a role: q, k, v, o, qkv, ...
  order   ``clustered`` or ``input``
  view    ``normalised`` or ``raw`` (the σ-curves)
  pair    ``i,j``: 0-based positions in ``models`` of the pair view's two models (optional)
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from . import __version__
from .compare import PairComparison
from .demo import demo_reference
from .plots import (
    cluster_order,
    curves_figure,
    display_names,
    heatmap_figure,
    matrix_from_pairs,
    pair_matrix,
    role_label,
    score_label,
    short_role,
)
from .result import Fingerprint

PAPER_URL = "https://arxiv.org/abs/2507.03014"
CRITIQUE_URL = "https://www.zhihu.com/question/1924254207063593527/answer/1924429291443164725"  # in Chinese: deepseek-llm-7b vs Llama-2-7b = 0.91

GENERAL_CAVEAT = (
    "A high σ-curve correlation is consistent with shared lineage, but it is not proof: models trained "
    "independently with look-alike recipes also correlate highly (the two independent tiny babyllama models "
    "shipped with this tool score 0.95; Llama-2-7B and deepseek-llm-7b score about 0.91)."
)

WHAT_IS_R = (
    "Each number is a Pearson correlation r between two models' σ-curves (per layer, the standard deviation of "
    "an attention weight matrix), averaged over the projections both models have (Q, K, V, O). r = 1: the curves "
    "have the same shape; 0: no relation; -1: opposite shapes. Scale does not matter, only the shape over depth."
)


def strength(r: float | None) -> str:
    """How strong a σ-curve correlation is, in words, with the calibration a reader needs."""
    if r is None or not math.isfinite(r):
        return "undefined (a flat curve, or fewer than 3 layers)"
    if r >= 0.99:
        return "near-identical shape: what a copy or a quantized copy gives"
    if r >= 0.9:
        return "very high: yet independent look-alike models reach this too"
    if r >= 0.7:
        return "high: similar shape over depth"
    if r >= 0.4:
        return "moderate"
    if r > -0.4:
        return "weak or none"
    return "negative: opposite shapes"


def _max_rel_err(fp: Fingerprint) -> float:
    worst = 0.0
    for role, s in fp.stats.items():
        for sd, err in zip(fp.curves.get(role, []), s.get("std_err", []), strict=False):
            if sd and err and math.isfinite(sd) and math.isfinite(err) and sd > 0:
                worst = max(worst, err / sd)
    return worst


def _family(arch: str) -> str:
    """'LlamaForCausalLM' (config.json) and 'llama' (GGUF) name the same architecture."""
    a = arch.lower()
    for suffix in ("forcausallm", "forconditionalgeneration", "lmheadmodel", "model"):
        a = a.removesuffix(suffix)
    return a.replace("_", "").replace("-", "")


def pair_caveats(fa: Fingerprint, fb: Fingerprint, pair: PairComparison, name_a: str, name_b: str) -> list[str]:
    """What a reader must know before trusting this pair's number."""
    out = []
    if fa.revision == fb.revision and fa.format == fb.format:
        out.append("Both entries are the very same files (same revision): r = 1 says nothing about lineage.")
    if pair.resampled:
        out.append(
            f"Different depths ({pair.layers_a} vs {pair.layers_b} layers): the shorter curve was linearly "
            "stretched onto the longer one before correlating; layer i of one model is not layer i of the other."
        )
    for fp, name in ((fa, name_a), (fb, name_b)):
        if fp.format == "gguf":
            out.append(
                f"{name} is a GGUF file (quantized weights, format gguf): rounding shifts each σ slightly; "
                "a quantized copy of a model still correlates about 1 with the original."
            )
        if fp.mode == "sampled":
            out.append(
                f"{name} was fingerprinted in sampled mode (a few row blocks per tensor): each σ has a standard "
                f"error, at most {100 * _max_rel_err(fp):.2f}% of its value here."
            )
    if fa.architecture and fb.architecture and _family(fa.architecture) != _family(fb.architecture):
        out.append(
            f"Different architectures ({fa.architecture} vs {fb.architecture}): only the roles both have are compared."
        )
    if pair.score is None:
        out.append("No score: the two models share no projection curve that can be correlated.")
    elif set(pair.score_roles) != {"q", "k", "v", "o"}:
        out.append("The score averages over " + ", ".join(short_role(r) for r in pair.score_roles) + " only.")
    for fp, name in ((fa, name_a), (fb, name_b)):
        for note in fp.notes:
            out.append(f"{name}: {note}.")
    out.append(GENERAL_CAVEAT)
    return out


def pairs_rows(
    fps: Sequence[Fingerprint],
    names: Sequence[str] | None = None,
    pairs: list[list[PairComparison]] | None = None,
) -> list[dict]:
    """One row per unordered pair of different models, highest score first."""
    names = list(names) if names is not None else display_names(fps)
    pairs = pairs if pairs is not None else pair_matrix(fps)
    rows = []
    for i in range(len(fps)):
        for j in range(i + 1, len(fps)):
            c = pairs[i][j]
            row = {
                "model A": names[i],
                "model B": names[j],
                "r (mean over projections)": c.score,
                "strength": strength(c.score),
                "layers": f"{c.layers_a} / {c.layers_b}",
                "depths resampled": "yes" if c.resampled else "no",
            }
            for role, v in c.per_role.items():
                row[f"r {short_role(role)}"] = v
            rows.append(row)
    rows.sort(
        key=lambda r: -math.inf if r["r (mean over projections)"] is None else r["r (mean over projections)"],
        reverse=True,
    )
    return rows


def ordered(fps: Sequence[Fingerprint], role: str, order: str, pairs=None) -> list[int]:
    """The model order the heatmap uses (clustered or input order)."""
    if order != "clustered":
        return list(range(len(fps)))
    pairs = pairs if pairs is not None else pair_matrix(fps)
    return cluster_order(matrix_from_pairs(pairs, role))[0]


def matrix_csv(
    fps: Sequence[Fingerprint],
    role: str = "mean",
    order: str = "clustered",
    names: Sequence[str] | None = None,
    pairs=None,
) -> str:
    """The N x N matrix the heatmap shows, in the same order and with the same names; empty cell = undefined."""
    names = list(names) if names is not None else display_names(fps)
    pairs = pairs if pairs is not None else pair_matrix(fps)
    m = matrix_from_pairs(pairs, role)
    idx = ordered(fps, role, order, pairs)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([f"model \\ {score_label(role)}"] + [names[i] for i in idx])
    for i in idx:
        w.writerow([names[i]] + ["" if not math.isfinite(m[i, j]) else f"{m[i, j]:.6f}" for j in idx])
    return buf.getvalue()


def curves_csv(fps: Sequence[Fingerprint], names: Sequence[str] | None = None) -> str:
    """Every σ-curve in long form: one row per model, role and layer."""
    names = list(names) if names is not None else display_names(fps)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["name", "model", "revision", "format", "mode", "role", "layer", "sigma", "sigma_std_err", "mean", "rms"]
    )
    for fp, name in zip(fps, names, strict=True):
        for role, curve in fp.curves.items():
            s = fp.stats.get(role, {})
            for layer, sd in enumerate(curve):

                def cell(key: str, layer: int = layer, s: dict = s) -> str:
                    vals = s.get(key) or []
                    v = vals[layer] if layer < len(vals) else None
                    return "" if v is None or not math.isfinite(v) else repr(float(v))

                w.writerow(
                    [
                        name,
                        fp.model,
                        fp.revision,
                        fp.format,
                        fp.mode,
                        role,
                        layer,
                        "" if sd is None or not math.isfinite(sd) else repr(float(sd)),
                        cell("std_err"),
                        cell("mean"),
                        cell("rms"),
                    ]
                )
    return buf.getvalue()


def fingerprints_json(fps: Sequence[Fingerprint]) -> str:
    """The fingerprints with their provenance: the same JSON array as ``compute --json`` (SCHEMA.md)."""
    return json.dumps([fp.to_json() for fp in fps], indent=1)


def lineage_json(verdicts: Sequence = (), references: Sequence[tuple[str, str]] | None = None, stress=None) -> str:
    """The lineage evidence computed so far: every verdict with all its signals and placements (``Verdict.to_json``),
    the models' shareable references next to the names it uses, and the stress test's table when one was run."""
    from .lineage import calibration

    cal = calibration.load()
    out = []
    for k, v in enumerate(verdicts):
        d = v.to_json()
        if references is not None:
            d = {"reference_a": references[k][0], "reference_b": references[k][1], **d}
        out.append(d)
    payload = {
        "tool": "llm-fingerprint",
        "tool_version": __version__,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "calibration": {
            "unrelated_pairs": max((len(x) for x in cal.unrelated.values()), default=0),
            "related_pairs": max((len(x) for x in cal.related.values()), default=0),
        },
        "verdicts": out,
        "stress_test": stress.to_json() if stress is not None else None,
    }
    return json.dumps(payload, indent=1, ensure_ascii=False)


def hub_commit_url(fp: Fingerprint) -> str | None:
    if fp.source == "hub" and fp.repo_id and len(fp.revision) == 40:
        return f"https://huggingface.co/{fp.repo_id}/commit/{fp.revision}"
    return None


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.9em;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.caveat{background:#fff4e5;border-left:4px solid #f0a020;padding:0.8em 1em;margin:1em 0}
.small{color:#666;font-size:0.85em}
"""


def html_report(
    fps: Sequence[Fingerprint],
    role: str = "mean",
    order: str = "clustered",
    names: Sequence[str] | None = None,
    failures: Sequence[str] = (),
    max_pairs: int = 200,
    verdicts: Sequence = (),
    stress=None,
    max_evidence_figures: int = 24,
) -> str:
    """A self-contained HTML page (plotly.js inlined, works offline): charts, model table, pairs, caveats; the
    lineage evidence of the pairs that have a verdict (its text, the evidence panel and the layer alignment) and the
    stress test when one was run."""
    e = html.escape
    names = list(names) if names is not None else display_names(fps)
    pairs = pair_matrix(fps)
    heat = heatmap_figure(fps, role, order, names, pairs)
    curves_raw = curves_figure(fps, normalise=False, names=names)
    curves_norm = curves_figure(fps, normalise=True, names=names)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>LLM σ-curve fingerprint report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>LLM σ-curve fingerprint report</h1>",
        f"<p class='small'>Generated {e(when)} by llm-fingerprint {e(__version__)}. "
        f"{len(fps)} models. Method: HonestAGI, <a href='{PAPER_URL}'>arXiv 2507.03014</a>.</p>",
        f"<p>{e(WHAT_IS_R)}</p>",
        f"<div class='caveat'><b>What this can and cannot show.</b> {e(GENERAL_CAVEAT)}</div>",
        "<h2>Models</h2><table><tr><th>name</th><th>reference</th><th>architecture</th><th>layers</th>"
        "<th>format</th><th>mode</th><th>revision</th><th>bytes read</th><th>notes</th></tr>",
    ]
    for fp, name in zip(fps, names, strict=True):
        url = hub_commit_url(fp)
        rev = e(fp.short_revision)
        rev_cell = f"<a href='{e(url)}'>{rev}</a>" if url else (("sha256:" if fp.source == "local" else "") + rev)
        parts.append(
            f"<tr><td>{e(name)}</td><td>{e(fp.model)}</td><td>{e(fp.architecture or '')}</td><td>{fp.layers}</td>"
            f"<td>{e(fp.format)}</td><td>{e(fp.mode)}</td><td>{rev_cell}</td>"
            f"<td>{e(human_bytes(fp.bytes_read))} of {e(human_bytes(fp.bytes_total))}</td>"
            f"<td>{e('; '.join(fp.notes))}</td></tr>"
        )
    parts.append("</table>")
    if failures:
        parts.append("<h3>Models that could not be fingerprinted</h3><ul>")
        parts += [f"<li>{e(f)}</li>" for f in failures]
        parts.append("</ul>")
    parts.append(f"<h2>Correlation matrix: {e(score_label(role))}</h2>")
    parts.append(heat.to_html(include_plotlyjs=True, full_html=False))
    rows = pairs_rows(fps, names, pairs)
    parts.append("<h2>Pairs, highest first</h2>")
    if len(rows) > max_pairs:
        parts.append(f"<p class='small'>The {max_pairs} highest of {len(rows)} pairs; the CSV export has all.</p>")
    parts.append(
        "<table><tr><th>model A</th><th>model B</th><th>r (mean over projections)</th><th>strength</th>"
        "<th>per role</th><th>layers</th><th>caveats</th></tr>"
    )
    index = {id(fp): i for i, fp in enumerate(fps)}
    by_name = {n: fps[i] for i, n in enumerate(names)}
    for row in rows[:max_pairs]:
        fa, fb = by_name[row["model A"]], by_name[row["model B"]]
        c = pairs[index[id(fa)]][index[id(fb)]]
        per = ", ".join(f"{short_role(r)} {'n/a' if v is None else f'{v:.3f}'}" for r, v in c.per_role.items())
        cav = pair_caveats(fa, fb, c, row["model A"], row["model B"])[:-1]  # the general caveat is at the top
        score = "n/a" if c.score is None else f"{c.score:.3f}"
        parts.append(
            f"<tr><td>{e(row['model A'])}</td><td>{e(row['model B'])}</td><td>{score}</td><td>{e(row['strength'])}</td>"
            f"<td>{e(per)}</td><td>{e(row['layers'])}</td><td>{'<br>'.join(e(x) for x in cav)}</td></tr>"
        )
    parts.append("</table>")
    parts.append("<h2>σ-curves</h2>")
    parts.append(curves_norm.to_html(include_plotlyjs=False, full_html=False))
    parts.append(curves_raw.to_html(include_plotlyjs=False, full_html=False))
    parts += _lineage_html(verdicts, stress, max_evidence_figures)
    parts.append(
        f"<p class='small'>Role: {e(role_label(role))}. Order: {e(order)}. The fingerprints (with provenance) are in "
        "the JSON export of the same session.</p></body></html>"
    )
    return "\n".join(parts)


def _lineage_html(verdicts: Sequence, stress, max_figures: int) -> list[str]:
    """The report's lineage section: per verdict its sentence, strength, reasons, what was not checked, caveats and
    figures (the first ``max_figures`` verdicts); the stress test's figure and table."""
    from .evidence_plots import (
        STRESS_EXPLANATION,
        depth_figure,
        evidence_explanation,
        evidence_figure,
        moe_figure,
        strength_text,
        stress_figure,
        stress_rows,
    )

    e = html.escape
    if not verdicts and stress is None:
        return []
    parts = []
    if verdicts:
        parts.append("<h2>Lineage evidence</h2>")
        parts.append(f"<p>{e(evidence_explanation().replace('*', ''))}</p>")
        if len(verdicts) > max_figures:
            parts.append(
                f"<p class='small'>Figures for the first {max_figures} of {len(verdicts)} pairs; the text "
                "of every pair follows, and the lineage JSON export has every number.</p>"
            )
    for k, v in enumerate(verdicts):
        parts.append(f"<h3>{e(v.a)} vs {e(v.b)}: {e(v.sentence)}</h3>")
        parts.append(f"<p class='small'>{e(strength_text(v))}</p>")
        if v.because:
            parts.append("<p><b>Why:</b></p><ul>" + "".join(f"<li>{e(b)}</li>" for b in v.because) + "</ul>")
        if v.not_checked:
            parts.append(
                "<p><b>Could not be checked:</b></p><ul>" + "".join(f"<li>{e(n)}</li>" for n in v.not_checked) + "</ul>"
            )
        parts.append(
            "<div class='caveat'><b>Caveats.</b><ul>" + "".join(f"<li>{e(c)}</li>" for c in v.caveats) + "</ul></div>"
        )
        if k < max_figures:
            for fig in (evidence_figure(v), depth_figure(v), moe_figure(v)):
                if fig is not None:
                    parts.append(fig.to_html(include_plotlyjs=False, full_html=False))
    if stress is not None and stress.rows:
        parts.append(f"<h2>Stress test of {e(stress.model)}</h2>")
        parts += [f"<p>{e(p.replace('*', ''))}</p>" for p in STRESS_EXPLANATION.split("\n\n")]
        parts.append(stress_figure(stress).to_html(include_plotlyjs=False, full_html=False))
        rows = stress_rows(stress)
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in rows[0]) + "</tr>")
        for r in rows:
            cells = []
            for h, x in r.items():
                if isinstance(x, float):
                    x = f"{x:.2e}" if h == "output change (nats)" else f"{x:.3f}"
                cells.append(f"<td>{e('n/a' if x is None else str(x))}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
        parts += [f"<p class='small'>{e(n)}</p>" for n in stress.notes]
    return parts


# ---------------------------------------------------------------- share links

LINK_KEYS = ("models", "role", "order", "view", "pair")
ORDERS = ("clustered", "input")
VIEWS = ("normalised", "raw")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def shareable_reference(fp: Fingerprint) -> str | None:
    """The reference a share link carries for this fingerprint, or None for a local file (meaningless elsewhere).

    Hub models are pinned to the commit that was read, so the link reproduces exactly (and answers from the
    cache with no network); a file chosen inside the repository is kept. Demo models become ``demo:<name>``.
    """
    if fp.source == "hub" and fp.repo_id:
        body = fp.model.rsplit("@", 1)[0] if "@" in fp.model else fp.model
        if not body.startswith(fp.repo_id):
            body = fp.repo_id
        return f"{body}@{fp.revision}" if _SHA_RE.match(fp.revision) else body
    return demo_reference(fp.model)


@dataclass
class LinkView:
    """What a share link restores."""

    models: list[str] = field(default_factory=list)
    role: str = "mean"
    order: str = "clustered"
    view: str = "normalised"
    pair: tuple[int, int] | None = None


def link_params(v: LinkView) -> dict[str, str]:
    """The query parameters of a view; ``pair`` only when it names two different listed models."""
    out = {"models": ",".join(v.models), "role": v.role, "order": v.order, "view": v.view}
    if v.pair and v.pair[0] != v.pair[1] and all(0 <= i < len(v.models) for i in v.pair):
        out["pair"] = f"{v.pair[0]},{v.pair[1]}"
    return out


def parse_link(params: Mapping[str, str | list[str]]) -> tuple[LinkView | None, list[str]]:
    """A LinkView from query parameters (None without ``models``) and what in them could not be used."""

    def get(key: str) -> str:
        v = params.get(key, "")
        if isinstance(v, list):
            v = v[-1] if v else ""
        return str(v).strip()

    problems: list[str] = []
    models = list(dict.fromkeys(m.strip() for m in get("models").split(",") if m.strip()))
    if not models:
        return None, problems
    v = LinkView(models=models)
    role = get("role")
    if role:
        if _ROLE_RE.match(role):
            v.role = role
        else:
            problems.append(f"role={role!r} is not a role name: the mean score is shown")
    order = get("order")
    if order:
        if order in ORDERS:
            v.order = order
        else:
            problems.append(f"order={order!r} is not clustered or input: clustered is used")
    view = get("view")
    if view:
        if view in VIEWS:
            v.view = view
        else:
            problems.append(f"view={view!r} is not normalised or raw: normalised is used")
    pair = get("pair")
    if pair:
        try:
            i, j = (int(x) for x in pair.split(","))
            if not (0 <= i < len(models) and 0 <= j < len(models)) or i == j:
                raise ValueError
            v.pair = (i, j)
        except ValueError:
            problems.append(f"pair={pair!r} does not name two of the {len(models)} models: the top pair is shown")
    return v, problems


def link_signature(params: Mapping[str, str | list[str]]) -> tuple:
    """What identifies a link among query parameters (others, e.g. ``embed``, are ignored)."""
    out = []
    for k in LINK_KEYS:
        v = params.get(k)
        if isinstance(v, list):
            v = v[-1] if v else None
        if v not in (None, ""):
            out.append((k, str(v)))
    return tuple(out)


def app_base_url(context_url: str | None, page_url_path: str = "") -> str | None:
    """The app's root URL from the browser's URL of the current page (``st.context.url``), or None."""
    if not context_url:
        return None
    url = context_url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if page_url_path and url.endswith("/" + page_url_path):
        url = url[: -len(page_url_path) - 1]
    return url


def share_url(base: str | None, page: str, params: Mapping[str, str]) -> str:
    """The full link (or, without a base, a link relative to the app's root)."""
    query = urlencode(params, safe=",@/:", quote_via=quote)
    path = f"{page}?{query}" if query else page
    return f"{base.rstrip('/')}/{path}" if base else path


# ---------------------------------------------------------------- static images (kaleido + Chromium)

NO_CHROMIUM = (
    "Static images need Chromium (or Chrome) and the kaleido package on the computer running this dashboard: "
    "{why}. Use the camera icon in the chart's toolbar instead (it saves a PNG from your browser), or download "
    "the HTML report."
)
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class StaticImageUnavailable(Exception):
    pass


def find_chromium() -> str | None:
    """The browser kaleido will drive: ``BROWSER_PATH`` (as kaleido's choreographer reads it) or one on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def static_image_problem() -> str | None:
    """Why figures cannot be written as PNG/SVG here (a message for the user), or None."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return NO_CHROMIUM.format(why="kaleido is not installed here")
    if find_chromium() is None:
        return NO_CHROMIUM.format(why="no Chromium was found (BROWSER_PATH can point to one)")
    return None


def static_image(
    fig, fmt: str = "png", *, width: int | None = None, height: int | None = None, scale: float = 2.0
) -> bytes:
    """The figure as PNG or SVG bytes (plotly's ``to_image`` through kaleido); raises StaticImageUnavailable."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"format {fmt!r}: png or svg")
    problem = static_image_problem()
    if problem:
        raise StaticImageUnavailable(problem)
    try:  # kaleido's choreographer finds the same browser (BROWSER_PATH, then these names on PATH)
        return fig.to_image(format=fmt, width=width, height=height, scale=scale if fmt == "png" else 1)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StaticImageUnavailable(NO_CHROMIUM.format(why=f"making the image failed ({first[:200]})")) from None

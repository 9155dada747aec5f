"""Export: the matrix and curves as CSV, the fingerprints as JSON, a self-contained HTML report."""

from datetime import UTC, datetime

import streamlit as st

from dashboard.address_bar import current_link_view
from dashboard.lineage_runs import collect_finished_lineage
from dashboard.links import app_base_url, link_params, share_url, shareable_reference
from dashboard.navigation import PAGES, URL_PATHS
from dashboard.panels import glossary
from dashboard.state import all_pairs_view, init_state, label_of, reference_shown, settings
from fingerprint.compare import pair_matrix
from fingerprint.present.exports import (
    curves_csv,
    fingerprints_json,
    lineage_json,
    matrix_csv,
    pairs_csv,
    verdicts_csv,
)
from fingerprint.present.labels import ALL_PAIRS_NAMES, display_names, role_label
from fingerprint.present.report import html_report
from fingerprint.present.sigma_figures import heatmap_figure
from fingerprint.present.signal_heatmap import signal_heatmap_figure
from fingerprint.present.static_image import StaticImageUnavailable, static_image, static_image_problem
from fingerprint.present.tables import find_verdict, signal_matrix, verdict_rows
from fingerprint.present.verdict_matrix import verdict_grid, verdict_matrix_figure

init_state()
collect_finished_lineage()
st.title("Export")

chosen = [r for r in st.session_state.get("compare_models", st.session_state["fps"]) if r in st.session_state["fps"]]
chosen = chosen or list(st.session_state["fps"])
if not chosen:
    st.info("Nothing to export yet. Run the demo on Home, or add models on the Models page.")
    st.page_link(PAGES["home"], label="Home: run the demo", icon=":material/play_arrow:")
    st.stop()

fps = [st.session_state["fps"][r] for r in chosen]
names = display_names(fps)
role = st.session_state.get("role", "mean")
order = st.session_state.get("order", "clustered")
if any(role not in fp.curves for fp in fps) and role != "mean":
    role = "mean"
st.markdown(
    f"Exporting **{len(fps)} model{'s' if len(fps) != 1 else ''}** as chosen on the Compare page "
    f"({', '.join(names)}); σ-curve matrix of **{role_label(role)}**, **{order}** order."
)
failures = [r["message"] for r in st.session_state["runs"].values() if r["status"] == "failed"]
pairs = pair_matrix(fps)
stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
# the lineage evidence computed so far (pair view, signal heatmaps) for models still in the session; the stress test
have = st.session_state["fps"]
evidence = [(k, v) for k, v in st.session_state.get("verdicts", {}).items() if k[0] in have and k[1] in have]
verdicts = [v for _, v in evidence]
stress = (st.session_state.get("stress") or {}).get("report")


def _ref(key: str) -> str:
    """What identifies a model in the lineage JSON: a pinned Hub reference or demo:<name>, an upload's file name,
    else the reference as entered."""
    if key in st.session_state.get("uploads", {}):
        return label_of(key)
    return shareable_reference(have[key]) or reference_shown(key)


local_paths = not settings().shared and st.checkbox(
    "Name local models by their full path",
    key="export_local_paths",
    help="Off: the exports name a model on this computer by its file or folder name (demo models as demo:<name>), "
    "so sharing a file does not tell where you keep your models.",
)
files = {
    "matrix.csv": matrix_csv(fps, role, order, names, pairs),
    "pairs.csv": pairs_csv(fps, names, pairs),
    "curves.csv": curves_csv(fps, names, local_paths=local_paths),
    "fingerprints.json": fingerprints_json(fps, local_paths=local_paths),
    "report.html": html_report(
        fps, role, order, names, failures, verdicts=verdicts, stress=stress, local_paths=local_paths
    ),
}
all_verdicts = st.session_state.get("verdicts", {})
chosen_have_verdicts = any(find_verdict(all_verdicts, a, b) for i, a in enumerate(chosen) for b in chosen[i + 1 :])
if chosen_have_verdicts:
    files["verdicts.csv"] = verdicts_csv(verdict_rows(chosen, names, all_verdicts))
if verdicts or stress is not None:
    files["lineage.json"] = lineage_json(verdicts, [(_ref(a), _ref(b)) for (a, b), _ in evidence], stress)
st.session_state["exports"] = files  # what was offered, for tests and for a re-download without recomputing

items = [
    (
        "verdicts.csv",
        "text/csv",
        "Verdicts (CSV)",
        "One row per pair, related pairs first: what the weights are consistent with, how strong that is, and every "
        "signal's value - the table of Compare's All pairs. Opens in any spreadsheet.",
    ),
    (
        "matrix.csv",
        "text/csv",
        "Correlation matrix (CSV)",
        "The N x N matrix of σ-curve correlations (the weakest signal), same order and names as its heatmap.",
    ),
    (
        "pairs.csv",
        "text/csv",
        "Pairs (CSV)",
        "One row per pair: the score and every role's r, each with its 95% interval when a model was read in "
        "sampled mode (the exact column says when there is none).",
    ),
    (
        "curves.csv",
        "text/csv",
        "σ-curves (CSV, long form)",
        "One row per model, role and layer: σ, its standard error (sampled mode), mean and RMS.",
    ),
    (
        "fingerprints.json",
        "application/json",
        "Fingerprints (JSON)",
        "Everything computed, with provenance: exact revision or file sha256, files read, mode, tool version, time. "
        "The same format as the command line's --json (see SCHEMA.md); `./run cli compare` reads it back.",
    ),
    (
        "report.html",
        "text/html",
        "Report (HTML)",
        "One self-contained page with the charts (interactive, works offline), the model table, every pair with its "
        "caveats, and the lineage evidence computed so far. Attach it to an article or a filing; it opens in any "
        "browser.",
    ),
]
if "lineage.json" in files:
    n = len(verdicts)
    items.append(
        (
            "lineage.json",
            "application/json",
            "Lineage evidence (JSON)",
            f"The verdict{'s' if n != 1 else ''} computed so far ({n} pair{'s' if n != 1 else ''}), each with every "
            "signal, what it read, where it falls among unrelated pairs, and the caveats"
            + ("; and the stress test's table." if stress is not None else "."),
        )
    )
for name, mime, label, what in items:
    if name not in files:
        continue
    with st.container(border=True):
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        c1.markdown(f"**{label}**  \n{what}")
        c2.download_button(
            "Download",
            files[name],
            file_name=f"llm-fingerprint-{stamp}-{name}",
            mime=mime,
            key=f"dl_{name}",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )
if "lineage.json" not in files:
    st.caption(
        ":material/info: No lineage evidence computed yet: it is added here (JSON, and in the report) once you "
        "compute it in Compare's pair view, a signal heatmap, or on the Stress test page."
    )
st.caption(
    "No token is ever included. Models on this computer are named by their file or folder name (demo models as "
    "demo:<name>, uploads by their file name)" + (", unless you tick the box above." if not settings().shared else ".")
)
with st.expander("Preview: the matrix CSV"):
    st.code(files["matrix.csv"], language=None)

# ---- share link
st.subheader("Share link")
view, left_out = current_link_view(chosen)
if view.models:
    base = app_base_url(st.context.url, URL_PATHS["export"])
    link = share_url(base, URL_PATHS["compare"], link_params(view))
    st.session_state["share_link"] = link
    st.markdown(
        "Opens the Compare page with the same models, role, order and curve view"
        + (" and pair" if view.pair else "")
        + ". Hub models are pinned to the exact commit that was read, so the link shows the same numbers later "
        "(and answers from the cache where they were read before)."
    )
    st.code(link, language=None, wrap_lines=True)
    if base is None:
        st.caption("The browser's address was not available: the link is relative to this app's address.")
else:
    st.session_state["share_link"] = None
    st.info("Nothing to share as a link: every model here is a local file.", icon=":material/link_off:")
if left_out:
    st.warning(
        f"Not in the link: {', '.join(left_out)}. A local file or folder means nothing on another computer; "
        "share the Hub ID of such a model, or send the JSON export (it has every curve and its provenance).",
        icon=":material/link_off:",
    )

# ---- static images
view_shown = all_pairs_view(chosen_have_verdicts)
if view_shown != "sigma" and len(chosen) < 2:
    view_shown = "sigma"


def shown_heatmap():
    """The heatmap Compare's All pairs shows, for these models."""
    if view_shown == "verdict":
        return verdict_matrix_figure(names, verdict_grid(chosen, all_verdicts), order)
    if view_shown != "sigma":
        matrix, notes = signal_matrix(chosen, all_verdicts, view_shown)
        return signal_heatmap_figure(names, matrix, notes, view_shown, order)
    return heatmap_figure(fps, role, order, names, pairs)


st.subheader("The heatmap as an image")
st.caption(f"As Compare's All pairs shows it: **{ALL_PAIRS_NAMES[view_shown]}**, {order} order.")
problem = static_image_problem()
if problem:
    st.info(problem, icon=":material/image_not_supported:")
else:
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    fmt = c1.radio(
        "Format",
        ["png", "svg"],
        horizontal=True,
        key="w_image_format",
        format_func={"png": "PNG", "svg": "SVG (vector)"}.get,
    )
    if c2.button(
        "Make the image",
        key="make_image",
        icon=":material/image:",
        help="Draws the heatmap as shown on Compare (same view, role and order) with a headless Chromium; "
        "takes a few seconds.",
    ):
        with st.spinner("Drawing the heatmap…"):
            try:
                fig = shown_heatmap()
                st.session_state["heatmap_image"] = (
                    fmt,
                    static_image(fig, fmt, width=max(900, int(fig.layout.height or 800))),
                )
            except StaticImageUnavailable as exc:
                st.session_state["heatmap_image"] = None
                st.info(str(exc), icon=":material/image_not_supported:")
    img = st.session_state.get("heatmap_image")
    if img:
        ext, data = img
        st.download_button(
            f"Download heatmap.{ext}",
            data,
            file_name=f"llm-fingerprint-{stamp}-heatmap.{ext}",
            mime="image/png" if ext == "png" else "image/svg+xml",
            on_click="ignore",
            icon=":material/download:",
            key="dl_image",
        )

glossary()

"""Find the base: one model against the reference library of known models - the closest known base, whether the
weights agree with the base the model declares, and every candidate weighed."""

import streamlit as st

from dashboard.lineage_runs import collect_finished_lineage, lineage_running
from dashboard.links import app_base_url, share_url
from dashboard.navigation import URL_PATHS
from dashboard.panels import glossary, lineage_panel
from dashboard.scan_runs import TYPED, open_scan_link, scan_in_address_bar, start_scan
from dashboard.state import init_state, label_of, session_options, settings
from dashboard.verdict_view import show_verdict
from fingerprint.demo import demo_paths
from fingerprint.errors import FingerprintError
from fingerprint.library.build import build_library
from fingerprint.library.commands import default_library
from fingerprint.library.scan import ScanResult
from fingerprint.library.store import Library
from fingerprint.present.exports import verdicts_csv
from fingerprint.present.scan_report import scan_html
from fingerprint.present.scan_words import (
    FACTS_AGREE,
    candidate_label,
    closest_text,
    declared_text,
    scan_json,
    scan_rows,
    set_aside_text,
    with_evidence,
)

init_state()
collect_finished_lineage()
st.title("Find the base")
st.markdown(
    "Which known model is this one derived from? The model is compared with every model of the **reference "
    "library** closest to it by shape and vocabulary (at most 16), with the same lineage signals as "
    "Compare, and the base its model card declares is checked against its weights. A verdict is evidence, not "
    "proof."
)
s = settings()
path = default_library()
try:
    library: Library | None = Library.open(path)
except FingerprintError:
    library = None

if library is None or not len(library):
    if s.shared:
        st.info("This server has no reference library yet: its operator builds one.", icon=":material/info:")
        st.stop()
    st.info(
        f"The library at `{path}` is empty. Build one from the command line (`./run cli library build`, or "
        "`library pull ORG/DATASET`), or start with the four demo models:",
        icon=":material/info:",
    )
    if st.button("Build a library of the demo models", key="build_demo_library", icon=":material/library_add:"):
        lib = Library.open(path, create=True)
        build_library(lib, [(p, "demo") for p in demo_paths()], session_options())
        st.rerun()
    st.stop()

st.caption(
    f":material/local_library: The library: {len(library)} known models"
    + (" (this server's, read-only)" if s.shared else f" in `{library.path}`")
)

if open_scan_link(library.path, s):
    st.rerun()  # the link's scan started: show its progress, or its result when it was quick
session_models = list(st.session_state["fps"])
choice = st.selectbox(
    "Model",
    [*session_models, TYPED],
    format_func=lambda k: "another model…" if k == TYPED else label_of(k),
    key="w_find_model",
    help="A model fingerprinted in this session, or any Hub ID (org/name[@revision]) or, on your own computer, a "
    "local file or folder.",
)
reference = choice
if choice == TYPED:
    reference = st.text_input("Hub ID or local path", key="w_find_typed", placeholder="org/name").strip()
fetch = st.checkbox(
    "Also read the declared base when it is not in the library",
    key="w_find_fetch",
    help="The model card names a base that the library does not have: read a sample of that model too and weigh it.",
)

running = lineage_running()
if st.button(
    "Find the base", key="run_scan", type="primary", icon=":material/travel_explore:", disabled=running or not reference
):
    if why := start_scan(reference, fetch, library.path, s):
        st.session_state["scan_error"] = why
    else:
        st.rerun()
lineage_panel("scan")
if note := st.session_state.get("scan_note"):
    st.warning(note, icon=":material/link:")
if err := st.session_state.get("scan_error"):
    st.error(err, icon=":material/error:")
error = st.session_state.get("lineage_error")
if error and not running and "scan_result" not in st.session_state and st.session_state.get("lineage_run"):
    if st.session_state["lineage_run"].kind == "scan":
        st.error(f"The scan failed: {error}", icon=":material/error:")

result: ScanResult | None = st.session_state.get("scan_result")
if result is not None:
    st.header(label_of(result.model))
    with st.container(border=True):
        st.subheader(closest_text(result), anchor=False)
        st.markdown(f"**Declared base:** {declared_text(result.declared)}")
        if result.itself:
            st.caption(
                f"This exact model is in the library ({result.itself[0].model}); it was not compared with itself."
            )
    rows = scan_rows(result)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    if aside := set_aside_text(result):
        st.caption(aside)
    st.caption(FACTS_AGREE)
    downloads = st.container(horizontal=True)  # side by side; on a phone they wrap
    downloads.download_button(
        "Download as CSV",
        verdicts_csv(rows),
        file_name="find-the-base.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="dl_scan_csv",
    )
    downloads.download_button(
        "Download as JSON",
        scan_json(result),
        file_name="find-the-base.json",
        mime="application/json",
        icon=":material/download:",
        on_click="ignore",
        key="dl_scan_json",
    )
    shown_result, library_path = result, not s.shared  # a shared server's folders stay private
    downloads.download_button(
        "Download as HTML",
        lambda: scan_html(shown_result, library_path=library_path),  # built on the click: it inlines plotly.js
        file_name="find-the-base.html",
        mime="text/html",
        icon=":material/download:",
        on_click="ignore",
        key="dl_scan_html",
        help="One page that works offline: the answer, the candidates and each one's evidence with its figures.",
    )

    candidates = {m.entry.key: m for m in with_evidence(result)}
    if candidates:
        st.subheader("The evidence", anchor=False)
        closest = result.closest
        default = (
            closest.entry.key if closest is not None and closest.entry.key in candidates else next(iter(candidates))
        )
        if st.session_state.get("w_scan_evidence") not in candidates:
            st.session_state["w_scan_evidence"] = default
        picked = st.selectbox(
            "Evidence for",
            list(candidates),
            key="w_scan_evidence",
            format_func=lambda k: candidate_label(candidates[k]),
            help="A candidate of the table: its verdict against this model, and every lineage signal behind it.",
        )
        verdict = candidates[picked].verdict
        if verdict is not None:
            show_verdict(verdict, key="scan_")

    st.subheader("Share link", anchor=False)
    params = scan_in_address_bar(result)
    if params:
        base = app_base_url(st.context.url, URL_PATHS["find_base"])
        st.markdown(
            f"Opens this page with `{params['model']}` filled in and scans it at once against the library of the "
            "dashboard that opens it"
            + (", reading the declared base too" if "fetch" in params else "")
            + (
                ". The demo models ship with the tool, so they are the same everywhere."
                if params["model"].startswith("demo:")
                else ". The model is pinned to the commit that was read, so the same weights are weighed."
            )
        )
        st.code(share_url(base, URL_PATHS["find_base"], params), language=None, wrap_lines=True)
        if base is None:
            st.caption("The browser's address was not available: the link is relative to this app's address.")
    else:
        st.info(
            f"Nothing to share as a link: {label_of(result.model)} is a local file or folder, which means nothing "
            "on another computer. Share its Hub ID, or send the HTML or JSON download.",
            icon=":material/link_off:",
        )

glossary()

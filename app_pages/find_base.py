"""Find the base: one model against the reference library of known models - the closest known base, whether the
weights agree with the base the model declares, and every candidate weighed."""

import dataclasses

import streamlit as st

from dashboard.lineage_runs import collect_finished_lineage, lineage_running, start_lineage
from dashboard.panels import glossary, lineage_panel
from dashboard.state import (
    check_request,
    init_state,
    label_of,
    resolve_keys,
    session_options,
    settings,
)
from fingerprint.demo import demo_paths
from fingerprint.errors import FingerprintError
from fingerprint.library.build import build_library
from fingerprint.library.commands import default_library
from fingerprint.library.scan import ScanResult, scan
from fingerprint.library.store import Library
from fingerprint.present.exports import verdicts_csv
from fingerprint.present.scan_words import closest_text, declared_text, scan_json, scan_rows, set_aside_text

init_state()
collect_finished_lineage()
st.title("Find the base")
st.markdown(
    "Which known model is this one derived from? The model is compared with every model of the **reference "
    "library** that could be linked to it (same width, or enough shared tokens), with the same lineage signals as "
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

session_models = list(st.session_state["fps"])
TYPED = "__typed__"
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
    st.session_state.pop("scan_result", None)
    st.session_state.pop("scan_error", None)
    keys, problems = resolve_keys([reference])
    keys, refused = check_request(keys, s)
    if problems or refused or not keys:
        st.session_state["scan_error"] = "; ".join(problems + refused) or "Give a model."
    else:
        opts = session_options()
        fp = st.session_state["fps"].get(keys[0])
        lib_path = library.path

        def work(task):
            lib = Library.open(lib_path)
            return scan(
                keys[0], lib, dataclasses.replace(opts, cancel=task.cancel), fingerprint=fp, fetch_declared=fetch
            )

        start_lineage("scan", work)
        st.rerun()
lineage_panel("scan")
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
    st.caption(
        "facts agree: how far the library model's shapes, depth and vocabulary agree with this one's (0 to 1); the "
        "verdict rests on the weights alone."
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download as CSV",
        verdicts_csv(rows),
        file_name="find-the-base.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        key="dl_scan_csv",
    )
    c2.download_button(
        "Download as JSON",
        scan_json(result),
        file_name="find-the-base.json",
        mime="application/json",
        icon=":material/download:",
        on_click="ignore",
        key="dl_scan_json",
    )

glossary()

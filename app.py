"""The dashboard: `./run app` (streamlit run app.py). Pages stay thin: widgets, plots, calls into dashboard/ and
fingerprint/.

Every script run: secrets -> environment -> Settings; collect a background run that is done; open a share link
found in the URL; draw the sidebar and, while a run is going, its progress with a Stop button; then the page.
"""

import streamlit as st

import dashboard.figure_warmup  # noqa: F401
from dashboard.address_bar import apply_link, show_link_notes
from dashboard.fingerprinting import collect_finished_run, fingerprint_running
from dashboard.navigation import PAGES, URL_PATHS
from dashboard.panels import fingerprinting_panel
from dashboard.settings import apply_secrets
from dashboard.state import fingerprints, init_state, log_settings_problems, settings
from dashboard.turns import TURNS
from fingerprint.present.texts import CRITIQUE_URL, PAPER_LINK_TEXT, PAPER_URL, SIGMA_CAVEAT

st.set_page_config(page_title="LLM fingerprint", page_icon=":material/fingerprint:", layout="wide")

# Streamlit secrets (top-level keys) act as environment variables; no secrets file is fine.
if st.secrets.load_if_toml_exists():
    apply_secrets(st.secrets.to_dict())
s = settings()
log_settings_problems(s, st.get_option("server.maxUploadSize"))
TURNS.set_limit(s.max_concurrent)
init_state()

nav = st.navigation(
    [
        st.Page(PAGES["home"], title="Home", icon=":material/home:", default=True),
        st.Page(PAGES["models"], title="Models", icon=":material/list:", url_path=URL_PATHS["models"]),
        st.Page(PAGES["compare"], title="Compare", icon=":material/grid_on:", url_path=URL_PATHS["compare"]),
        st.Page(PAGES["export"], title="Export", icon=":material/download:", url_path=URL_PATHS["export"]),
        st.Page(PAGES["stress"], title="Stress test", icon=":material/science:", url_path=URL_PATHS["stress"]),
        st.Page(
            PAGES["find_base"], title="Find the base", icon=":material/travel_explore:", url_path=URL_PATHS["find_base"]
        ),
    ]
)

collect_finished_run()
apply_link(s)

with st.sidebar:
    fps = fingerprints()
    failed = sum(1 for r in st.session_state["runs"].values() if r["status"] == "failed")
    if fingerprint_running():
        st.markdown("**Fingerprinting…** progress and Stop are at the top of the page.")
    if fps or st.session_state["runs"]:
        if fps:
            st.markdown(f"**{len(fps)} model{'s' if len(fps) != 1 else ''} fingerprinted** in this session")
        if failed:
            st.caption(f"{failed} failed: see Models.")

        def _clear() -> None:
            for k in ("fps", "runs", "verdicts", "probes", "lineage_failed"):
                st.session_state[k] = {}
            for k in ("stress", "verdicts_auto", "signal_picked"):
                st.session_state.pop(k, None)
            for k in (
                "compare_models",
                "w_compare_models",
                "pair_a",
                "pair_b",
                "w_pair_a",
                "w_pair_b",
                "last_summary",
                "request_problems",
            ):
                st.session_state.pop(k, None)

        st.button(
            "Clear all results",
            icon=":material/delete:",
            on_click=_clear,
            disabled=fingerprint_running(),
            help="Forget this session's results (the disk cache stays).",
        )
    elif not fingerprint_running():
        st.markdown("No models yet. Run the demo on **Home** or add models on **Models**.")
    if s.shared:
        st.caption(
            f":material/public: Shared server: up to {s.max_models} models per session, uploads up to "
            f"{s.max_upload_mb} MB, no access to files on the server. Your choices are seen by you only."
        )
    st.divider()
    st.caption(SIGMA_CAVEAT)
    st.caption(f"[{PAPER_LINK_TEXT}]({PAPER_URL}) · [A critique]({CRITIQUE_URL})")

show_link_notes()
fingerprinting_panel()
nav.run()

"""The dashboard: `./run app` (streamlit run app.py). Pages stay thin: widgets, plots, calls into fingerprint/."""

import streamlit as st

from fingerprint.export import CRITIQUE_URL, PAPER_URL
from pages.common import PAGES, fingerprints, init_state

st.set_page_config(page_title="LLM fingerprint", page_icon=":material/fingerprint:", layout="wide")
init_state()

nav = st.navigation(
    [
        st.Page(PAGES["home"], title="Home", icon=":material/home:", default=True),
        st.Page(PAGES["models"], title="Models", icon=":material/list:"),
        st.Page(PAGES["compare"], title="Compare", icon=":material/grid_on:"),
        st.Page(PAGES["export"], title="Export", icon=":material/download:"),
    ]
)

with st.sidebar:
    fps = fingerprints()
    failed = sum(1 for r in st.session_state["runs"].values() if r["status"] == "failed")
    if fps:
        st.markdown(f"**{len(fps)} model{'s' if len(fps) != 1 else ''} fingerprinted** in this session")
        if failed:
            st.caption(f"{failed} failed: see Models.")
        if st.button("Clear all results", icon=":material/delete:", help="Forget this session's results (the disk cache stays)."):
            st.session_state["fps"] = {}
            st.session_state["runs"] = {}
            st.rerun()
    else:
        st.markdown("No models yet. Run the demo on **Home** or add models on **Models**.")
    st.divider()
    st.caption(
        "A high σ-curve correlation is consistent with shared lineage, **never proof**: independent models "
        "with look-alike recipes also correlate highly."
    )
    st.caption(f"[The paper (arXiv 2507.03014)]({PAPER_URL}) · [A critique]({CRITIQUE_URL})")

nav.run()

"""Export: the matrix and curves as CSV, the fingerprints as JSON, a self-contained HTML report."""

from datetime import datetime, timezone

import streamlit as st

from fingerprint.export import curves_csv, fingerprints_json, html_report, matrix_csv
from fingerprint.plots import display_names, pair_matrix, role_label
from pages.common import PAGES, init_state

init_state()
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
    f"({', '.join(names)}); matrix of **{role_label(role)}**, **{order}** order."
)
failures = [r["message"] for r in st.session_state["runs"].values() if r["status"] == "failed"]
pairs = pair_matrix(fps)
stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M")
files = {
    "matrix.csv": matrix_csv(fps, role, order, names, pairs),
    "curves.csv": curves_csv(fps, names),
    "fingerprints.json": fingerprints_json(fps),
    "report.html": html_report(fps, role, order, names, failures),
}
st.session_state["exports"] = files  # what was offered, for tests and for a re-download without recomputing

items = [
    ("matrix.csv", "text/csv", "Correlation matrix (CSV)",
     "The N x N matrix the heatmap shows, same order and names. Opens in any spreadsheet."),
    ("curves.csv", "text/csv", "σ-curves (CSV, long form)",
     "One row per model, role and layer: σ, its standard error (sampled mode), mean and RMS."),
    ("fingerprints.json", "application/json", "Fingerprints (JSON)",
     "Everything computed, with provenance: exact revision or file sha256, files read, mode, tool version, time. "
     "The same format as the command line's --json (see SCHEMA.md); `./run cli compare` reads it back."),
    ("report.html", "text/html", "Report (HTML)",
     "One self-contained page with the charts (interactive, works offline), the model table, every pair with its "
     "caveats. Attach it to an article or a filing; it opens in any browser."),
]
for name, mime, label, what in items:
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
st.caption("No token is ever included. Local models appear under the paths you entered.")
with st.expander("Preview: the matrix CSV"):
    st.code(files["matrix.csv"], language=None)

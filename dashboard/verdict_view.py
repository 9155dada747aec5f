"""One pair's verdict on a page, the same wherever it is shown (Compare's pair view, Find the base's evidence of a
candidate): the verdict in words, how strong, why, what could not be checked, then every signal against the
unrelated background."""

from __future__ import annotations

import streamlit as st

from fingerprint.lineage.verdict import Verdict
from fingerprint.present.evidence_figures import depth_figure, evidence_figure, moe_figure
from fingerprint.present.evidence_words import evidence_explanation, has_calibration, strength_text
from fingerprint.present.tables import signal_rows_text
from fingerprint.present.texts import NO_CALIBRATION_VERDICT
from fingerprint.present.verdict_table import NEVER_DECIDE, verdict_table_screen


def show_verdict(v: Verdict, key: str = "") -> None:
    """The verdict (always 'consistent with', never an accusation), how strong, why, what could not be checked,
    then every signal against the unrelated background. ``key`` prefixes the charts' keys, so two panels on one
    page never collide."""
    icon = {True: ":material/link:", False: ":material/link_off:"}[v.related]
    if v.verdict == "insufficient_data":
        icon = ":material/help:"
    with st.container(border=True):
        st.subheader(f"{icon} Verdict: {v.sentence}", anchor=False)
        st.markdown(f"**How strong:** {strength_text(v)}.")
        if v.because:
            st.markdown("**Why:**\n" + "\n".join(f"- {b}" for b in v.because))
        st.markdown(
            "**Could not be checked:**\n" + "\n".join(f"- {n}" for n in v.not_checked)
            if v.not_checked
            else "**Could not be checked:** nothing: every signal that applies was computed."
        )
        st.caption("Caveats: " + "; ".join(c.rstrip(".") for c in v.caveats) + ".")  # names keep their case
    if not has_calibration() and v.verdict not in ("same_weights", "quantized_copy"):
        st.info(NO_CALIBRATION_VERDICT, icon=":material/info:")
    st.plotly_chart(evidence_figure(v), width="stretch", theme=None, key=f"{key}evidence")
    st.caption(evidence_explanation())
    depth = depth_figure(v)
    if depth is not None:
        m = v.signals["depth"].detail["matrix"]
        differ = len(m) != len(m[0])
        with st.expander(
            "Layer-by-layer alignment" + (" (the models have different depths)" if differ else ""),
            expanded=differ,
            icon=":material/grid_on:",
        ):
            st.plotly_chart(depth, width="stretch", theme=None, key=f"{key}depth")
            st.caption(
                "Every layer of one model against every layer of the other. A copy or a fine-tune lights up "
                "the diagonal; a model with layers removed or added shows a path that skips; unrelated models "
                "show no pattern."
            )
    moe = moe_figure(v)
    if moe is not None:
        st.plotly_chart(moe, width="stretch", theme=None, key=f"{key}moe")
    with st.expander("Every number, as a table", icon=":material/table:"):
        st.dataframe(signal_rows_text(v), hide_index=True, width="stretch")
    with st.expander("Which verdicts exist, and the evidence each needs", icon=":material/rule:"):
        st.markdown(verdict_table_screen())
        st.caption(NEVER_DECIDE)

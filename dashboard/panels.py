"""The progress panels: a running fingerprinting's bars with its Stop button, a running lineage run's status
line with its Stop button, each polled in an ``st.fragment`` while the run lasts."""

from __future__ import annotations

import streamlit as st

from dashboard.fingerprinting import fingerprint_run, fingerprint_running
from dashboard.lineage_runs import lineage_run
from dashboard.runs import Line, queue_words
from dashboard.state import POLL_SECONDS, label_of
from fingerprint.present.formatting import human_bytes
from fingerprint.present.texts import GLOSSARY


def line_text(line: Line, stopping: bool) -> str:
    name = label_of(line.key)
    mode = f", {line.mode} mode" if line.mode else ""
    stage = line.stage
    if stopping and stage in ("waiting", "queued", "resolving", "headers", "reading", "rate_limited"):
        return f"{name}: stopping…"
    if stage == "rate_limited":
        return f"{name}: {line.message}"
    if stage == "queued":
        return f"{name}: waiting for its turn on this shared server ({queue_words(line.ahead)})"
    if stage == "waiting":
        return f"{name}: waiting"
    if stage == "resolving":
        return f"{name}: finding the files"
    if stage == "headers":
        return f"{name}: reading the file headers ({human_bytes(line.bytes_done)})"
    if stage == "reading":
        return (
            f"{name}: reading attention weights, {human_bytes(line.bytes_done)} of "
            f"{human_bytes(line.bytes_needed)}{mode}"
        )
    if stage == "done":
        return f"{name}: done, {human_bytes(line.bytes_done)} read{mode}"
    if stage == "cached":
        return f"{name}: from the cache, nothing read{mode}"
    if stage == "cancelled":
        return f"{name}: cancelled"
    return f"{name}: failed (see Models)"


@st.fragment(run_every=POLL_SECONDS)
def _fingerprinting_fragment() -> None:
    j = fingerprint_run()
    if j is None or j.collected:
        return
    if j.done:
        st.rerun()  # the whole app: collect the results, then show them
    lines = j.lines()
    c = j.counts()
    n = len(lines)
    label = (
        f"Stopping… {c['ok']} of {n} done"
        if j.stopping
        else f"Fingerprinting {n} model{'s' if n != 1 else ''}… {c['ok']} of {n} done, {j.seconds:.0f} s"
    )
    with st.container(border=True):
        st.markdown(f":material/hourglass_top: **{label}**")
        for line in lines:
            st.progress(line.fraction, text=line_text(line, j.stopping))
        st.button(
            "Stop",
            key="stop_job",
            icon=":material/stop_circle:",
            on_click=j.stop,
            disabled=j.stopping,
            help="Stop reading: the models already done stay, the others are marked 'cancelled'. "
            "A model stops between two reads, so it can take a second.",
        )


def fingerprinting_panel() -> None:
    """The running fingerprinting's progress and its Stop button, polled every half second; nothing when idle."""
    if fingerprint_running():
        _fingerprinting_fragment()


@st.fragment(run_every=POLL_SECONDS)
def _lineage_fragment(kind: str) -> None:
    t = lineage_run()
    if t is None or t.collected:
        return
    if t.done:
        st.rerun()
    with st.container(border=True):
        if t.cancel.is_set():
            st.markdown(f":material/hourglass_top: **Stopping…** {t.status}")
        else:
            st.markdown(f":material/hourglass_top: **{t.status}…** ({t.seconds:.0f} s)")
        st.button(
            "Stop",
            key=f"stop_lineage_{kind}",
            icon=":material/stop_circle:",
            on_click=t.cancel.set,
            disabled=t.cancel.is_set(),
            help="Stop after the current model or pair; what is done stays.",
        )


def lineage_panel(kind: str) -> None:
    """The running lineage run's progress and Stop button (only on the page of its kind)."""
    t = lineage_run()
    if t is not None and not t.collected and t.kind == kind:
        _lineage_fragment(kind)


def glossary() -> None:
    """Every technical term the pages show, in one expander at the bottom of a page."""
    with st.expander("What the words on this page mean", icon=":material/menu_book:"):
        st.markdown("\n".join(f"- **{term}**: {meaning}." for term, meaning in GLOSSARY.items()))

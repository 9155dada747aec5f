"""Fingerprinting in a visitor's session: start a background run, and once it is done copy what it found into the
session state (the script thread does; the run's workers never touch ``st.session_state``)."""

from __future__ import annotations

import dataclasses

import streamlit as st

from dashboard import state
from dashboard.runs import FingerprintRun
from dashboard.state import label_of, session_options, visitor, when_session_ends
from fingerprint.errors import Cancelled


def fingerprint_run() -> FingerprintRun | None:
    """The current or last fingerprinting run of this session."""
    return st.session_state.get("fingerprint_run")


def fingerprint_running() -> bool:
    j = fingerprint_run()
    return j is not None and not j.collected


def start_fingerprinting(keys: list[str], *, mode: str = "auto", then: str | None = None) -> FingerprintRun | None:
    """Start fingerprinting in the background; wait a moment so quick runs show their result at once."""
    if not keys:
        return None
    j = FingerprintRun([(k, k) for k in keys], session_options(mode), then=then, visitor=visitor()).start()
    st.session_state["fingerprint_run"] = j
    when_session_ends("fingerprint_run", j.stop)
    if j.wait(state.GRACE_SECONDS):
        collect_finished_run()
    return j


def collect_finished_run() -> None:
    """Copy a finished fingerprinting run's outcomes into the session (script thread only); say what happened."""
    j = fingerprint_run()
    if j is None or j.collected or not j.done:
        return
    j.collected = True
    fps, runs, uploads = st.session_state["fps"], st.session_state["runs"], st.session_state["uploads"]
    ok, failed = [], []
    for key, _ in j.items:
        out = j.outcomes.get(key)
        if out is None:
            continue
        if out.fingerprint is not None:
            fp = out.fingerprint
            if key in uploads:
                fp = dataclasses.replace(fp, model=uploads[key]["name"])  # the file's own name, not the temp path
            fps[key] = fp
            runs[key] = {"status": "from cache" if out.cached else "computed", "message": "", "kind": ""}
            ok.append(key)
        else:
            fps.pop(key, None)
            err = out.error
            cancelled = isinstance(err, Cancelled)
            message = f"{label_of(key)}: cancelled." if cancelled else str(err)
            if key in uploads and not cancelled:
                message = message.replace(key, uploads[key]["name"])
            runs[key] = {
                "status": "cancelled" if cancelled else "failed",
                "message": message,
                "kind": getattr(err, "kind", "error"),
            }
            failed.append(key)
    c = j.counts()
    st.session_state["last_summary"] = summary_text(j, c)
    if j.then == "compare":
        st.session_state["compare_models"] = [k for k, _ in j.items if k in ok]
        st.session_state.pop("w_compare_models", None)
    elif j.then == "restore" and failed:
        notes = st.session_state.setdefault("link_notes", [])
        notes += [f"Could not be restored: {runs[k]['message']}" for k in failed]


def summary_text(j: FingerprintRun, c: dict[str, int]) -> str:
    n = len(j.items)
    text = f"{c['ok']} of {n} model{'s' if n != 1 else ''} fingerprinted in {j.seconds:.1f} s"
    if c["failed"]:
        text += f", {c['failed']} failed"
    if c["cancelled"]:
        text += f", {c['cancelled']} cancelled"
    return text

"""Find the base in a visitor's session: one model scanned against the reference library, in the background like
the other lineage runs (dashboard/lineage_runs.py). A scan starts from the page's button or from a share link
(``find-base?model=REF[&fetch=1]``, dashboard/links.py), once per link; a link's model goes through the same checks
as a typed one. Once a scan is shown, the address bar carries its link.

Session keys: scan_result (the ScanResult shown), scan_of {key, fetch} (what that scan was asked for), scan_error
(why a scan did not start), scan_note (a link that could not start one), scan_link_applied (the signature of the
link last opened or written), w_find_model, w_find_typed, w_find_fetch, w_scan_evidence (the page's widgets).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from dashboard.lineage_runs import lineage_running, start_lineage
from dashboard.links import SCAN_LINK_KEYS, link_signature, parse_scan_link, scan_link_params, scan_reference
from dashboard.runs import LineageRun
from dashboard.settings import Settings
from dashboard.state import check_request, resolve_keys, session_options
from fingerprint.library.scan import ScanResult, scan
from fingerprint.library.store import Library

TYPED = "__typed__"  # the model picker's "another model…": the reference is typed


def start_scan(reference: str, fetch: bool, library_path: Path, s: Settings) -> str | None:
    """Scan ``reference`` (checked as any typed reference: a demo name, and in shared mode no server path) against
    the library in the background, reading the declared base too when ``fetch``. Why it did not start, or None."""
    for key in ("scan_result", "scan_error", "scan_note", "scan_of", "w_scan_evidence"):
        st.session_state.pop(key, None)
    keys, problems = resolve_keys([reference])
    keys, refused = check_request(keys, s)
    if problems or refused or not keys:
        return "; ".join(problems + refused) or "Give a model."
    key = keys[0]
    opts = session_options()
    fp = st.session_state["fps"].get(key)

    def work(task: LineageRun) -> ScanResult:
        lib = Library.open(library_path)
        return scan(key, lib, dataclasses.replace(opts, cancel=task.cancel), fingerprint=fp, fetch_declared=fetch)

    st.session_state["scan_of"] = {"key": key, "fetch": fetch}
    start_lineage("scan", work)
    return None


def open_scan_link(library_path: Path, s: Settings) -> bool:
    """A Find the base link in the address bar, once per link: its model is filled in and scanned, as if typed
    and clicked. True when a scan started."""
    params = st.query_params.to_dict()
    link = parse_scan_link(params)
    signature = link_signature(params, SCAN_LINK_KEYS)
    if link is None or signature == st.session_state.get("scan_link_applied"):
        return False
    st.session_state["scan_link_applied"] = signature
    reference, fetch = link
    st.session_state.update(w_find_model=TYPED, w_find_typed=reference, w_find_fetch=fetch)
    if lineage_running():
        st.session_state["scan_note"] = (
            f"The link you opened asks for a scan of {reference}, but a scan or comparison of this session is "
            "still running (progress above): the model is filled in below; click Find the base once it is done."
        )
        return False
    why = start_scan(reference, fetch, library_path, s)
    if why:
        st.session_state["scan_error"] = f"The link you opened was not scanned: {why}"
    return why is None


def scan_in_address_bar(result: ScanResult) -> dict[str, str]:
    """Write the link of the scan shown into the address bar, and return its query parameters ({} when the model
    is a local file or folder, which a link cannot carry: then the address bar has no scan link)."""
    asked = st.session_state.get("scan_of") or {}
    reference = scan_reference(str(asked.get("key", "")), result.model)
    params = scan_link_params(reference, bool(asked.get("fetch"))) if reference else {}
    for k in SCAN_LINK_KEYS:
        if k in params:
            if st.query_params.get(k) != params[k]:
                st.query_params[k] = params[k]
        elif k in st.query_params:
            del st.query_params[k]
    st.session_state["scan_link_applied"] = link_signature(params, SCAN_LINK_KEYS)
    return params

"""The address bar is always a share link: a link opened restores its Compare view (fingerprinting what is
missing), and the Compare page writes its view back into the URL's query parameters (dashboard/links.py)."""

from __future__ import annotations

import streamlit as st

from dashboard.fingerprinting import fingerprint_run, fingerprint_running, start_fingerprinting
from dashboard.links import LINK_KEYS, LinkView, link_params, link_signature, parse_link, shareable_reference
from dashboard.settings import Settings
from dashboard.state import check_request, label_of, resolve_keys


def apply_link(s: Settings) -> None:
    """A share link in the URL (once per link): set the Compare view, fingerprint what is missing."""
    params = st.query_params.to_dict()
    sig = link_signature(params)
    if not sig or sig == st.session_state.get("link_applied"):
        return
    st.session_state["link_applied"] = sig
    view, notes = parse_link(params)
    if view is None:
        return
    keys_by_index: dict[int, str] = {}
    for i, m in enumerate(view.models):
        keys, problems = resolve_keys([m])
        notes += problems
        if keys:
            keys_by_index[i] = keys[0]
    allowed, refused = check_request(list(keys_by_index.values()), s)
    notes += [f"Left out of this link: {r}" for r in refused]
    keys_by_index = {i: k for i, k in keys_by_index.items() if k in allowed}
    keys = list(dict.fromkeys(keys_by_index.values()))
    have = list(st.session_state["fps"])
    room = max(0, s.max_models - len([k for k in have if k not in keys]))
    if len(keys) > room:
        notes.append(
            f"This link lists {len(keys)} models; this {'shared server' if s.shared else 'dashboard'} fingerprints at "
            f"most {s.max_models} per session, so the first {room} are shown. Left out: {', '.join(keys[room:])}"
        )
        keys = keys[:room]
    st.session_state.update(compare_models=keys, role=view.role, order=view.order, curve_mode=view.view)
    if view.pair and all(keys_by_index.get(i) in keys for i in view.pair):
        st.session_state["pair_a"], st.session_state["pair_b"] = (keys_by_index[i] for i in view.pair)
    if view.signal:  # as if the visitor had picked it
        st.session_state.update(signal=view.signal, signal_picked=True)
    for w in ("w_compare_models", "w_role", "w_order", "w_curve_mode", "w_pair_a", "w_pair_b", "w_signal"):
        st.session_state.pop(w, None)
    st.session_state["link_notes"] = notes
    st.session_state["link_adopt"] = True
    missing = [k for k in keys if k not in st.session_state["fps"]]
    if missing and not fingerprint_running():
        start_fingerprinting(missing, mode="auto", then="restore")
    elif missing:
        notes.append("A run was in progress: " + ", ".join(missing) + " were not fingerprinted; add them on Models.")


def current_link_view(chosen: list[str]) -> tuple[LinkView, list[str]]:
    """The share link of the current view, and the labels of the models it leaves out (local files)."""
    fps = st.session_state["fps"]
    models, index, left_out = [], {}, []
    for k in chosen:
        ref = shareable_reference(fps[k]) if k in fps else None
        if ref is None:
            left_out.append(label_of(k))
            continue
        index[k] = len(models)
        models.append(ref)
    a, b = st.session_state.get("pair_a"), st.session_state.get("pair_b")
    pair = (index[a], index[b]) if a in index and b in index and a != b else None
    view = LinkView(
        models=models,
        role=st.session_state.get("role", "mean"),
        order=st.session_state.get("order", "clustered"),
        view=st.session_state.get("curve_mode", "normalised"),
        pair=pair,
        signal=st.session_state.get("signal") if st.session_state.get("signal_picked") else None,
    )
    return view, left_out


def sync_link(chosen: list[str]) -> None:
    """Keep the URL's query parameters equal to the Compare view, so the address bar is always a share link.

    A link just opened stays as it was (even listing models that could not be restored) until the visitor
    changes the view; while it is being restored nothing is written.
    """
    j = fingerprint_run()
    if j is not None and not j.collected and j.then == "restore":
        return
    view, _ = current_link_view(chosen)
    params = link_params(view) if view.models else {}
    cur = link_signature(params)
    url_sig = link_signature(st.query_params.to_dict())
    adopt = st.session_state.pop("link_adopt", False)
    if url_sig == st.session_state.get("link_applied") and (adopt or cur == st.session_state.get("view_sig")):
        st.session_state["view_sig"] = cur
        return
    if url_sig != cur:
        for k in LINK_KEYS:
            if k in params:
                st.query_params[k] = params[k]
            elif k in st.query_params:
                del st.query_params[k]
    st.session_state["link_applied"] = cur
    st.session_state["view_sig"] = cur
    st.session_state.pop("link_notes", None)


def link_in_address_bar() -> bool:
    """True while the address bar still shows the share link that was opened (not changed since)."""
    sig = link_signature(st.query_params.to_dict())
    return bool(sig) and sig == st.session_state.get("link_applied") and "link_notes" in st.session_state


def show_link_notes() -> None:
    """What in the opened link could not be used - while that link is in the address bar."""
    notes = st.session_state.get("link_notes")
    if notes and link_in_address_bar():
        st.warning("**From the link you opened:**\n" + "\n".join(f"- {n}" for n in notes), icon=":material/link:")

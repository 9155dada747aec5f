"""What the dashboard's pages share in a visitor's session: its keys, the settings, the cache, the widgets'
values, the names models are shown under, the upload folder, and which references this session may read.

Session state (plain keys, so they survive pages whose widgets are not rendered; each visitor has their own,
nothing is global but the fingerprint cache on disk):
  fps       dict[str, Fingerprint]  model key -> fingerprint, in the order they were added
  runs      dict[str, dict]         model key -> {status, message, kind}; status computed|from cache|failed|cancelled
  fingerprint_run  FingerprintRun   the current or last fingerprinting run (dashboard/fingerprinting.py)
  lineage_run      LineageRun       the current or last lineage run (dashboard/lineage_runs.py)
  uploads   dict[str, dict]         saved upload path -> {name (unique in the session), original, size}
  hf_token  str                     a Hugging Face token for this browser session only (never shown or exported)
  role, order, curve_mode, compare_models, pair_a, pair_b: the Compare page's choices (pair_*: model keys)
  signal, signal_picked: what Compare's "All pairs" shows, and whether the visitor (or a link) chose it
  verdicts, probes, lineage_failed, verdicts_auto: the lineage evidence (dashboard/lineage_runs.py)
  link_applied, view_sig, link_adopt, link_notes: share-link bookkeeping (dashboard/address_bar.py)
  scan_result, scan_of, scan_error, scan_note, scan_link_applied: Find the base (dashboard/scan_runs.py)

A model key is the reference as typed, except demo models (their absolute path, also for ``demo:<name>``)
and uploads (the saved file's path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.policy import shared_mode_refusal
from dashboard.session_end import SESSION_ENDS
from dashboard.settings import Settings
from dashboard.uploads import UploadFolder
from fingerprint import Options, Store
from fingerprint.demo import demo_name, demo_reference, resolve_demo_reference
from fingerprint.result import Fingerprint
from fingerprint.store import default_path

log = logging.getLogger("llm_fingerprint.dashboard")

GRACE_SECONDS = 1.5  # a run that finishes this fast shows its result at once, without a progress panel
POLL_SECONDS = 0.5  # how often a progress panel looks at its run


def init_state() -> None:
    st.session_state.setdefault("fps", {})
    st.session_state.setdefault("runs", {})
    st.session_state.setdefault("uploads", {})


def visitor() -> str:
    """This browser session's id: whose turn a computation is on a shared server (dashboard/turns.py)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def when_session_ends(name: str, undo: Callable[[], object]) -> None:
    """Run ``undo()`` once this visitor's session has ended (tab closed, not reconnected): see session_end.py."""
    SESSION_ENDS.on_end(visitor(), name, undo, ttl=float(st.get_option("server.disconnectedSessionTTL")))


def settings() -> Settings:
    """Read on every script run (cheap): the environment, with secrets already applied by app.py."""
    return Settings.from_env()


_LOGGED: set[str] = set()


def log_settings_problems(s: Settings, server_max_mb: int | None) -> None:
    """Deployment mistakes go to the server log once per process, never to visitors."""
    if st.session_state.get("_settings_logged"):
        return
    st.session_state["_settings_logged"] = True
    for p in [*s.problems, *s.consistency_problems(server_max_mb)]:
        if p not in _LOGGED:
            _LOGGED.add(p)
            log.warning("settings: %s", p)


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The persistent fingerprint cache (FINGERPRINT_CACHE or ~/.cache/llm-fingerprint), one per path."""
    return _store(str(default_path()))


def session_options(mode: str = "auto") -> Options:
    """Options for a run started by this visitor: their token (or the server's), the cache, the server's caps."""
    s = settings()
    return Options(
        mode=mode,
        token=s.token_for(st.session_state.get("hf_token")),
        store=get_store(),
        max_exact_bytes=s.max_exact_mb * 1_000_000 or None,
    )


def fingerprints() -> list[Fingerprint]:
    return list(st.session_state.get("fps", {}).values())


def all_pairs_view(have_verdicts: bool) -> str:
    """What Compare's "All pairs" shows: the visitor's pick (or a share link's), else the verdicts once there are
    any, the σ-curves before."""
    if st.session_state.get("signal_picked"):
        return str(st.session_state.get("signal", "sigma"))
    return "verdict" if have_verdicts else "sigma"


def seed_widget(widget_key: str, key: str, default: Any) -> None:
    """Seed a widget from a plain session key (widget keys vanish when their page is not shown)."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = st.session_state.get(key, default)


def keep_widget_value(widget_key: str, key: str) -> None:
    """Copy a widget's value to its plain session key, which outlives the page (see ``seed_widget``)."""
    st.session_state[key] = st.session_state[widget_key]


def label_of(key: str) -> str:
    """A short name: the upload's file name, the demo model's name, else the reference."""
    up = st.session_state.get("uploads", {}).get(key)
    if up:
        return str(up["name"])
    return demo_name(key) or key


def reference_shown(key: str) -> str:
    """The reference as shown to the visitor: never a server path for uploads or demo models."""
    if key in st.session_state.get("uploads", {}):
        return "(uploaded file)"
    return demo_reference(key) or key


# ---------------------------------------------------------------- uploads and what this session may read


def upload_folder() -> UploadFolder:
    if "upload_folder" not in st.session_state:
        folder = st.session_state["upload_folder"] = UploadFolder()
        when_session_ends("uploads", folder.cleanup)
    folder: UploadFolder = st.session_state["upload_folder"]
    return folder


def allowed_roots() -> list[Path]:
    folder = st.session_state.get("upload_folder")
    return [folder.path] if folder is not None else []


def resolve_keys(references: list[str]) -> tuple[list[str], list[str]]:
    """Session keys for typed references (``demo:<name>`` -> the demo's path); problems for unknown demos."""
    keys, problems = [], []
    for r in references:
        r = r.strip()
        if not r:
            continue
        if r.startswith("demo:"):
            path = resolve_demo_reference(r)
            if path is None:
                problems.append(f"{r}: no demo model of that name (the demo models are on the Home page).")
                continue
            r = path
        keys.append(r)
    return list(dict.fromkeys(keys)), problems


def check_request(keys: list[str], s: Settings) -> tuple[list[str], list[str]]:
    """The keys this server may read, and why the others are refused (shared mode: local paths)."""
    ok, problems = [], []
    roots = allowed_roots()
    for k in keys:
        why = shared_mode_refusal(k, s, roots)
        if why:
            problems.append(why)
        else:
            ok.append(k)
    return ok, problems

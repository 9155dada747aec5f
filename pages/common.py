"""What the dashboard's pages share: session state, the persistent store, and computing with live progress.

Session state (plain keys, so they survive pages whose widgets are not rendered):
  fps       dict[str, Fingerprint]  model reference -> fingerprint, in the order they were added
  runs      dict[str, dict]         model reference -> {status, message, kind, seconds}
  hf_token  str                     a Hugging Face token for this browser session only (never shown or exported)
  role, order, curve_mode, compare_models, pair_a, pair_b: the Compare page's choices
"""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor

import streamlit as st

from fingerprint import Fingerprint, Options, Progress, Store, compute_many
from fingerprint.demo import demo_name
from fingerprint.export import human_bytes
from fingerprint.store import default_path

PAGES = {
    "home": "pages/home.py",
    "models": "pages/models.py",
    "compare": "pages/compare.py",
    "export": "pages/export.py",
}


def init_state() -> None:
    st.session_state.setdefault("fps", {})
    st.session_state.setdefault("runs", {})


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The persistent fingerprint cache (FINGERPRINT_CACHE or ~/.cache/llm-fingerprint), one per path."""
    return _store(str(default_path()))


def fingerprints() -> list[Fingerprint]:
    return list(st.session_state.get("fps", {}).values())


def persist(widget_key: str, key: str, default):
    """Seed a widget from a plain session key (widget keys vanish when their page is not shown)."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = st.session_state.get(key, default)


def save(widget_key: str, key: str) -> None:
    st.session_state[key] = st.session_state[widget_key]


def label_of(reference: str) -> str:
    return demo_name(reference) or reference


def _progress_text(p: Progress) -> tuple[float, str]:
    name = label_of(p.model)
    mode = f", {p.mode} mode" if p.mode else ""
    if p.stage == "resolving":
        return 0.02, f"{name}: finding the files"
    if p.stage == "headers":
        return 0.05, f"{name}: reading the file headers ({human_bytes(p.bytes_done)})"
    if p.stage == "reading":
        frac = p.bytes_done / p.bytes_needed if p.bytes_needed else 0.0
        return 0.05 + 0.95 * min(1.0, frac), (
            f"{name}: reading attention weights, {human_bytes(p.bytes_done)} of {human_bytes(p.bytes_needed)}{mode}"
        )
    if p.stage == "done":
        return 1.0, f"{name}: done, {human_bytes(p.bytes_done)} read{mode}"
    if p.stage == "cached":
        return 1.0, f"{name}: from the cache, nothing read{mode}"
    if p.stage == "failed":
        return 1.0, f"{name}: failed (see below)"
    return 0.0, f"{name}: {p.stage}"


def run_compute(references: list[str], *, mode: str = "auto", token: str | None = None) -> list:
    """Fingerprint models in a worker thread; this (the script) thread draws per-model progress as it arrives.

    Results go into st.session_state (fps, runs); returns the core's Outcomes.
    """
    init_state()
    refs = list(dict.fromkeys(r.strip() for r in references if r.strip()))
    if not refs:
        return []
    opts = Options(mode=mode, token=token or None, store=get_store())
    events: queue.Queue[Progress] = queue.Queue()
    started = time.monotonic()
    status = st.status(f"Fingerprinting {len(refs)} model{'s' if len(refs) != 1 else ''}…", expanded=True)
    with status:
        bars = {r: st.progress(0.0, text=f"{label_of(r)}: waiting") for r in refs}
    latest: dict[str, Progress] = {}

    def flush() -> None:
        for model, p in latest.items():
            if model in bars:
                frac, text = _progress_text(p)
                bars[model].progress(frac, text=text)
        latest.clear()

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(compute_many, refs, opts, events.put, 2)
        last_draw = 0.0
        while True:
            try:
                p = events.get(timeout=0.05)
                latest[p.model] = p
            except queue.Empty:
                if future.done():
                    break
            if time.monotonic() - last_draw > 0.2:
                flush()
                last_draw = time.monotonic()
        while not events.empty():
            p = events.get_nowait()
            latest[p.model] = p
        flush()
        outcomes = future.result()

    elapsed = time.monotonic() - started
    fps, runs = st.session_state["fps"], st.session_state["runs"]
    failed = 0
    for ref, out in zip(refs, outcomes, strict=True):
        if out.fingerprint is not None:
            fps[ref] = out.fingerprint
            runs[ref] = {"status": "from cache" if out.cached else "computed", "message": "", "kind": ""}
            frac, text = (1.0, f"{label_of(ref)}: from the cache, nothing read") if out.cached else (
                1.0,
                f"{label_of(ref)}: done, {human_bytes(out.fingerprint.bytes_read)} read ({out.fingerprint.mode} mode)",
            )
            bars[ref].progress(frac, text=text)
        else:
            failed += 1
            fps.pop(ref, None)
            err = out.error
            runs[ref] = {"status": "failed", "message": str(err), "kind": getattr(err, "kind", "error")}
            bars[ref].progress(1.0, text=f"{label_of(ref)}: failed - {err}")
    ok = len(refs) - failed
    summary = f"{ok} of {len(refs)} fingerprinted in {elapsed:.1f} s" + (f", {failed} failed" if failed else "")
    status.update(label=summary, state="error" if ok == 0 else "complete", expanded=bool(failed))
    return outcomes


def caveat_box() -> None:
    from fingerprint.export import GENERAL_CAVEAT

    st.warning(GENERAL_CAVEAT, icon=":material/warning:")

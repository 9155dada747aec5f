"""Lineage evidence in a visitor's session: probes and verdicts for pairs of models, or a stress test, in a
background run (dashboard/runs.py) that a click elsewhere does not stop - its Stop button does.

Session keys: probes {model key: Probe}, verdicts {(key A, key B): Verdict}, lineage_failed {(key A, key B) or key:
message}, stress {model, report, seconds}, lineage_run (the current LineageRun), lineage_error. The worker never
touches st.session_state; the page copies its results in with collect_finished_lineage().
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import streamlit as st

from dashboard import state
from dashboard.runs import LineageRun
from dashboard.state import session_options, settings, visitor, when_session_ends
from fingerprint import Options
from fingerprint.lineage.cost import ProbeCost, probe_cost
from fingerprint.present.tables import missing_pairs

log = logging.getLogger("llm_fingerprint.dashboard")


def lineage_run() -> LineageRun | None:
    return st.session_state.get("lineage_run")


def lineage_running() -> bool:
    t = lineage_run()
    return t is not None and not t.done


def _pairs_worker(pairs: list[tuple[str, str]], names: dict[str, str], probes: dict, fps: dict, opts: Options):
    """Probes (once per model), then a verdict per pair. Returns {probes, verdicts, failed}."""
    from fingerprint.lineage.evidence import PairsStep, verdicts

    def work(task: LineageRun) -> dict:
        def show(step: PairsStep) -> None:
            if step.stage == "weighing":
                a, b = step.pair
                task.status = (
                    f"Weighing the evidence: {names[a]} vs {names[b]} ({step.index + 1} of {step.total} pairs)"
                )
                return
            p = step.progress
            reading = f"Reading a sample of {names[step.model]}'s weights ({step.index + 1} of {step.total} models)"
            task.status = (
                f"{names[step.model]}: {p.message}" if p is not None and p.stage == "rate_limited" else reading
            )

        run = verdicts(
            pairs,
            dataclasses.replace(opts, cancel=task.cancel),
            probes=probes,
            fingerprints=fps,
            names=names,
            progress=show,
        )
        failed: dict = {k: f"{names[k]}: {exc}" for k, exc in run.failed_models.items()}
        for (a, b), exc in run.failed_pairs.items():
            failed[(a, b)] = failed.get(a) or failed.get(b) or f"{names[a]} vs {names[b]}: {type(exc).__name__}: {exc}"
        return {"probes": run.probes, "verdicts": run.verdicts, "failed": failed}

    return work


PROBE_KEEP_BYTES = 32 << 20  # probes kept in the session's memory up to this size (the demo's are a few MB)


def start_lineage(kind: str, fn: Callable[[LineageRun], object]) -> LineageRun:
    """Start a lineage run; wait a moment so quick ones (the demo models) show their result at once."""
    t = LineageRun(kind, fn, visitor=visitor()).start()
    st.session_state["lineage_run"] = t
    when_session_ends("lineage_run", t.cancel.set)
    if t.wait(state.GRACE_SECONDS):
        collect_finished_lineage()
    return t


def start_pairs(pairs: list[tuple[str, str]], names: dict[str, str]) -> LineageRun | None:
    if not pairs or lineage_running():
        return None
    probes = dict(st.session_state.setdefault("probes", {}))
    fps = dict(st.session_state.get("fps", {}))
    return start_lineage("pairs", _pairs_worker(pairs, names, probes, fps, session_options()))


def collect_finished_lineage() -> None:
    """Copy a finished lineage run's results into the session (script thread only)."""
    t = lineage_run()
    if t is None or t.collected or not t.done:
        return
    t.collected = True
    if t.error is not None:
        st.session_state["lineage_error"] = f"{type(t.error).__name__}: {t.error}"
        return
    st.session_state.pop("lineage_error", None)
    if t.result is None:
        return
    if t.kind == "pairs":
        # keep small probes for the next pair; big ones come back from the disk cache (get_probe) when needed
        keep = {k: p for k, p in t.result["probes"].items() if p.memory_bytes <= PROBE_KEEP_BYTES}
        st.session_state.setdefault("probes", {}).update(keep)
        st.session_state.setdefault("verdicts", {}).update(t.result["verdicts"])
        st.session_state.setdefault("lineage_failed", {}).update(t.result["failed"])
    elif t.kind == "stress":
        st.session_state["stress"] = {**t.result, "seconds": t.seconds}
    elif t.kind == "scan":
        st.session_state["scan_result"] = t.result


def probes_cost(keys: list[str]) -> ProbeCost:
    """What reading the probes of these models (those not in memory or in the probe cache) will cost."""
    fps = st.session_state.get("fps", {})
    have = st.session_state.get("probes", {}).keys()
    return probe_cost({k: fps[k] for k in keys if k in fps}, have, session_options())


AUTO_MAX_MODELS = 12  # more models than this: the verdicts of every pair wait for a click (N^2/2 pairs)


def start_verdicts_when_cheap(keys: list[str], names: dict[str, str]) -> bool:
    """Start the verdicts of the pairs of ``keys`` not computed yet, without a click, when that is cheap (every
    probe cached or read from this machine's disk within the server's FINGERPRINT_AUTO_LINEAGE_MB, at most
    AUTO_MAX_MODELS models). Once per set of models: a Stop is not undone by the next rerun. True if started."""
    failed = st.session_state.setdefault("lineage_failed", {})
    todo = missing_pairs(keys, st.session_state.setdefault("verdicts", {}), skip=set(failed))
    if not todo or lineage_running() or len(keys) > AUTO_MAX_MODELS:
        return False
    auto_key = tuple(sorted(keys))
    if st.session_state.get("verdicts_auto") == auto_key:
        return False
    if not probes_cost(keys).cheap(settings().auto_lineage_mb * 1_000_000):
        return False
    st.session_state["verdicts_auto"] = auto_key
    return start_pairs(todo, names) is not None

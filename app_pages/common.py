"""What the dashboard's pages share: session state, settings, background runs with a Stop button, share links.

Session state (plain keys, so they survive pages whose widgets are not rendered; each visitor has their own,
nothing is global but the fingerprint cache on disk):
  fps       dict[str, Fingerprint]  model key -> fingerprint, in the order they were added
  runs      dict[str, dict]         model key -> {status, message, kind}; status computed|from cache|failed|cancelled
  job       app_pages.jobs.Job          the current or last run (a background thread; see app_pages/jobs.py)
  uploads   dict[str, dict]         saved upload path -> {name (unique in the session), original, size}
  hf_token  str                     a Hugging Face token for this browser session only (never shown or exported)
  role, order, curve_mode, compare_models, pair_a, pair_b: the Compare page's choices (pair_*: model keys)
  link_applied, view_sig, link_adopt, link_notes: share-link bookkeeping (see apply_link / sync_link)

A model key is the reference as typed, except demo models (their absolute path, also for ``demo:<name>``)
and uploads (the saved file's path).
"""

from __future__ import annotations

import dataclasses
import logging

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from app_pages.jobs import Job, Line, Task, queue_words
from app_pages.session_end import SESSION_ENDS
from fingerprint import Options, Store
from fingerprint.demo import demo_name, demo_reference, resolve_demo_reference
from fingerprint.errors import Cancelled
from fingerprint.export import (
    LINK_KEYS,
    LinkView,
    human_bytes,
    link_params,
    link_signature,
    parse_link,
    shareable_reference,
)
from fingerprint.settings import Settings, UploadFolder, shared_mode_refusal
from fingerprint.store import default_path


def _import_figure_libraries() -> None:
    """Import pandas and plotly's lazily imported parts once, while this module is being imported.

    Plotly imports pandas (and more) on a figure's first use; visitors whose first page views run at the same
    moment then import pandas in several script threads at once, and some get "partially initialized module
    'pandas'" and a blank page (seen with eight visitors running the demo together). Python's import lock makes
    every other session wait here until this module, and so these imports, are complete.
    """
    import pandas  # noqa: F401
    import plotly.graph_objects as go

    go.Figure(go.Heatmap(z=[[0.0]], colorbar={"tickvals": [0.0]}), layout={"title": "warm-up"}).to_plotly_json()


_import_figure_libraries()

log = logging.getLogger("llm_fingerprint.dashboard")

PAGES = {
    "home": "app_pages/home.py",
    "models": "app_pages/models.py",
    "compare": "app_pages/compare.py",
    "export": "app_pages/export.py",
    "stress": "app_pages/stress.py",
}
URL_PATHS = {"home": "", "models": "models", "compare": "compare", "export": "export", "stress": "stress"}
GRACE_SECONDS = 1.5  # a run that finishes this fast shows its result at once, without a progress panel
POLL_SECONDS = 0.5


def init_state() -> None:
    st.session_state.setdefault("fps", {})
    st.session_state.setdefault("runs", {})
    st.session_state.setdefault("uploads", {})


def visitor() -> str:
    """This browser session's id: whose turn a computation is on a shared server (app_pages/turns.py)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def when_session_ends(name: str, undo) -> None:
    """Run ``undo()`` once this visitor's session has ended (tab closed, not reconnected): see session_end.py."""
    SESSION_ENDS.on_end(visitor(), name, undo, ttl=float(st.get_option("server.disconnectedSessionTTL")))


def settings() -> Settings:
    """Read on every script run (cheap): the environment, with secrets already applied by app.py."""
    return Settings.from_env()


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The persistent fingerprint cache (FINGERPRINT_CACHE or ~/.cache/llm-fingerprint), one per path."""
    return _store(str(default_path()))


def fingerprints() -> list:
    return list(st.session_state.get("fps", {}).values())


def persist(widget_key: str, key: str, default):
    """Seed a widget from a plain session key (widget keys vanish when their page is not shown)."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = st.session_state.get(key, default)


def save(widget_key: str, key: str) -> None:
    st.session_state[key] = st.session_state[widget_key]


def label_of(key: str) -> str:
    """A short name: the upload's file name, the demo model's name, else the reference."""
    up = st.session_state.get("uploads", {}).get(key)
    if up:
        return up["name"]
    return demo_name(key) or key


def reference_shown(key: str) -> str:
    """The reference as shown to the visitor: never a server path for uploads or demo models."""
    if key in st.session_state.get("uploads", {}):
        return "(uploaded file)"
    return demo_reference(key) or key


def job() -> Job | None:
    return st.session_state.get("job")


def job_running() -> bool:
    j = job()
    return j is not None and not j.harvested


# ---------------------------------------------------------------- uploads


def upload_folder() -> UploadFolder:
    if "upload_folder" not in st.session_state:
        folder = st.session_state["upload_folder"] = UploadFolder()
        when_session_ends("uploads", folder.cleanup)
    return st.session_state["upload_folder"]


def allowed_roots() -> list:
    folder = st.session_state.get("upload_folder")
    return [folder.path] if folder is not None else []


# ---------------------------------------------------------------- starting and finishing runs


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


def session_options(mode: str = "auto") -> Options:
    """Options for a run started by this visitor: their token (or the server's), the cache, the server's caps."""
    s = settings()
    return Options(
        mode=mode,
        token=s.token_for(st.session_state.get("hf_token")),
        store=get_store(),
        max_exact_bytes=s.max_exact_mb * 1_000_000 or None,
    )


def start_job(keys: list[str], *, mode: str = "auto", then: str | None = None) -> Job | None:
    """Start fingerprinting in the background; wait a moment so quick runs show their result at once."""
    if not keys:
        return None
    j = Job([(k, k) for k in keys], session_options(mode), then=then, visitor=visitor()).start()
    st.session_state["job"] = j
    when_session_ends("job", j.stop)
    if j.wait(GRACE_SECONDS):
        harvest()
    return j


def harvest() -> None:
    """Copy a finished job's outcomes into the session (script thread only); say what happened."""
    j = job()
    if j is None or j.harvested or not j.done:
        return
    j.harvested = True
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


def summary_text(j: Job, c: dict[str, int]) -> str:
    n = len(j.items)
    text = f"{c['ok']} of {n} model{'s' if n != 1 else ''} fingerprinted in {j.seconds:.1f} s"
    if c["failed"]:
        text += f", {c['failed']} failed"
    if c["cancelled"]:
        text += f", {c['cancelled']} cancelled"
    return text


def _line_text(line: Line, stopping: bool) -> str:
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
def _job_fragment() -> None:
    j = job()
    if j is None or j.harvested:
        return
    if j.done:
        st.rerun()  # the whole app: harvest, then show the results
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
            st.progress(line.fraction, text=_line_text(line, j.stopping))
        st.button(
            "Stop",
            key="stop_job",
            icon=":material/stop_circle:",
            on_click=j.stop,
            disabled=j.stopping,
            help="Stop reading: the models already done stay, the others are marked 'cancelled'. "
            "A model stops between two reads, so it can take a second.",
        )


def job_panel() -> None:
    """The running job's progress and its Stop button, polled every half second; nothing when idle."""
    if job_running():
        _job_fragment()


# ---------------------------------------------------------------- share links


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
    for w in ("w_compare_models", "w_role", "w_order", "w_curve_mode", "w_pair_a", "w_pair_b"):
        st.session_state.pop(w, None)
    st.session_state["link_notes"] = notes
    st.session_state["link_adopt"] = True
    missing = [k for k in keys if k not in st.session_state["fps"]]
    if missing and not job_running():
        start_job(missing, mode="auto", then="restore")
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
    )
    return view, left_out


def sync_link(chosen: list[str]) -> None:
    """Keep the URL's query parameters equal to the Compare view, so the address bar is always a share link.

    A link just opened stays as it was (even listing models that could not be restored) until the visitor
    changes the view; while it is being restored nothing is written.
    """
    j = job()
    if j is not None and not j.harvested and j.then == "restore":
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


def caveat_box() -> None:
    from fingerprint.export import GENERAL_CAVEAT

    st.warning(GENERAL_CAVEAT, icon=":material/warning:")


def log_settings_problems(s: Settings, server_max_mb: int | None) -> None:
    """Deployment mistakes go to the server log once per process, never to visitors."""
    if st.session_state.get("_settings_logged"):
        return
    st.session_state["_settings_logged"] = True
    for p in [*s.problems, *s.consistency_problems(server_max_mb)]:
        if p not in _LOGGED:
            _LOGGED.add(p)
            log.warning("settings: %s", p)


_LOGGED: set[str] = set()


# ---------------------------------------------------------------- lineage evidence (probes, verdicts, stress test)
#
# Session keys: probes {model key: Probe}, verdicts {(key A, key B): Verdict}, lineage_failed {(key A, key B) or key:
# message}, stress {model, report, seconds}, lineage_task (the current Task). A Task is a background thread like Job:
# a click elsewhere does not stop it, its Stop button does; the worker never touches st.session_state, the page
# copies its results in with harvest_lineage().


def lineage_task() -> Task | None:
    return st.session_state.get("lineage_task")


def lineage_running() -> bool:
    t = lineage_task()
    return t is not None and not t.done


def _pairs_worker(pairs: list[tuple[str, str]], names: dict[str, str], probes: dict, fps: dict, opts: Options):
    """Probes (once per model), then a verdict per pair. Returns {probes, verdicts, failed}."""
    from fingerprint.lineage.evidence import PairsStep, verdicts

    def work(task: Task) -> dict:
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


def start_lineage(kind: str, fn) -> Task:
    """Start a lineage task; wait a moment so quick ones (the demo models) show their result at once."""
    t = Task(kind, fn, visitor=visitor()).start()
    st.session_state["lineage_task"] = t
    when_session_ends("lineage", t.cancel.set)
    if t.wait(GRACE_SECONDS):
        harvest_lineage()
    return t


def start_pairs(pairs: list[tuple[str, str]], names: dict[str, str]) -> Task | None:
    if not pairs or lineage_running():
        return None
    probes = dict(st.session_state.setdefault("probes", {}))
    fps = dict(st.session_state.get("fps", {}))
    return start_lineage("pairs", _pairs_worker(pairs, names, probes, fps, session_options()))


def harvest_lineage() -> None:
    """Copy a finished lineage task's results into the session (script thread only)."""
    t = lineage_task()
    if t is None or t.harvested or not t.done:
        return
    t.harvested = True
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


@st.fragment(run_every=POLL_SECONDS)
def _lineage_fragment(kind: str) -> None:
    t = lineage_task()
    if t is None or t.harvested:
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
    """The running lineage task's progress and Stop button (only on the page of its kind)."""
    t = lineage_task()
    if t is not None and not t.harvested and t.kind == kind:
        _lineage_fragment(kind)

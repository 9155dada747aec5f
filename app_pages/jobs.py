"""Fingerprinting runs and lineage tasks in background threads that outlive the script run which started them.

No streamlit here. Why a thread of its own: Streamlit stops the running script whenever the visitor
interacts with the page (that is how a click is noticed at all), so a computation that lived inside
the script run could neither be stopped by a button nor survive a click elsewhere. The dashboard
keeps a ``Job`` in ``st.session_state``, polls it from an ``st.fragment(run_every=...)``, and its
Stop button sets ``job.cancel`` - the event the core checks between read jobs (``Options.cancel``).

The worker only writes into this object (under a lock); the script thread copies the outcomes into
the session state when the job is done (``Job.harvested``).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Self

from app_pages.turns import TURNS, Turns
from fingerprint.errors import Cancelled

core = importlib.import_module("fingerprint.fingerprinting")


@dataclass
class Line:
    """One model's progress, as the panel shows it."""

    key: str
    fraction: float
    stage: str  # waiting | queued | resolving | headers | reading | rate_limited | done | cached | failed | cancelled
    bytes_done: int = 0
    bytes_needed: int = 0
    mode: str | None = None
    message: str = ""  # rate_limited: the wait, in words
    ahead: int = 0  # queued: computations on this server that start before this one


def progress_fraction(p: core.Progress) -> float:
    """How far along a model is, for its progress bar."""
    if p.stage == "reading":
        return 0.05 + 0.95 * min(1.0, p.bytes_done / p.bytes_needed) if p.bytes_needed else 0.05
    return {"resolving": 0.02, "headers": 0.05}.get(p.stage, 1.0 if p.stage in ("done", "cached") else 0.0)


def queue_words(ahead: int) -> str:
    """A place in the server's queue, in words."""
    if ahead == 0:
        return "next in line"
    return f"{ahead} computation{'s' if ahead != 1 else ''} ahead"


class Background:
    """A computation in a daemon thread: ``_body()`` runs once; ``done``, ``wait`` and ``seconds`` are what
    the page polls. Subclasses keep what their panel shows."""

    def __init__(self, name: str) -> None:
        self.started = time.monotonic()
        self.finished: float | None = None
        self.harvested = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _body(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            self._body()
        finally:
            self.finished = time.monotonic()
            self._done.set()

    def start(self) -> Self:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class Task(Background):
    """One lineage computation (probes and verdicts, or a stress test): ``fn(task)`` returns the result;
    ``task.status`` is the line the panel shows; an exception is kept for the page to show."""

    def __init__(self, kind: str, fn: Callable[[Task], object], *, visitor: str = "", turns: Turns = TURNS) -> None:
        super().__init__(f"lineage-{kind}")
        self.kind = kind  # "pairs" | "stress"
        self.status = "starting"
        self.cancel = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self._fn = fn
        self._visitor = visitor
        self._turns = turns

    def _queued(self, ahead: int) -> None:
        self.status = f"Waiting for its turn on this shared server ({queue_words(ahead)})"

    def _body(self) -> None:
        try:
            with self._turns.turn(self._visitor, self.cancel, self._queued):
                self.status = "starting"
                self.result = self._fn(self)
        except Cancelled:
            self.result = None  # stopped before its turn came: nothing to show
        except BaseException as exc:
            self.error = exc


class Job(Background):
    def __init__(
        self,
        items: list[tuple[str, str]],
        options: core.Options,
        *,
        then: str | None = None,
        parallel: int = 2,
        visitor: str = "",
        turns: Turns = TURNS,
    ) -> None:
        """``items``: (key in the session, reference given to the core) per model, in order; ``visitor``: whose
        job this is, for ``turns`` (each model takes its turn among every visitor's computations)."""
        super().__init__("fingerprint-job")
        self.items = list(items)
        self.options = options
        self.cancel = options.cancel if options.cancel is not None else threading.Event()
        self.options.cancel = self.cancel
        self.then = then  # what the dashboard does when the job is harvested: "compare", "restore" or None
        self.parallel = max(1, parallel)
        self.outcomes: dict[str, core.Outcome] = {}
        self._latest: dict[str, core.Progress] = {}
        self._rate_limited: dict[str, core.Progress] = {}  # a wait for the Hub's rate limit, until the next progress
        self._queued: dict[str, int] = {}  # key -> computations that start before it (while it waits for its turn)
        self._visitor = visitor
        self._turns = turns
        self._by_ref = {ref.strip(): key for key, ref in self.items}
        self._lock = threading.Lock()

    # ---- control
    def stop(self) -> None:
        """Ask the worker to stop: models not finished come back as 'cancelled'; finished ones stay."""
        self.cancel.set()

    @property
    def stopping(self) -> bool:
        return self.cancel.is_set() and not self.done

    # ---- worker
    def _progress(self, p: core.Progress) -> None:
        key = self._by_ref.get(p.model)
        if key is not None:
            with self._lock:
                if p.stage == "rate_limited":
                    self._rate_limited[key] = p
                else:
                    self._rate_limited.pop(key, None)
                    self._latest[key] = p

    def _wait(self, key: str, ahead: int) -> None:
        with self._lock:
            self._queued[key] = ahead

    def _one(self, key: str, ref: str) -> None:
        try:
            with self._turns.turn(self._visitor, self.cancel, lambda ahead: self._wait(key, ahead)):
                with self._lock:
                    self._queued.pop(key, None)
                if self.cancel.is_set():
                    raise Cancelled("cancelled before it started")
                out = core.compute(ref, self.options, self._progress)
        except Cancelled as exc:
            out = core.Outcome(ref, error=Cancelled(exc.problem, model=ref))
        with self._lock:
            self._queued.pop(key, None)
            self.outcomes[key] = out

    def _body(self) -> None:
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="fingerprint") as pool:
            for f in [pool.submit(self._one, key, ref) for key, ref in self.items]:
                f.result()

    # ---- what the panel shows
    def lines(self) -> list[Line]:
        with self._lock:
            latest = dict(self._latest)
            waits = dict(self._rate_limited)
            queued = dict(self._queued)
            outcomes = dict(self.outcomes)
        out = []
        for key, _ in self.items:
            o = outcomes.get(key)
            if o is not None:
                if o.fingerprint is not None:
                    fp = o.fingerprint
                    stage = "cached" if o.cached else "done"
                    out.append(Line(key, 1.0, stage, fp.bytes_read, fp.bytes_read, fp.mode))
                else:
                    stage = "cancelled" if isinstance(o.error, Cancelled) else "failed"
                    out.append(Line(key, 1.0, stage))
                continue
            if key in queued:
                out.append(Line(key, 0.0, "queued", ahead=queued[key]))
                continue
            p = latest.get(key)
            if key in waits:
                frac = progress_fraction(p) if p is not None else 0.0
                out.append(Line(key, frac, "rate_limited", message=waits[key].message))
                continue
            if p is None:
                out.append(Line(key, 0.0, "waiting"))
                continue
            out.append(Line(key, progress_fraction(p), p.stage, p.bytes_done, p.bytes_needed, p.mode))
        return out

    def counts(self) -> dict[str, int]:
        c = {"ok": 0, "failed": 0, "cancelled": 0, "running": 0}
        for line in self.lines():
            if line.stage in ("done", "cached"):
                c["ok"] += 1
            elif line.stage in ("failed", "cancelled"):
                c[line.stage] += 1
            else:
                c["running"] += 1
        return c

"""Fingerprinting runs and lineage runs in the background, on ``concurrent.futures``: they outlive the script run
which started them.

No streamlit here. Why in the background: Streamlit stops the running script whenever the visitor interacts
with the page (that is how a click is noticed at all), so a computation that lived inside the script run could
neither be stopped by a button nor survive a click elsewhere. The dashboard keeps a run in ``st.session_state``,
polls it from an ``st.fragment(run_every=...)``, and its Stop button sets ``run.cancel`` - the event the core
checks between reads (``Options.cancel``).

Each run owns the futures of an executor of its own (one future per model, or one for a lineage run) and frees
its threads when they are done. The workers only write into the run (under a lock); the script thread copies
the results into the session state once the run is done, and marks it ``collected``.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

from dashboard.turns import TURNS, Turns
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


class _Timed:
    """When a run started and, once all its futures are done, when it finished."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.finished: float | None = None
        self.collected = False  # the script thread has copied the results into the session
        self._futures: list[Future[Any]] = []

    def _submit(self, pool: ThreadPoolExecutor, fn: Callable[..., object], *args: object) -> None:
        f = pool.submit(fn, *args)
        self._futures.append(f)
        f.add_done_callback(self._on_future_done)

    def _on_future_done(self, _: Future[Any]) -> None:
        if self.done and self.finished is None:
            self.finished = time.monotonic()

    @property
    def done(self) -> bool:
        return bool(self._futures) and all(f.done() for f in self._futures)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the run is done (True) or ``timeout`` seconds have passed (False)."""
        return not futures.wait(self._futures, timeout).not_done

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class LineageRun(_Timed):
    """One lineage computation (probes and verdicts, or a stress test): ``fn(run)`` returns the result;
    ``run.status`` is the line the panel shows; an exception is kept for the page to show."""

    def __init__(
        self, kind: str, fn: Callable[[LineageRun], object], *, visitor: str = "", turns: Turns = TURNS
    ) -> None:
        super().__init__()
        self.kind = kind  # "pairs" | "stress"
        self.status = "starting"
        self.cancel = threading.Event()
        self._fn = fn
        self._visitor = visitor
        self._turns = turns

    def start(self) -> Self:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lineage-{self.kind}")
        self._submit(pool, self._run)
        pool.shutdown(wait=False)
        return self

    def _queued(self, ahead: int) -> None:
        self.status = f"Waiting for its turn on this shared server ({queue_words(ahead)})"

    def _run(self) -> object:
        try:
            with self._turns.turn(self._visitor, self.cancel, self._queued):
                self.status = "starting"
                return self._fn(self)
        except Cancelled:
            return None  # stopped before its turn came: nothing to show

    @property
    def result(self) -> Any:
        """What ``fn`` returned (None until done, when stopped before its turn, or when it failed)."""
        f = self._futures[0]
        return f.result() if f.done() and f.exception() is None else None

    @property
    def error(self) -> BaseException | None:
        f = self._futures[0]
        return f.exception() if f.done() else None


class FingerprintRun(_Timed):
    """Fingerprinting a visitor's models, ``parallel`` at a time, each taking its turn on the server."""

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
        run this is, for ``turns`` (each model takes its turn among every visitor's computations)."""
        super().__init__()
        self.items = list(items)
        self.options = options
        self.cancel = options.cancel if options.cancel is not None else threading.Event()
        self.options.cancel = self.cancel
        self.then = then  # what the dashboard does once the run is collected: "compare", "restore" or None
        self.parallel = max(1, parallel)
        self.outcomes: dict[str, core.Outcome] = {}
        self._latest: dict[str, core.Progress] = {}
        self._rate_limited: dict[str, core.Progress] = {}  # a wait for the Hub's rate limit, until the next progress
        self._queued: dict[str, int] = {}  # key -> computations that start before it (while it waits for its turn)
        self._visitor = visitor
        self._turns = turns
        self._by_ref = {ref.strip(): key for key, ref in self.items}
        self._lock = threading.Lock()

    def start(self) -> Self:
        pool = ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="fingerprint")
        for key, ref in self.items:
            self._submit(pool, self._one, key, ref)
        pool.shutdown(wait=False)
        return self

    # ---- control
    def stop(self) -> None:
        """Ask the workers to stop: models not finished come back as 'cancelled'; finished ones stay."""
        self.cancel.set()

    @property
    def stopping(self) -> bool:
        return self.cancel.is_set() and not self.done

    # ---- workers
    def record_progress(self, p: core.Progress) -> None:
        """The core's progress callback (any worker thread)."""
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
                out = core.compute(ref, self.options, self.record_progress)
        except Cancelled as exc:
            out = core.Outcome(ref, error=Cancelled(exc.problem, model=ref))
        with self._lock:
            self._queued.pop(key, None)
            self.outcomes[key] = out

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

"""A shared server's turns (at most N computations at once, served visitor by visitor) and what a session leaves
behind when it ends. Real threads; every wait is on an event, never on a sleep."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conftest import FIXTURES  # noqa: E402

from dashboard.runs import FingerprintRun, LineageRun  # noqa: E402
from dashboard.session_end import SessionEnds  # noqa: E402
from dashboard.turns import Turns  # noqa: E402
from fingerprint import Options  # noqa: E402
from fingerprint.errors import Cancelled  # noqa: E402

WAIT = 30


def eventually(condition) -> bool:
    """True once ``condition()`` holds (checked every 20 ms, for up to WAIT seconds)."""
    done = threading.Event()
    for _ in range(int(WAIT / 0.02)):
        if condition():
            return True
        done.wait(0.02)
    return False


class Computation:
    """A thread that takes its turn, records when it got in, and stays inside until released."""

    def __init__(self, turns: Turns, visitor: str, log: list[str], name: str) -> None:
        self.name = name
        self.places: list[int] = []
        self.queued = threading.Event()
        self.inside = threading.Event()
        self.release = threading.Event()
        self.cancel = threading.Event()
        self.error: BaseException | None = None
        self._turns, self._visitor, self._log = turns, visitor, log
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_wait(self, ahead: int) -> None:
        self.places.append(ahead)
        self.queued.set()

    def _run(self) -> None:
        try:
            with self._turns.turn(self._visitor, self.cancel, self._on_wait):
                self._log.append(self.name)
                self.inside.set()
                assert self.release.wait(WAIT)
        except BaseException as exc:
            self.error = exc
            self.queued.set()

    def finish(self) -> None:
        self.release.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive()


def test_no_more_than_the_limit_run_at_once_and_a_freed_turn_goes_to_the_next():
    turns, log = Turns(limit=2), []
    a = Computation(turns, "v1", log, "a")
    b = Computation(turns, "v2", log, "b")
    assert a.inside.wait(WAIT) and b.inside.wait(WAIT)
    c = Computation(turns, "v3", log, "c")
    assert c.queued.wait(WAIT)
    assert not c.inside.is_set() and turns.running == 2 and turns.waiting == 1
    assert c.places == [0]  # next in line
    a.finish()
    assert c.inside.wait(WAIT)
    b.finish()
    c.finish()
    assert turns.running == 0 and turns.waiting == 0


def test_one_visitors_many_models_do_not_starve_another_visitors_one():
    turns, log = Turns(limit=1), []
    first = Computation(turns, "busy", log, "busy-1")
    assert first.inside.wait(WAIT)
    queued = []
    for i in (2, 3, 4):  # the busy visitor queues three more, one after the other
        queued.append(Computation(turns, "busy", log, f"busy-{i}"))
        assert queued[-1].queued.wait(WAIT)
    other = Computation(turns, "other", log, "other-1")  # arrives last ...
    assert other.queued.wait(WAIT)
    assert other.places == [0]  # ... and is told it is next
    assert eventually(lambda: [q.places[-1] for q in queued] == [1, 2, 3])  # every busy one moved back by one
    first.finish()
    assert other.inside.wait(WAIT)
    other.finish()
    for q in queued:
        assert q.inside.wait(WAIT)
        q.finish()
    assert log == ["busy-1", "other-1", "busy-2", "busy-3", "busy-4"]


def test_stop_ends_a_wait_and_leaves_the_queue_clean():
    turns, log = Turns(limit=1), []
    holder = Computation(turns, "v1", log, "holder")
    assert holder.inside.wait(WAIT)
    waiting = Computation(turns, "v2", log, "waiting")
    assert waiting.queued.wait(WAIT)
    waiting.cancel.set()
    waiting._thread.join(WAIT)
    assert isinstance(waiting.error, Cancelled) and not waiting.inside.is_set()
    assert turns.waiting == 0
    after = Computation(turns, "v3", log, "after")
    assert after.queued.wait(WAIT) and after.places == [0]
    holder.finish()
    assert after.inside.wait(WAIT)
    after.finish()
    assert log == ["holder", "after"]


def test_no_limit_means_nobody_waits():
    turns, log = Turns(limit=0), []
    many = [Computation(turns, "v", log, str(i)) for i in range(5)]
    for c in many:
        assert c.inside.wait(WAIT)
    assert turns.running == 5
    for c in many:
        c.finish()
        assert c.places == []


def test_a_job_shows_its_place_and_stop_cancels_models_still_waiting(tmp_path):
    turns, log = Turns(limit=1), []
    holder = Computation(turns, "someone else", log, "holder")
    assert holder.inside.wait(WAIT)
    model = str(FIXTURES / "stories260k" / "model.safetensors")
    job = FingerprintRun([("m", model)], Options(use_cache=False), visitor="me", turns=turns).start()
    try:
        assert eventually(lambda: job.lines()[0].stage == "queued")
        assert job.lines()[0].ahead == 0
        job.stop()
        assert job.wait(WAIT)
        assert isinstance(job.outcomes["m"].error, Cancelled)
        assert job.counts() == {"ok": 0, "failed": 0, "cancelled": 1, "running": 0}
        assert turns.waiting == 0
    finally:
        holder.finish()


def test_a_lineage_task_waits_for_its_turn_then_runs():
    turns, log = Turns(limit=1), []
    holder = Computation(turns, "someone else", log, "holder")
    assert holder.inside.wait(WAIT)
    ran = threading.Event()
    task = LineageRun(
        "pairs", lambda t: ran.set() or {"probes": {}, "verdicts": {}, "failed": {}}, visitor="me", turns=turns
    )
    task.start()
    try:
        assert eventually(lambda: "turn" in task.status)
        assert task.status == "Waiting for its turn on this shared server (next in line)"
        assert not ran.is_set()
    finally:
        holder.finish()
    assert task.wait(WAIT) and ran.is_set() and task.error is None


class FakeSessions:
    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.now = 0.0


@pytest.fixture
def sessions():
    fake = FakeSessions()
    ends = SessionEnds(is_connected=fake.connected.__contains__, clock=lambda: fake.now)
    return fake, ends


def test_a_session_gone_longer_than_the_ttl_is_ended_once(sessions, tmp_path):
    fake, ends = sessions
    fake.connected |= {"a", "b"}
    undone = []
    ends.on_end("a", "uploads", lambda: undone.append("a-uploads"), ttl=120)
    ends.on_end("a", "job", lambda: undone.append("a-job-old"), ttl=120)
    ends.on_end("a", "job", lambda: undone.append("a-job"), ttl=120)  # replaces the old one
    ends.on_end("b", "uploads", lambda: undone.append("b-uploads"), ttl=120)
    assert ends.sweep() == []
    fake.connected.discard("a")
    fake.now = 10
    assert ends.sweep() == []  # just gone: it may reconnect
    fake.now = 100
    assert ends.sweep() == []
    fake.now = 131
    assert ends.sweep() == ["a"]
    assert undone == ["a-uploads", "a-job"]
    fake.now = 1000
    assert ends.sweep() == [] and undone == ["a-uploads", "a-job"]  # once only; b is still connected


def test_a_session_that_reconnects_within_the_ttl_keeps_its_things(sessions):
    fake, ends = sessions
    undone = []
    ends.on_end("a", "uploads", lambda: undone.append("a"), ttl=60)
    ends.sweep()  # not connected: gone since t=0
    fake.now = 50
    fake.connected.add("a")
    ends.sweep()
    fake.connected.discard("a")
    fake.now = 100
    ends.sweep()  # gone again since t=100
    fake.now = 150
    assert ends.sweep() == [] and undone == []
    fake.now = 161
    assert ends.sweep() == ["a"] and undone == ["a"]


def test_a_failing_clean_up_does_not_stop_the_others(sessions):
    fake, ends = sessions
    undone = []

    def broken() -> None:
        raise OSError("disk gone")

    ends.on_end("a", "uploads", broken, ttl=0)
    ends.on_end("a", "job", lambda: undone.append("job"), ttl=0)
    ends.sweep()
    fake.now = 1
    assert ends.sweep() == ["a"] and undone == ["job"]

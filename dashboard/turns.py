"""Turns on a shared server: at most N computations run at once for all visitors; the others wait, served
visitor by visitor, so that one visitor's eight models cannot starve another visitor's one.

No streamlit here. A computation is one model's fingerprint or one lineage task (probes and verdicts, a stress
test). The dashboard's background threads take a turn with ``TURNS.turn(visitor, cancel, on_wait)`` around the
work; ``on_wait(ahead)`` is told how many computations will start before this one, whenever that changes, so
the page can show the visitor's place in the queue. Stop (``cancel``) ends a wait within a quarter second.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fingerprint.errors import Cancelled

POLL_SECONDS = 0.25  # how soon a waiting computation notices Stop
MAX_REMEMBERED = 4096  # visitors whose latest turn is remembered; idle ones are forgotten beyond this


@dataclass(eq=False)
class _Waiting:
    visitor: str
    arrival: int


class Turns:
    def __init__(self, limit: int = 0) -> None:
        self._limit = limit  # 0: no limit
        self._cond = threading.Condition()
        self._running: Counter[str] = Counter()
        self._waiting: list[_Waiting] = []
        self._arrivals = itertools.count()
        self._served: dict[str, int] = {}  # visitor -> tick of their latest turn
        self._ticks = 0

    def set_limit(self, limit: int) -> None:
        with self._cond:
            if limit != self._limit:
                self._limit = limit
                self._cond.notify_all()

    @property
    def running(self) -> int:
        with self._cond:
            return sum(self._running.values())

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    @contextmanager
    def turn(
        self,
        visitor: str,
        cancel: threading.Event | None = None,
        on_wait: Callable[[int], None] | None = None,
    ) -> Iterator[None]:
        """Wait for this visitor's turn (raises Cancelled if ``cancel`` is set first), run the block, free the slot."""
        self._wait_for_turn(visitor, cancel, on_wait)
        try:
            yield
        finally:
            with self._cond:
                self._running[visitor] -= 1
                if self._running[visitor] <= 0:
                    del self._running[visitor]
                if len(self._served) > MAX_REMEMBERED:
                    busy = set(self._running) | {w.visitor for w in self._waiting}
                    self._served = {v: t for v, t in self._served.items() if v in busy}
                self._cond.notify_all()

    def _queue(self) -> list[_Waiting]:
        """The waiting computations in the order they will start, if nothing finishes meanwhile: a freed turn goes
        to the visitor with the fewest computations running, then to the one served longest ago (or never),
        then to the earliest arrival. So one visitor's many models take turns with everyone else's."""
        running = Counter(self._running)
        served = dict(self._served)
        waiting = list(self._waiting)
        order: list[_Waiting] = []
        tick = self._ticks
        while waiting:
            first: dict[str, _Waiting] = {}
            for w in waiting:
                first.setdefault(w.visitor, w)  # a visitor's own computations start in arrival order
            nxt = min(first.values(), key=lambda w: (running[w.visitor], served.get(w.visitor, -1), w.arrival))
            order.append(nxt)
            waiting.remove(nxt)
            running[nxt.visitor] += 1
            tick += 1
            served[nxt.visitor] = tick
        return order

    def _free(self) -> bool:
        return not self._limit or sum(self._running.values()) < self._limit

    def _wait_for_turn(
        self, visitor: str, cancel: threading.Event | None, on_wait: Callable[[int], None] | None
    ) -> None:
        with self._cond:
            me = _Waiting(visitor, next(self._arrivals))
            self._waiting.append(me)
            self._cond.notify_all()  # a newcomer can go before others: they recount their places
            told = None
            try:
                while True:
                    ahead = self._queue().index(me)
                    if ahead == 0 and self._free():
                        break
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("stopped while waiting for its turn")
                    if on_wait is not None and ahead != told:
                        on_wait(ahead)
                        told = ahead
                    self._cond.wait(POLL_SECONDS)
            except BaseException:
                self._waiting.remove(me)
                self._cond.notify_all()
                raise
            self._waiting.remove(me)
            self._running[visitor] += 1
            self._ticks += 1
            self._served[visitor] = self._ticks
            self._cond.notify_all()  # the others' places in the queue changed


TURNS = Turns()  # one per server process: every visitor's session shares it

"""The one interface every format parser reads through: random access to a file's bytes."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from ..errors import Cancelled, DeadlineExceeded
from .ratelimit import RateLimitWait

WaitFn = Callable[[RateLimitWait], None]


class ReadContext:
    """What every read of one model shares, whichever file it is in: the bytes and requests counted,
    an overall deadline, a cancel flag, and where to report a wait (the Hub's rate limit). Thread-safe.

    The deadline covers the whole model, not one read: a server that trickles bytes cannot hold a
    run forever by sending a little before each read's own timeout. Time spent waiting for the rate
    limit does not count against it (the wait is shown, and Stop ends it)."""

    def __init__(
        self,
        *,
        deadline: float | None = None,
        cancel: threading.Event | None = None,
        on_wait: WaitFn | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.requests = 0
        self.deadline = deadline  # seconds for the whole model; None: no limit
        self.cancel = cancel
        self.on_wait = on_wait
        self._started = time.monotonic()
        self._excused = 0.0  # seconds spent waiting for the rate limit
        self.slowest: tuple[str, float] = ("", 0.0)  # file and seconds of the longest single read

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes
            self.requests += 1

    def excuse(self, seconds: float) -> None:
        """Time that does not count against the deadline (waiting for the rate limit)."""
        with self._lock:
            self._excused += seconds

    def time_left(self) -> float | None:
        if self.deadline is None:
            return None
        return self.deadline - (time.monotonic() - self._started - self._excused)

    def note_read(self, name: str, seconds: float) -> None:
        with self._lock:
            if seconds > self.slowest[1]:
                self.slowest = (name, seconds)

    def check(self, name: str) -> None:
        """Raise Cancelled or DeadlineExceeded (naming ``name``, the file being read) if either applies."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")
        left = self.time_left()
        if left is not None and left <= 0:
            slow, secs = self.slowest
            detail = f"; the slowest read took {secs:.0f} s ({slow})" if slow and secs >= 1 else ""
            raise DeadlineExceeded(
                f"gave up reading {name} after the {self.deadline:g} s deadline "
                f"({self.bytes / 1e6:.1f} MB in {self.requests} requests{detail})"
            )

    def waiting(self, wait: RateLimitWait) -> None:
        if self.on_wait is not None:
            self.on_wait(wait)


class ByteSource(ABC):
    """A file of known size; ``read`` returns exactly the bytes asked for or raises."""

    name: str  # the file's name inside its model (for messages)
    size: int
    max_parallel = 1  # how many reads of this source may run at once

    def __init__(self, context: ReadContext | None = None) -> None:
        self.context = context or ReadContext()
        self._kept: tuple[int, bytes] | None = None

    def keep(self, offset: int, data: bytes) -> None:
        """Remember bytes already fetched (e.g. read ahead past a header) so they are not fetched twice."""
        self._kept = (offset, data) if data else None

    def read(self, offset: int, length: int) -> bytes:
        if self._kept is not None:
            start, data = self._kept
            if start <= offset and offset + length <= start + len(data):
                return data[offset - start : offset - start + length]
        self.context.check(self.name)
        return self.fetch(offset, length)

    @abstractmethod
    def fetch(self, offset: int, length: int) -> bytes:
        """Read exactly ``length`` bytes at ``offset`` from the file itself, counting them."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

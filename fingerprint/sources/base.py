"""The one interface every format parser reads through: random access to a file's bytes."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod


class ReadCounter:
    """Bytes and requests that reached a file; shared by all files of one model, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.requests = 0

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes
            self.requests += 1


class ByteSource(ABC):
    """A file of known size; ``read`` returns exactly the bytes asked for or raises."""

    name: str  # the file's name inside its model (for messages)
    size: int
    max_parallel = 1  # how many reads of this source the statistics may run at once

    def __init__(self, counter: ReadCounter | None = None) -> None:
        self.counter = counter or ReadCounter()
        self._kept: tuple[int, bytes] | None = None

    def keep(self, offset: int, data: bytes) -> None:
        """Remember bytes already fetched (e.g. read ahead past a header) so they are not fetched twice."""
        self._kept = (offset, data) if data else None

    def read(self, offset: int, length: int) -> bytes:
        if self._kept is not None:
            start, data = self._kept
            if start <= offset and offset + length <= start + len(data):
                return data[offset - start : offset - start + length]
        return self.fetch(offset, length)

    @abstractmethod
    def fetch(self, offset: int, length: int) -> bytes:
        """Read exactly ``length`` bytes at ``offset`` from the file itself, counting them."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

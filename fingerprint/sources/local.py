"""Local files read with positioned reads: nothing is loaded whole, memory stays bounded."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import CorruptFile
from .base import ByteSource, ReadContext


class LocalFile(ByteSource):
    max_parallel = 2

    def __init__(self, path: Path, context: ReadContext | None = None, name: str | None = None) -> None:
        super().__init__(context)
        self.path = Path(path)
        self.name = name or self.path.name
        # O_NONBLOCK: opening a FIFO or a device named like a weight file must not wait for a writer
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        st = os.fstat(self._fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(self._fd)
            self._fd = -1
            raise CorruptFile(f"{self.name} is not a regular file (a pipe, a device or a socket)")
        self.size = st.st_size

    def fetch(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise CorruptFile(
                f"{self.name}: read of {length} bytes at {offset} is beyond the end of the file ({self.size} bytes)"
            )
        chunks = []
        got = 0
        while got < length:
            chunk = os.pread(self._fd, length - got, offset + got)
            if not chunk:
                raise CorruptFile(f"{self.name}: file ended early (truncated while reading?)")
            chunks.append(chunk)
            got += len(chunk)
        self.context.add(length)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

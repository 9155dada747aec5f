"""The one read engine: many ranges of a model's files, fetched concurrently with bounded memory.

Fingerprints (stats.py) and probes (lineage/probe.py) both read through ``read_ranges``. Threads
only fetch; the caller decodes each answer on its own thread as it arrives (many small numpy calls
on more threads than cores spend their time passing the GIL around). At most ``2 x workers``
answers are held at once, so memory is bounded whatever the model's size. Cancel, the model's
deadline, the Hub's rate limit and its redirects live in the sources (``ReadContext``, ``HubFile``):
every range read here goes through them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

from .base import ByteSource

T = TypeVar("T")


@dataclass
class RangeRead(Generic[T]):
    """``length`` bytes at ``offset`` of ``source``; ``tag`` is the caller's, handed back with the bytes."""

    source: ByteSource
    offset: int
    length: int
    tag: T


def read_ranges(reads: Iterable[RangeRead[T]], workers: int | None = None) -> Iterator[tuple[RangeRead[T], bytes]]:
    """Yield (read, bytes) as each read completes (not in order). The reads are consumed lazily, so a
    plan may be a generator. An error in any read stops the others and is raised here."""
    todo = iter(reads)
    first = list(itertools.islice(todo, 1))
    if not first:
        return
    n = workers or first[0].source.max_parallel
    todo = itertools.chain(first, todo)

    def fetch(r: RangeRead[T]) -> tuple[RangeRead[T], bytes]:
        return r, r.source.read(r.offset, r.length)

    with ThreadPoolExecutor(max_workers=max(1, n), thread_name_prefix="read") as pool:
        pending: set[Future[tuple[RangeRead[T], bytes]]] = {
            pool.submit(fetch, r) for r in itertools.islice(todo, 2 * n)
        }
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.add(pool.submit(fetch, nxt))
        finally:
            for fut in pending:
                fut.cancel()

"""Where in a matrix a probe reads: slots of rows, in a fixed order that depends only on the matrix's role and
number of rows (plan.py decides how many), and the row orders the file may use (llama.cpp's Q/K permutation, runs of
consecutive rows).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..stats import GOLDEN


def llama_cpp_rows(r: np.ndarray, head_dim: int) -> np.ndarray:
    """Where Hugging Face row ``r`` of Q or K is in a llama.cpp GGUF (rotary pairs interleaved per head)."""
    if not head_dim:
        return r
    head, within = np.divmod(r, head_dim)
    j, i = np.divmod(within, head_dim // 2)
    file_rows: np.ndarray = head * head_dim + 2 * i + j
    return file_rows


def runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted row indices -> [start, end) runs of consecutive rows."""
    if not len(rows):
        return []
    breaks = np.nonzero(np.diff(rows) != 1)[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks + 1, [len(rows)]])
    return [(int(rows[s]), int(rows[e - 1]) + 1) for s, e in zip(starts, ends)]


@dataclass(frozen=True)
class Geometry:
    """How a matrix is cut into slots: ``units`` of ``per_unit`` rows (2 = a rotary pair), ``per_slot`` units a slot."""

    rows: int
    units: int
    per_unit: int
    per_slot: int
    half: int  # head_dim // 2 for rotary-pair units, else 0

    @property
    def n_slots(self) -> int:
        return -(-self.units // self.per_slot)

    def slot_of(self, rows: np.ndarray) -> np.ndarray:
        """The slot each (Hugging Face) row belongs to."""
        if not self.half:
            return rows // self.per_slot
        head, within = np.divmod(rows, 2 * self.half)
        slots: np.ndarray = (head * self.half + within % self.half) // self.per_slot
        return slots


def _power_of_two_at_most(n: int) -> int:
    return 1 << (max(1, n).bit_length() - 1)


def geometry(role: str, shape: tuple[int, int], head_dim: int | None, slot_elements: int) -> Geometry:
    """How a matrix of this role and shape is cut into slots of about ``slot_elements`` elements (Q and K: in
    rotary pairs, never across a head). Slots hold a power of two of units, so the slots of a wider matrix (fewer
    rows a slot) split those of a narrower one exactly: see ``slot_order``."""
    rows, cols = shape
    want_rows = _power_of_two_at_most(slot_elements // max(cols, 1))
    if role in ("q", "k") and head_dim and head_dim % 2 == 0 and rows % head_dim == 0:
        half = head_dim // 2
        want = max(1, want_rows // 2)
        # slots never cross a head
        per_slot = max(d for d in range(1, half + 1) if half % d == 0 and d <= want and d & (d - 1) == 0)
        return Geometry(rows, rows // 2, 2, per_slot, half)
    return Geometry(rows, rows, 1, want_rows, 0)


@lru_cache(maxsize=512)
def unit_order(role: str, rows: int, units: int) -> np.ndarray:
    """A fixed order of a matrix's units (rows, or rotary pairs of Q and K): a golden-ratio sequence from a hash of
    the role and the number of rows - not of the width, so that two models whose matrices differ only in their
    input width (a width-pruned copy) read the same rows first."""
    u = int.from_bytes(hashlib.sha256(f"{role}|{rows}".encode()).digest()[:8], "little") / 2**64
    seq = np.floor(((u + np.arange(4 * units) * GOLDEN) % 1.0) * units).astype(np.int64)
    _, first = np.unique(seq, return_index=True)
    order = seq[np.sort(first)]
    out = np.concatenate([order, np.setdiff1d(np.arange(units), order)])
    out.setflags(write=False)
    return out


@lru_cache(maxsize=512)
def slot_order(role: str, rows: int, units: int, per_slot: int) -> np.ndarray:
    """A fixed order of a matrix's slots: each slot where its first unit comes in ``unit_order``. Slot sizes being
    powers of two, a model that reads larger slots reads every unit that one reading smaller slots reads first,
    whatever their widths: the first slots of both share rows."""
    slots = unit_order(role, rows, units) // per_slot
    _, first = np.unique(slots, return_index=True)
    out: np.ndarray = slots[np.sort(first)]
    out.setflags(write=False)
    return out


@lru_cache(maxsize=4096)
def sample_rows(
    role: str, shape: tuple[int, int], slots: int, head_dim: int | None, slot_elements: int, take: int | None = None
) -> np.ndarray:
    """Row indices (ascending) of the first ``slots`` slots of the fixed order; ``take`` units of each
    slot (its first ones) when whole slots do not fit the byte budget."""
    g = geometry(role, shape, head_dim, slot_elements)
    if slots >= g.n_slots and (take is None or take >= g.per_slot):
        return read_only(np.arange(shape[0]))
    chosen = np.sort(slot_order(role, shape[0], g.units, g.per_slot)[: max(slots, 1)])
    per = g.per_slot if take is None else max(1, min(take, g.per_slot))
    idx = (chosen[:, None] * g.per_slot + np.arange(per)[None, :]).reshape(-1)
    idx = idx[idx < g.units]
    if not g.half:
        return read_only(idx)
    head, i = np.divmod(idx, g.half)
    return read_only(np.sort(np.concatenate([head * 2 * g.half + i, head * 2 * g.half + g.half + i])))


def read_only(a: np.ndarray) -> np.ndarray:
    """``a``, made read-only: row indices are cached and shared between the tensors of a plan."""
    a.setflags(write=False)
    return a

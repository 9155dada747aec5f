"""Rows of packed matrices (GPTQ, AWQ, bitsandbytes 4-bit; formats/packed.py) for a probe.

Element-wise comparison and AWM compare the *same rows* of W between two models, e.g. a GPTQ model and its fp16
parent. bitsandbytes stores W's rows in order, so its rows are read like any others. GPTQ and AWQ store W
transposed and packed: one row of W is strided across the whole tensor, and reading a row costs as much as
reading the tensor. So their matrices are read whole, one at a time, for as many layers as the probe's byte
budget allows (attention first, then the MLP), dequantized, and only the rows the plan keeps for an unpacked
matrix of that shape are kept: the probe then holds the same positions as any other model's, and every signal
works on those layers. The probe's notes say how many layers were read that way.
"""

from __future__ import annotations

import threading

import numpy as np

from ..errors import Cancelled, NonFiniteWeights
from ..formats.packed import PackedTensor
from .plan import ProbePlan, RowsToRead
from .slots import runs

CHUNK_BYTES = 8 << 20  # packed bytes decoded at once: float32 temporaries stay near 8x this
ROLE_GROUPS = (("q", "k", "v", "o"), ("gate", "up", "down"))  # read in this order while the budget lasts


def packed_of(w: RowsToRead) -> PackedTensor | None:
    return w.named.tensor.packed


def is_read_whole(w: RowsToRead) -> bool:
    p = packed_of(w)
    return p is not None and p.transposed


def limit_whole_reads(plan: ProbePlan, left_bytes: int) -> None:
    """Keep the GPTQ/AWQ matrices of as many evenly spread layers as ``left_bytes`` allows (each read whole),
    attention before MLP, at least one layer of attention; say so in the plan's notes. ``left_bytes``: what the
    budget leaves once everything else of the plan is counted."""
    whole = [w for w in plan.matrices if is_read_whole(w)]
    if not whole:
        return
    keep: set[int] = set()
    read: list[str] = []
    all_layers = sorted({_layer(w) for w in whole})
    for group in ROLE_GROUPS:
        wants = [w for w in whole if w.role in group]
        by_layer: dict[int, int] = {}
        for w in wants:
            by_layer[_layer(w)] = by_layer.get(_layer(w), 0) + _whole_bytes(w)
        if not by_layer:
            continue
        layers = sorted(by_layer)
        per_layer = max(by_layer.values())
        k = min(len(layers), max(left_bytes, 0) // max(per_layer, 1))
        if group == ROLE_GROUPS[0]:
            k = max(k, 1)
        chosen = spread(layers, k)
        keep.update(id(w) for w in wants if _layer(w) in chosen)
        left_bytes -= sum(by_layer[layer] for layer in chosen)
        roles = ", ".join(r for r in group if any(w.role == r for w in wants))
        which = f" ({', '.join(map(str, chosen))})" if 0 < len(chosen) < len(all_layers) else ""
        read.append(f"{roles} of {len(chosen)} of {len(all_layers)} layers{which}")
    plan.matrices = [w for w in plan.matrices if not is_read_whole(w) or id(w) in keep]
    first = packed_of(whole[0])
    method = first.scheme.method.upper() if first else "packed"
    plan.notes.append(
        f"{method} stores W transposed and packed, so its matrices were read whole and dequantized, within the "
        f"probe's byte budget: {'; '.join(read)}; the rows kept are those of an unpacked matrix of the same shape"
    )


def spread(items: list[int], k: int) -> list[int]:
    """``k`` items evenly spread over ``items`` (first and last included)."""
    if k >= len(items):
        return items
    if k <= 0:
        return []
    if k == 1:
        return [items[len(items) // 2]]
    return sorted({items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)})


def _layer(w: RowsToRead) -> int:
    return int(w.key[-1])  # a matrix's key is ("m", role, layer)


def _whole_bytes(w: RowsToRead) -> int:
    return w.named.tensor.nbytes


def other_bytes(plan: ProbePlan) -> int:
    """Bytes of the plan's reads other than the matrices read whole."""
    return sum(w.nbytes for w in plan.wants if not is_read_whole(w)) + sum(s.nbytes for s in plan.scales)


def read_packed_rows(w: RowsToRead, cancel: threading.Event | None) -> np.ndarray:
    """The want's rows of W (in its plan's order) as float32, dequantized from the packed parts."""
    p = packed_of(w)
    assert p is not None
    rows = w.file_row(w.rows)
    kept = np.empty((len(rows), p.in_features), np.float32)
    if p.transposed:  # every unit holds a slice of every row: read all units, keep the rows' columns
        step = max(1, CHUNK_BYTES // max(p.unit_bytes, 1))
        for u0 in range(0, p.units, step):
            u1 = min(p.units, u0 + step)
            x = p.decode_units(_read_units(p, u0, u1, cancel), u0, u1)  # (input features, out)
            per = x.shape[0] // (u1 - u0)  # input features per unit
            kept[:, u0 * per : u1 * per] = x[:, rows].T
    else:
        order = np.argsort(rows, kind="stable")
        k = 0
        for a, b in runs(rows[order]):
            kept[order[k : k + b - a]] = p.decode_units(_read_units(p, a, b, cancel), a, b)
            k += b - a
    if not np.isfinite(kept).all():
        bad = int(kept.size - np.count_nonzero(np.isfinite(kept)))
        raise NonFiniteWeights(f"NaN or Inf in {w.named.tensor.name} ({bad} values)")
    return kept


def _read_units(p: PackedTensor, u0: int, u1: int, cancel: threading.Event | None) -> bytes:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")
    return p.main.source.read(p.unit_offset(u0), (u1 - u0) * p.unit_bytes)

"""Packed integer quantizations - GPTQ, AWQ, bitsandbytes 4-bit, compressed-tensors - dequantized from the bytes
of their parts.

A packed Linear is not one tensor but several (GPTQ: ``qweight`` int32, ``qzeros``, ``scales``, ``g_idx``; AWQ the
same without ``g_idx``; bitsandbytes: ``weight`` uint8 with ``weight.absmax``, ``weight.quant_map`` and its quant
state; compressed-tensors (llm-compressor's W4A16/W8A16 "pack-quantized"): ``weight_packed`` int32, ``weight_scale``,
``weight_zero_point``, ``weight_g_idx``, ``weight_shape``, or for "int-quantized" an int8 ``weight``). ``fold_packed`` replaces them, in a checkpoint's tensor table, by one logical ``<module>.weight`` whose
``TensorInfo.packed`` says how to read it, so roles, plans and probes see an ordinary (out, in) matrix.

How rows are read (the pipeline reads a tensor's rows as contiguous byte ranges):
- bitsandbytes stores W's rows in order (flattened, two 4-bit codes a byte, one absmax per ``blocksize`` codes):
  a row of W is a contiguous range of bytes, plus the absmax values of its blocks;
- compressed-tensors packs along the input dim but keeps W's layout - ``weight_packed`` is (out, in * bits / 32) -
  so a row of W is a row of words, plus its row of scales and the word row holding its zero points;
- GPTQ and AWQ store W transposed - ``qweight`` is (in * bits / 32, out) for GPTQ (packed along the input dim),
  (in, out / 8) for AWQ (packed along the output dim) - so one row of W is strided across the whole tensor.
  Their contiguous *unit* is a run of input features over every output feature: for GPTQ the features of one
  int32 row (8 at 4 bits), or at 3 bits, whose values cross word boundaries, the 32 features that fill exactly
  3 rows (``gptq_unit``); for AWQ one feature.
A σ-curve needs the statistics of all weights, and a sample of units is as fair a sample of elements as a sample
of rows: stats.py reads units. A lineage probe compares the *same rows* of W between two models, so it reads a
GPTQ/AWQ tensor whole, dequantizes it, and keeps the rows the plan keeps for an unpacked tensor of that shape
(lineage/packed_rows.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import CorruptFile, UnsupportedFormat
from ..sources.base import ByteSource
from .dtypes import decode_rows
from .tensor import TensorInfo

# bitsandbytes' 4-bit code books (also stored in each checkpoint as ``weight.quant_map``, which is used when there)
NF4_CODE = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ],
    np.float32,
)
FP4_CODE = (np.array([0, 0.0625, 8, 12, 4, 6, 2, 3, -0.0, -0.0625, -8, -12, -4, -6, -2, -3], np.float32) / 12).astype(
    np.float32
)
# AutoAWQ packs 8 output features into an int32 in this order: nibble i holds feature AWQ_ORDER[i]
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)


READ_AS = "dequantized from the packed weights"
CT = "compressed-tensors"  # PackedScheme.method of llm-compressor's pack-quantized and int-quantized weights  # ends every PackedScheme.label (present/labels.py finds it)

# ---------------------------------------------------------------------------------------
# dequantization of arrays


def gptq_unit(bits: int) -> int:
    """Input features in the fewest whole int32 rows of GPTQ's qweight: 32 / bits, or 32 at 3 bits (3 rows)."""
    return 32 // math.gcd(bits, 32)


def unpack_bits(words: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """The ``bits``-bit unsigned values packed along ``axis`` of int32 words as one little-endian bit stream
    (value k at bit ``bits * k``; a value may cross into the next word, as GPTQ's 3-bit packing does)."""
    w = np.moveaxis(np.ascontiguousarray(words).view(np.uint32), axis, 0).astype(np.uint64)
    n = w.shape[0] * 32 // bits
    pos = np.arange(n, dtype=np.int64) * bits
    lo = pos // 32
    hi = np.minimum(lo + 1, w.shape[0] - 1)
    shift = (pos % 32).astype(np.uint64).reshape((-1,) + (1,) * (w.ndim - 1))
    pair = w[lo] | (w[hi] << np.uint64(32))
    values = ((pair >> shift) & np.uint64((1 << bits) - 1)).astype(np.uint8)
    return np.moveaxis(values, 0, axis)


def affine_dequantize(q: np.ndarray, zeros: np.ndarray, scales: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(q - zero) * scale, rows of ``q`` taking their zero and scale from rows ``groups`` of the group tables."""
    z = zeros.astype(np.float32)[groups]
    s = scales.astype(np.float32)[groups]
    out: np.ndarray = (q.astype(np.float32) - z) * s
    return out


def gptq_dequantize(
    qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray, groups: np.ndarray, bits: int, zero_offset: int = 1
) -> np.ndarray:
    """Rows of W^T (input features, out) from GPTQ words: ``qweight`` (units * bits, out) int32, ``qzeros`` (groups,
    out * bits / 32) int32, ``scales`` (groups, out), ``groups`` the group row of each input feature (g_idx).
    GPTQ v1 checkpoints store zero - 1 (``zero_offset`` 1); gptq_v2 stores the zero itself."""
    q = unpack_bits(qweight, bits, axis=0)
    z = unpack_bits(qzeros, bits, axis=1)[:, : scales.shape[1]].astype(np.int32) + zero_offset
    return affine_dequantize(q, z, scales, groups)


def awq_unpack(words: np.ndarray) -> np.ndarray:
    """AutoAWQ's (rows, out / 8) int32 words -> (rows, out) 4-bit values in feature order."""
    nibbles = unpack_bits(words, 4, axis=1)
    rows = nibbles.shape[0]
    out = np.empty_like(nibbles)
    out.reshape(rows, -1, 8)[:, :, list(AWQ_ORDER)] = nibbles.reshape(rows, -1, 8)
    return out


def awq_dequantize(qweight: np.ndarray, qzeros: np.ndarray, scales: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Rows of W^T (input features, out) from AutoAWQ GEMM words: ``qweight`` (in, out / 8), ``qzeros``
    (groups, out / 8), ``scales`` (groups, out); ``groups`` the group row of each input feature."""
    return affine_dequantize(awq_unpack(qweight), awq_unpack(qzeros), scales, groups)


def bnb4_codes(packed: np.ndarray) -> np.ndarray:
    """bitsandbytes 4-bit bytes -> codes: the high nibble is the first value, the low nibble the second."""
    b = np.ascontiguousarray(packed).view(np.uint8).reshape(-1)
    out = np.empty(b.size * 2, np.uint8)
    out[0::2] = b >> 4
    out[1::2] = b & 0x0F
    return out


def bnb4_dequantize(
    packed: np.ndarray, absmax: np.ndarray, quant_map: np.ndarray, blocksize: int, first: int = 0
) -> np.ndarray:
    """Flat values from 4-bit bytes: code book value times its block's absmax. ``first``: the element index of
    the first value, whose block is row 0 of ``absmax`` when ``absmax`` starts at block ``first // blocksize``."""
    codes = bnb4_codes(packed)
    block = (first + np.arange(codes.size)) // blocksize - first // blocksize
    out: np.ndarray = quant_map.astype(np.float32)[codes] * absmax.astype(np.float32)[block]
    return out


def bnb_nested_absmax(
    absmax: np.ndarray, nested_absmax: np.ndarray, nested_quant_map: np.ndarray, nested_blocksize: int, offset: float
) -> np.ndarray:
    """Double quantization: absmax stored as uint8 codes of an 8-bit dynamic map, in blocks of ``nested_blocksize``
    with their own float32 absmax, then the mean ``offset`` added back."""
    codes = np.ascontiguousarray(absmax).view(np.uint8).reshape(-1)
    block = np.arange(codes.size) // nested_blocksize
    out: np.ndarray = nested_quant_map.astype(np.float32)[codes] * nested_absmax.astype(np.float32)[block] + np.float32(
        offset
    )
    return out


def ct_unpack(words: np.ndarray, bits: int, n: int, axis: int = 1) -> np.ndarray:
    """compressed-tensors' ``pack_to_int32`` undone: ``32 // bits`` values an int32 word along ``axis``, value i
    at bit ``bits * i`` (at 3, 5, 6 or 7 bits the top bits of each word stay unused: no value crosses a word),
    the last word padded with zeros; the first ``n`` values along ``axis`` as signed ints (stored + 2^(bits-1))."""
    per = 32 // bits
    w = np.moveaxis(np.ascontiguousarray(words).view(np.uint32), axis, -1)
    shifts = (np.arange(per, dtype=np.uint32) * np.uint32(bits)).astype(np.uint32)
    values = (w[..., None] >> shifts) & np.uint32((1 << bits) - 1)
    values = values.reshape(*w.shape[:-1], w.shape[-1] * per)[..., :n]
    signed = values.astype(np.int16) - np.int16(1 << (bits - 1))
    return np.moveaxis(signed, -1, axis)


def ct_dequantize(q: np.ndarray, scales: np.ndarray, zeros: np.ndarray | None, groups: np.ndarray) -> np.ndarray:
    """Rows of W from compressed-tensors' signed ints ``q`` (rows, in): (q - zero) * scale, column j taking
    column ``groups[j]`` of the rows' ``scales`` (rows, groups) and ``zeros`` (None: symmetric, zero 0)."""
    s = scales.astype(np.float32)[:, groups]
    x = q.astype(np.float32)
    if zeros is not None:
        x = x - zeros.astype(np.float32)[:, groups]
    out: np.ndarray = x * s
    return out


# ---------------------------------------------------------------------------------------
# a packed tensor in a checkpoint, read by units


@dataclass(frozen=True)
class PackedScheme:
    """How a checkpoint packed its Linear weights, as its quantization_config and tensor shapes say."""

    method: str  # "gptq" | "awq" | "bnb4" | "compressed-tensors"
    bits: int
    group_size: int  # input features per scale (GPTQ/AWQ/compressed-tensors); elements per absmax (bitsandbytes)
    act_order: bool = False  # GPTQ desc_act: g_idx assigns input features to groups out of order
    zero_offset: int = 0  # GPTQ v1 stores zero - 1
    quant_type: str = ""  # bitsandbytes: "nf4" | "fp4"
    double_quant: bool = False  # bitsandbytes: absmax itself quantized to 8 bits
    strategy: str = "group"  # compressed-tensors: "group" | "channel" | "tensor" (what one scale covers)

    def label(self) -> str:
        """How the weights were read, in words (inspect, the Models page, a fingerprint's notes)."""
        if self.method == CT:
            order = ", act-order" if self.act_order else ""
            per = f"group {self.group_size}" if self.strategy == "group" else f"per {self.strategy}"
            return f"compressed-tensors {self.bits}-bit ({per}{order}) {READ_AS}"
        if self.method == "bnb4":
            nested = ", double-quantized absmax" if self.double_quant else ""
            return f"bitsandbytes {self.quant_type.upper()} 4-bit (blocks of {self.group_size}{nested}) {READ_AS}"
        order = ", act-order" if self.act_order else ""
        return f"{self.method.upper()} {self.bits}-bit (group {self.group_size}{order}) {READ_AS}"


@dataclass(frozen=True)
class PackedTensor:
    """One packed Linear: its parts, its logical shape (out, in) and how to decode any run of its units."""

    scheme: PackedScheme
    parts: dict[str, TensorInfo]  # "qweight", "scales", ... | "weight", "absmax", ... | "weight_packed", ...
    out_features: int
    in_features: int
    nested_blocksize: int = 256
    nested_offset: float = 0.0
    small: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)  # code books, read once

    @property
    def transposed(self) -> bool:
        """True when a unit is a run of input features (GPTQ, AWQ), False when it is a row of W (bitsandbytes)."""
        return self.scheme.method in ("gptq", "awq")

    @property
    def main(self) -> TensorInfo:
        if self.scheme.method == CT:
            return self.parts.get("weight_packed") or self.parts["weight"]
        return self.parts["weight"] if self.scheme.method == "bnb4" else self.parts["qweight"]

    @property
    def units(self) -> int:
        if self.scheme.method == "gptq":
            return self.in_features // gptq_unit(self.scheme.bits)
        return self.in_features if self.scheme.method == "awq" else self.out_features  # bnb, CT: rows of W

    @property
    def unit_bytes(self) -> int:
        return self.main.nbytes // max(self.units, 1)

    @property
    def unit_elements(self) -> int:
        return (self.out_features * self.in_features) // max(self.units, 1)

    def unit_offset(self, unit: int) -> int:
        return self.main.offset + unit * self.unit_bytes

    def for_units(self, u0: int, u1: int) -> PackedTensor:
        """This tensor with the scales, zeros, group indices or absmax of units [u0, u1) read now, once each: a span
        decoded in many small pieces (stats.py) then takes them from memory instead of one request per piece."""
        parts = dict(self.parts)
        for name, (e0, e1) in self._side_elements(u0, u1).items():
            t = parts[name]
            size = t.nbytes // max(t.numel, 1)
            e0, e1 = max(0, e0), min(t.numel, e1)
            if e1 > e0:
                start = t.offset + e0 * size
                parts[name] = replace(t, source=_Prefetched(t.source, start, _elements(t, e0, e1)))
        return replace(self, parts=parts)

    def _side_elements(self, u0: int, u1: int) -> dict[str, tuple[int, int]]:
        """The element ranges of the side parts that decoding units [u0, u1) reads."""
        m = self.scheme.method
        if m == "bnb4":
            bs = self.scheme.group_size
            b0, b1 = u0 * self.in_features // bs, -(-u1 * self.in_features // bs)
            if not self.scheme.double_quant:
                return {"absmax": (b0, b1)}
            nb = self.nested_blocksize
            return {"absmax": (b0, b1), "nested_absmax": (b0 // nb, -(-b1 // nb))}
        if m == CT:
            scale, zp = self.parts["weight_scale"], self.parts.get("weight_zero_point")
            r0, r1 = (0, 1) if scale.rows == 1 and self.out_features > 1 else (u0, u1)
            out = {"weight_scale": (r0 * scale.cols, r1 * scale.cols)}
            if zp is not None:
                if zp.dtype == "I32" and zp.rows != self.out_features:
                    per = 32 // self.scheme.bits
                    r0, r1 = r0 // per, -(-r1 // per)
                out["weight_zero_point"] = (r0 * zp.cols, r1 * zp.cols)
            return out
        per = gptq_unit(self.scheme.bits) if m == "gptq" else 1
        i0, i1 = u0 * per, u1 * per
        if "g_idx" in self.parts:  # groups in any order: every group may be needed
            g0, g1 = 0, self.parts["scales"].rows
            out = {"g_idx": (i0, i1)}
        else:
            g0, g1 = i0 // self.scheme.group_size, -(-i1 // self.scheme.group_size)
            out = {}
        out["scales"] = (g0 * self.parts["scales"].cols, g1 * self.parts["scales"].cols)
        out["qzeros"] = (g0 * self.parts["qzeros"].cols, g1 * self.parts["qzeros"].cols)
        return out

    def decode_units(self, raw: bytes, u0: int, u1: int) -> np.ndarray:
        """Units [u0, u1) as float32 from their bytes of the main part (``raw``), reading the scales, zeros,
        group indices or absmax they need: (input features, out) for GPTQ/AWQ, rows of W for bitsandbytes and
        compressed-tensors."""
        if self.scheme.method == "bnb4":
            return self._decode_bnb(raw, u0, u1)
        if self.scheme.method == CT:
            return self._decode_ct(raw, u0, u1)
        per = gptq_unit(self.scheme.bits) if self.scheme.method == "gptq" else 1
        i0, i1 = u0 * per, u1 * per
        g_idx = self.parts.get("g_idx")
        if g_idx is not None:
            groups = np.frombuffer(_elements(g_idx, i0, i1), "<i4").astype(np.int64)
        else:
            groups = np.arange(i0, i1) // self.scheme.group_size
        n_groups = self.parts["scales"].rows
        if groups.size and (groups.min() < 0 or groups.max() >= n_groups):
            raise CorruptFile(f"{g_idx.name if g_idx else self.main.name} names a group beyond its {n_groups} scales")
        g0, g1 = (int(groups.min()), int(groups.max()) + 1) if groups.size else (0, 0)
        scales = _float_rows(self.parts["scales"], g0, g1)
        zeros = np.frombuffer(_rows(self.parts["qzeros"], g0, g1), "<i4").reshape(g1 - g0, -1)
        words = np.frombuffer(raw, "<i4").reshape(-1, self.main.cols)
        if self.scheme.method == "gptq":
            return gptq_dequantize(words, zeros, scales, groups - g0, self.scheme.bits, self.scheme.zero_offset)
        return awq_dequantize(words, zeros, scales, groups - g0)

    def _decode_bnb(self, raw: bytes, r0: int, r1: int) -> np.ndarray:
        bs = self.scheme.group_size
        e0, e1 = r0 * self.in_features, r1 * self.in_features
        b0, b1 = e0 // bs, -(-e1 // bs)
        absmax_part = self.parts["absmax"]
        if self.scheme.double_quant:
            nb = self.nested_blocksize
            codes = np.frombuffer(_elements(absmax_part, b0, b1), np.uint8)
            n0, n1 = b0 // nb, -(-b1 // nb)
            nested = np.frombuffer(_elements(self.parts["nested_absmax"], n0, n1), "<f4")
            # the nested blocks start at block b0 // nb: pad so that code j sits at its block's position
            pad = b0 - n0 * nb
            absmax = bnb_nested_absmax(
                np.concatenate([np.zeros(pad, np.uint8), codes]),
                nested,
                self._table("nested_quant_map"),
                nb,
                self.nested_offset,
            )[pad:]
        else:
            absmax = _float_elements(absmax_part, b0, b1)
        values = bnb4_dequantize(np.frombuffer(raw, np.uint8), absmax, self._table("quant_map"), bs, e0)
        return values.reshape(r1 - r0, self.in_features)

    def _decode_ct(self, raw: bytes, r0: int, r1: int) -> np.ndarray:
        main, bits, n = self.main, self.scheme.bits, r1 - r0
        if main.dtype == "I8":  # int-quantized: one signed byte a weight
            q = np.frombuffer(raw, np.int8).reshape(n, self.in_features).astype(np.int16)
        else:
            q = ct_unpack(np.frombuffer(raw, "<i4").reshape(n, main.cols), bits, self.in_features)
        scale = self.parts["weight_scale"]
        per_tensor = scale.rows == 1 and self.out_features > 1
        s0, s1 = (0, 1) if per_tensor else (r0, r1)
        scales = _float_rows(scale, s0, s1).reshape(s1 - s0, -1)
        if per_tensor:
            scales = np.broadcast_to(scales, (n, scales.shape[1]))
        zeros = None
        zp = self.parts.get("weight_zero_point")
        if zp is not None:
            if zp.dtype == "I32" and zp.rows != self.out_features:  # packed along the output dim
                per = 32 // bits
                z0, z1 = r0 // per, -(-r1 // per)
                words = np.frombuffer(_rows(zp, z0, z1), "<i4").reshape(z1 - z0, zp.cols)
                zeros = ct_unpack(words, bits, (z1 - z0) * per, axis=0)[r0 - z0 * per : r1 - z0 * per]
            else:
                width = {"I8": "<i1", "I32": "<i4"}[zp.dtype]
                zeros = np.frombuffer(_rows(zp, s0, s1), width).reshape(s1 - s0, -1)
                if per_tensor:
                    zeros = np.broadcast_to(zeros, (n, zeros.shape[1]))
        return ct_dequantize(q, scales, zeros, self._ct_groups(scales.shape[1]))

    def _ct_groups(self, n_groups: int) -> np.ndarray:
        """The scale column of each input feature: weight_g_idx (act-order), else consecutive groups."""
        if "groups" not in self.small:
            g_idx = self.parts.get("weight_g_idx")
            if g_idx is not None:
                groups = np.frombuffer(_elements(g_idx, 0, g_idx.numel), "<i4").astype(np.int64)
            elif self.scheme.strategy == "group":
                groups = np.arange(self.in_features) // self.scheme.group_size
            else:
                groups = np.zeros(self.in_features, np.int64)
            if groups.size and (groups.min() < 0 or groups.max() >= n_groups):
                raise CorruptFile(f"{self.main.name} names a group beyond its {n_groups} scales")
            self.small["groups"] = groups
        return self.small["groups"]

    def _table(self, part: str) -> np.ndarray:
        if part not in self.small:
            t = self.parts.get(part)
            if t is None:
                if part != "quant_map":
                    raise CorruptFile(f"{self.main.name}: its {part} is missing")
                self.small[part] = NF4_CODE if self.scheme.quant_type == "nf4" else FP4_CODE
            else:
                self.small[part] = _float_elements(t, 0, t.numel)
        return self.small[part]


class _Prefetched(ByteSource):
    """A file whose bytes [start, start + len(data)) were read already: reads within them cost nothing."""

    def __init__(self, inner: ByteSource, start: int, data: bytes) -> None:
        super().__init__(inner.context)
        self.name, self.size = inner.name, inner.size
        self.inner, self.start, self.data = inner, start, data

    def read(self, offset: int, length: int) -> bytes:
        if self.start <= offset and offset + length <= self.start + len(self.data):
            return self.data[offset - self.start : offset - self.start + length]
        return self.inner.read(offset, length)

    def fetch(self, offset: int, length: int) -> bytes:
        return self.inner.fetch(offset, length)


def _rows(t: TensorInfo, r0: int, r1: int) -> bytes:
    return t.source.read(t.offset + r0 * t.row_bytes, (r1 - r0) * t.row_bytes)


def _elements(t: TensorInfo, e0: int, e1: int) -> bytes:
    size = t.nbytes // max(t.numel, 1)
    return t.source.read(t.offset + e0 * size, (e1 - e0) * size)


def _float_rows(t: TensorInfo, r0: int, r1: int) -> np.ndarray:
    return decode_rows(_rows(t, r0, r1), t.dtype, t.format, r1 - r0, t.cols)


def _float_elements(t: TensorInfo, e0: int, e1: int) -> np.ndarray:
    return decode_rows(_elements(t, e0, e1), t.dtype, t.format, 1, e1 - e0).reshape(-1)


# ---------------------------------------------------------------------------------------
# folding a checkpoint's parts into logical tensors

_GPTQ_PARTS = ("qweight", "qzeros", "scales", "g_idx")
_BNB_PARTS = ("absmax", "quant_map", "nested_absmax", "nested_quant_map")
_BNB_STATE = ".quant_state.bitsandbytes__"
_CT_PARTS = ("weight_packed", "weight_scale", "weight_zero_point", "weight_g_idx", "weight_shape")
CT_INT_FORMATS = ("int-quantized", "naive-quantized")  # compressed-tensors formats of plain int8 weights
MAX_QUANT_STATE = 1 << 16  # a bitsandbytes quant state is a few hundred bytes of JSON


def fold_packed(tensors: dict[str, TensorInfo], config: dict[str, Any]) -> tuple[dict[str, TensorInfo], str | None]:
    """The tensor table with each packed Linear's parts replaced by one logical ``<module>.weight`` of shape
    (out, in), and how they were read (None when nothing was packed). Reads only bitsandbytes' quant states."""
    qc = config.get("quantization_config")
    qc = qc if isinstance(qc, dict) else {}
    method = str(qc.get("quant_method") or "").lower()
    out = dict(tensors)
    labels: list[str] = []
    for name in [n for n in tensors if n.endswith(".qweight")]:
        mod = name[: -len(".qweight")]
        parts = {p: tensors[f"{mod}.{p}"] for p in _GPTQ_PARTS if f"{mod}.{p}" in tensors}
        if "scales" not in parts or "qzeros" not in parts:
            continue  # left to roles.py, which names what it cannot read
        is_awq = method == "awq" or (method != "gptq" and "g_idx" not in parts)
        packed = _awq(mod, parts, qc) if is_awq else _gptq(mod, parts, qc)
        for p in parts.values():
            out.pop(p.name, None)
        out[f"{mod}.weight"] = _logical(f"{mod}.weight", packed)
        labels.append(packed.scheme.label())
    ct_int = method == CT and _ct_formats(qc) & set(CT_INT_FORMATS)
    for name in [n for n in tensors if n.endswith((".weight_packed", ".weight"))]:
        mod = name.rsplit(".", 1)[0]
        if name.endswith(".weight") and not (ct_int and tensors[name].dtype == "I8"):
            continue
        parts = {p: tensors[f"{mod}.{p}"] for p in _CT_PARTS if f"{mod}.{p}" in tensors}
        if name.endswith(".weight"):
            parts["weight"] = tensors[name]
        if "weight_scale" not in parts:
            continue  # left to roles.py, which names what it cannot read
        packed = _compressed_tensors(mod, parts, qc)
        for p in parts.values():
            out.pop(p.name, None)
        out[f"{mod}.weight"] = _logical(f"{mod}.weight", packed)
        labels.append(packed.scheme.label())
    for name in [n for n in tensors if _BNB_STATE in n]:
        weight = name[: name.index(".quant_state.")]
        if weight not in tensors:
            continue
        packed = _bnb(weight, tensors, name)
        for p in packed.parts.values():
            out.pop(p.name, None)
        out.pop(name, None)
        out[weight] = _logical(weight, packed)
        labels.append(packed.scheme.label())
    if not labels:
        return tensors, None
    return out, max(set(labels), key=labels.count)


def _logical(name: str, packed: PackedTensor) -> TensorInfo:
    main = packed.main
    return TensorInfo(
        name=name,
        dtype={"gptq": "GPTQ", "awq": "AWQ", "bnb4": "BNB4", CT: "CT"}[packed.scheme.method],
        shape=(packed.out_features, packed.in_features),
        source=main.source,
        offset=main.offset,
        nbytes=sum(p.nbytes for p in packed.parts.values()),
        format=main.format,
        packed=packed,
    )


def _int(qc: dict[str, Any], key: str, default: int) -> int:
    v = qc.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def _gptq(mod: str, parts: dict[str, TensorInfo], qc: dict[str, Any]) -> PackedTensor:
    qweight, scales, qzeros = parts["qweight"], parts["scales"], parts["qzeros"]
    _check_2d(qweight, scales, qzeros)
    out = qweight.shape[1]
    g_idx = parts.get("g_idx")
    if g_idx is not None:
        n_in = g_idx.numel
        bits = qweight.shape[0] * 32 // max(n_in, 1)
    else:
        bits = _int(qc, "bits", 4)
        n_in = qweight.shape[0] * 32 // bits
    if bits not in (2, 3, 4, 8) or n_in % gptq_unit(bits) or qweight.shape[0] * 32 != n_in * bits:
        raise UnsupportedFormat(f"{qweight.name}: shape {list(qweight.shape)} is not GPTQ's 2, 3, 4 or 8-bit packing")
    if scales.shape[1] != out or qzeros.shape[0] != scales.shape[0] or qzeros.shape[1] * 32 < out * bits:
        raise CorruptFile(f"{mod}: its GPTQ scales or zeros do not match qweight {list(qweight.shape)}")
    if g_idx is None and n_in % scales.shape[0]:
        raise CorruptFile(f"{mod}: {scales.shape[0]} groups do not divide {n_in} input features")
    _check_dtypes(mod, qweight, qzeros, g_idx)
    fmt = str(qc.get("checkpoint_format") or qc.get("format") or "gptq").lower()
    scheme = PackedScheme(
        "gptq",
        bits,
        _group(qc, n_in, scales.shape[0]),
        act_order=bool(qc.get("desc_act")),
        zero_offset=0 if fmt == "gptq_v2" else 1,
    )
    return PackedTensor(scheme, parts, out, n_in)


def _awq(mod: str, parts: dict[str, TensorInfo], qc: dict[str, Any]) -> PackedTensor:
    qweight, scales, qzeros = parts["qweight"], parts["scales"], parts["qzeros"]
    _check_2d(qweight, scales, qzeros)
    version = str(qc.get("version") or "gemm").lower()
    if version != "gemm" or _int(qc, "bits", _int(qc, "w_bit", 4)) != 4:
        raise UnsupportedFormat(f"{mod}: AWQ {version} packing at {qc.get('bits', 4)} bits is not supported yet")
    n_in, out = qweight.shape[0], qweight.shape[1] * 8
    if scales.shape[1] != out or qzeros.shape != (scales.shape[0], qweight.shape[1]) or n_in % scales.shape[0]:
        raise CorruptFile(f"{mod}: its AWQ scales or zeros do not match qweight {list(qweight.shape)}")
    _check_dtypes(mod, qweight, qzeros, None)
    return PackedTensor(PackedScheme("awq", 4, n_in // scales.shape[0]), parts, out, n_in)


def _group(qc: dict[str, Any], n_in: int, groups: int) -> int:
    g = _int(qc, "group_size", 0)
    return g if g > 0 else n_in // max(groups, 1)


def _check_2d(*parts: TensorInfo) -> None:
    for p in parts:
        if len(p.shape) != 2 or 0 in p.shape:
            raise CorruptFile(f"{p.name} has shape {list(p.shape)}, not a packed matrix")


def _check_dtypes(mod: str, qweight: TensorInfo, qzeros: TensorInfo, g_idx: TensorInfo | None) -> None:
    for p in (qweight, qzeros, g_idx):
        if p is not None and p.dtype not in ("I32", "U32"):
            raise UnsupportedFormat(f"{p.name} has dtype {p.dtype}, not the int32 words of a packed checkpoint")


def _bnb(weight: str, tensors: dict[str, TensorInfo], state_name: str) -> PackedTensor:
    state_t = tensors[state_name]
    if state_t.nbytes > MAX_QUANT_STATE:
        raise CorruptFile(f"{state_name} is {state_t.nbytes} bytes, larger than any bitsandbytes quant state")
    try:
        state = json.loads(state_t.source.read(state_t.offset, state_t.nbytes).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CorruptFile(f"{state_name} is not the JSON of a bitsandbytes quant state") from None
    if not isinstance(state, dict):
        raise CorruptFile(f"{state_name} is not the JSON of a bitsandbytes quant state")
    shape = state.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(d, int) and d > 0 for d in shape)):
        raise UnsupportedFormat(f"{state_name}: bitsandbytes 4-bit weights of shape {shape!r} are not a matrix")
    out, n_in = shape
    quant_type = str(state.get("quant_type") or state_name.rsplit("__", 1)[-1])
    blocksize = _int(state, "blocksize", 64)
    parts = {"weight": tensors[weight]}
    parts.update({p: tensors[f"{weight}.{p}"] for p in _BNB_PARTS if f"{weight}.{p}" in tensors})
    nested = "nested_absmax" in parts
    main, n_blocks = parts["weight"], math.ceil(out * n_in / max(blocksize, 1))
    if (
        quant_type not in ("nf4", "fp4")
        or blocksize <= 0
        or n_in % 2
        or main.nbytes * 2 != out * n_in
        or "absmax" not in parts
        or parts["absmax"].numel != n_blocks
    ):
        raise CorruptFile(f"{weight}: its bitsandbytes parts do not match a {quant_type} matrix of shape {shape}")
    offset = state.get("nested_offset", 0.0)
    scheme = PackedScheme("bnb4", 4, blocksize, quant_type=quant_type, double_quant=nested)
    return PackedTensor(
        scheme,
        parts,
        out,
        n_in,
        nested_blocksize=_int(state, "nested_blocksize", 256),
        nested_offset=float(offset) if isinstance(offset, (int, float)) else 0.0,
    )


def _ct_formats(qc: dict[str, Any]) -> set[str]:
    """The compressed-tensors formats a quantization_config names: its own and its config groups'."""
    groups = qc.get("config_groups")
    found = {qc.get("format")}
    if isinstance(groups, dict):
        found |= {g.get("format") for g in groups.values() if isinstance(g, dict)}
    return {str(f) for f in found if isinstance(f, str)}


def _ct_weight_args(qc: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``weights`` quantization args of each config group (integer types only), in order."""
    groups = qc.get("config_groups")
    out: list[dict[str, Any]] = []
    for g in groups.values() if isinstance(groups, dict) else []:
        w = g.get("weights") if isinstance(g, dict) else None
        if isinstance(w, dict) and str(w.get("type") or "int") == "int":
            out.append(w)
    return out


def _compressed_tensors(mod: str, parts: dict[str, TensorInfo], qc: dict[str, Any]) -> PackedTensor:
    """One compressed-tensors Linear: ``weight_packed`` (out, ceil(in / (32 // bits))) int32 packed along the
    input dim (or ``weight`` int8 for int-quantized), ``weight_scale`` (out, groups), (out, 1) or (1,), optional
    ``weight_zero_point`` (packed along the output dim) and ``weight_g_idx`` (act-order). Which config group's
    args apply is decided by the shapes (their ``targets`` are regular expressions over module names, which a
    downloaded config should not get to run): the first whose bits and group size fit. The input width is
    ``weight_g_idx``'s length, or groups x group size, or the packed width (``weight_shape`` is not read: a
    padded last word is told apart only by the first two)."""
    main = parts.get("weight_packed") or parts["weight"]
    scale = parts["weight_scale"]
    g_idx = parts.get("weight_g_idx")
    _check_2d(main)
    if main.dtype not in ("I32", "I8") or (main.dtype == "I8" and "weight_packed" in parts):
        raise UnsupportedFormat(f"{main.name} has dtype {main.dtype}, not compressed-tensors' packed int32 or int8")
    out_f, cols = main.shape
    n_groups = scale.cols if len(scale.shape) == 2 else 1
    if scale.rows not in (out_f, 1) or len(scale.shape) > 2:
        raise CorruptFile(f"{mod}: weight_scale {list(scale.shape)} does not match {main.name} {list(main.shape)}")
    candidates = _ct_weight_args(qc) or [{}]
    for args in candidates:
        bits = 8 if main.dtype == "I8" else _int(args, "num_bits", 4)
        if not 2 <= bits <= 8:
            continue
        per = 1 if main.dtype == "I8" else 32 // bits
        strategy = str(args.get("strategy") or ("group" if n_groups > 1 else "channel")).lower()
        if scale.rows == 1 and out_f > 1 and n_groups == 1:
            strategy = "tensor"
        group = _int(args, "group_size", 0) if strategy == "group" else 0
        if g_idx is not None:
            n_in = g_idx.numel
        elif group > 0:
            n_in = min(n_groups * group, cols * per)
        else:
            n_in = cols * per
        if strategy == "group" and group <= 0:
            group = -(-n_in // n_groups)
        if -(-n_in // per) == cols and (strategy != "group" or -(-n_in // group) == n_groups or g_idx is not None):
            break
    else:
        raise UnsupportedFormat(
            f"{mod}: {main.name} {list(main.shape)} and weight_scale {list(scale.shape)} fit none of the "
            "quantization_config's config_groups (num_bits, group_size, strategy)"
        )
    zp = parts.get("weight_zero_point")
    if zp is not None:
        if zp.dtype not in ("I8", "I32") or zp.cols != n_groups or zp.rows not in (out_f, 1, -(-out_f // per)):
            raise CorruptFile(f"{mod}: weight_zero_point {list(zp.shape)} {zp.dtype} does not match its scales")
    if g_idx is not None and g_idx.dtype != "I32":
        raise UnsupportedFormat(f"{g_idx.name} has dtype {g_idx.dtype}, not int32 group indices")
    scheme = PackedScheme(
        CT,
        bits,
        group if strategy == "group" else n_in,
        act_order=g_idx is not None,
        strategy=strategy,
    )
    return PackedTensor(scheme, parts, out_f, n_in)

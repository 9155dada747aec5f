"""safetensors header: 8-byte little-endian length N, N bytes of JSON, then the data.

Parsed from any ByteSource with two exact reads (no byte wasted), validated so that hostile input ends
in CorruptFile, never in a hang or an unbounded allocation.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from ..errors import CorruptFile
from ..sources.base import ByteSource
from .dtypes import SAFETENSORS_DTYPES
from .tensor import TensorInfo, check_no_overlap, check_shape

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors library's own limit
# JSON containers ({ and [) a header may hold before it is parsed: a real one has three per tensor (the entry,
# its shape, its offsets) and ~70 bytes per tensor; a header of empty lists would cost ~50 bytes of RAM per byte.
MAX_CONTAINERS = 1_000_000


def read_header(source: ByteSource) -> tuple[list[TensorInfo], dict[str, Any], int]:
    """Return (tensors, __metadata__, header bytes incl. the 8-byte length)."""
    name = source.name
    if source.size < 8:
        raise CorruptFile(f"{name} is {source.size} bytes: too short to be a safetensors file")
    (n,) = struct.unpack("<Q", source.read(0, 8))
    if n > MAX_HEADER_BYTES:
        raise CorruptFile(
            f"{name}: not a safetensors file, or a damaged one: its first 8 bytes announce a header larger than any "
            "real safetensors header"
        )
    if 8 + n > source.size:
        raise CorruptFile(
            f"{name}: its header claims to be longer than the whole file ({source.size:,} bytes), as in a truncated file"
        )
    raw = source.read(8, n)
    _check_json_cost(name, raw)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CorruptFile(f"{name}: header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CorruptFile(f"{name}: header is not a JSON object")

    data_start = 8 + n
    data_size = source.size - data_start
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not isinstance(metadata, dict):
        raise CorruptFile(f"{name}: __metadata__ is not an object")
    tensors = [_entry(name, key, value, data_start, data_size, source) for key, value in header.items()]
    check_no_overlap(name, tensors)
    return tensors, metadata or {}, data_start


def _entry(fname: str, key: str, value: object, data_start: int, data_size: int, source: ByteSource) -> TensorInfo:
    if not isinstance(value, dict):
        raise CorruptFile(f"{fname}: entry {key!r} is not an object")
    dtype, shape, offsets = value.get("dtype"), value.get("shape"), value.get("data_offsets")
    if not isinstance(dtype, str):
        raise CorruptFile(f"{fname}: {key} has no dtype")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise CorruptFile(f"{fname}: {key} has an invalid shape {_short(shape)}")
    check_shape(fname, key, shape)
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise CorruptFile(f"{fname}: {key} has invalid data_offsets")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise CorruptFile(
            f"{fname}: {key} lies outside the file's data (offsets {begin}..{end}, data is {data_size} bytes)"
        )
    spec = SAFETENSORS_DTYPES.get(dtype)
    # Unknown dtypes are only an error if the tensor is needed (see stats); their size cannot be checked here.
    if spec is not None and _numel(shape, data_size) * spec[0] != end - begin:
        raise CorruptFile(f"{fname}: {key} has shape {_short(shape)} ({dtype}) but {end - begin} bytes")
    return TensorInfo(
        name=key,
        dtype=dtype,
        shape=tuple(shape),
        source=source,
        offset=data_start + begin,
        nbytes=end - begin,
        format="safetensors",
    )


def _check_json_cost(name: str, raw: bytes) -> None:
    """Refuse, before parsing, a header whose JSON would cost far more memory than a real one: too many
    containers for its size (brackets inside strings count too, which only makes the bound stricter for
    headers no real model writes). Deep nesting ends in RecursionError, reported as invalid JSON."""
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > min(MAX_CONTAINERS, 64 + len(raw) // 8):
        raise CorruptFile(
            f"{name}: header holds {containers:,} JSON objects and lists, more than a real safetensors header"
        )


def _numel(shape: list[int], limit: int) -> int:
    """Product of the dims, or limit + 1 once it exceeds ``limit``: a hostile shape of many huge dims
    would otherwise cost a product with millions of digits (quadratic time)."""
    if 0 in shape:
        return 0
    n = 1
    for d in shape:
        n *= d
        if n > limit:
            return limit + 1
    return n


def _short(value: object, limit: int = 80) -> str:
    """repr of an untrusted header value, cut so that an error message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."

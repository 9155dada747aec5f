"""GGUF header (v2/v3) parsed from any ByteSource, fetched in growing chunks.

gguf.GGUFReader needs the whole file memory-mapped; remotely we only have ranges, so the
header is walked here, with the gguf package's constants for types and block sizes.
Every count is checked against the bytes left in the file, so hostile input cannot make
the parser loop or allocate without bound.
"""

from __future__ import annotations

import struct
from typing import Any

from gguf import GGMLQuantizationType, GGUFValueType

from ..errors import CorruptFile, UnsupportedFormat
from ..sources.base import ByteSource
from .dtypes import gguf_nbytes
from .tensor import TensorInfo, check_no_overlap, check_shape

GGUF_MAGIC = b"GGUF"
MAX_DIMS = 4
MAX_ARRAY_ITEMS = 1 << 24  # ~16M items: far above any real vocabulary
KEEP_ARRAY_ITEMS = 64  # small arrays (e.g. per-layer head counts) are kept, larger ones only counted
MAX_NAME_BYTES = 64 << 10  # keys and tensor names (llama.cpp itself caps tensor names at 64 bytes)
TOKENS_KEY = "tokenizer.ggml.tokens"  # the vocabulary is kept: lineage signals align models through shared tokens
MAX_KEPT_TOKENS = 1 << 20
FIRST_CHUNK = 4 << 10  # the header is read in chunks that double from this size
KEEP_STRING_BYTES = 1 << 20  # longer string values (none is needed here) are skipped, never read
# Architectures whose Q/K rows llama.cpp's converter permutes per head (LlamaModel.permute and kin): a σ-curve is
# unaffected, element-wise comparisons with the Hugging Face checkpoint must undo it.
QK_PERMUTED_ARCHS = frozenset(("llama", "llama4", "mistral", "granite", "granitemoe", "deci", "plm", "bailingmoe"))

_SCALARS = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}


class _Cursor:
    """Sequential reads over a ByteSource, fetching ahead in doubling chunks."""

    def __init__(self, source: ByteSource, first_chunk: int = FIRST_CHUNK) -> None:
        self.source = source
        self.base = 0  # file offset of buf[0]
        self.buf = b""
        self.pos = 0  # file offset of the next byte
        self.chunk = first_chunk

    def _ensure(self, n: int) -> None:
        if self.pos + n > self.source.size:
            raise CorruptFile(f"{self.source.name}: GGUF header runs past the end of the file (truncated?)")
        end = self.base + len(self.buf)
        if self.pos + n <= end:
            return
        if self.pos > end:  # skipped past the buffer: start a fresh one
            self.base, self.buf, end = self.pos, b"", self.pos
        want = max(self.chunk, self.pos + n - end)
        want = min(want, self.source.size - end)
        self.buf = self.buf[self.pos - self.base :] + self.source.read(end, want)
        self.base = self.pos
        self.chunk = min(self.chunk * 2, 1 << 20)  # read-ahead past the header end stays under 1 MB

    def take(self, n: int) -> bytes:
        self._ensure(n)
        start = self.pos - self.base
        self.pos += n
        return self.buf[start : start + n]

    def skip(self, n: int) -> None:
        if self.pos + n > self.source.size:
            raise CorruptFile(f"{self.source.name}: GGUF header runs past the end of the file (truncated?)")
        self.pos += n

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string_length(self) -> int:
        n: int = self.unpack("<Q")
        if n > self.source.size - self.pos:
            raise CorruptFile(f"{self.source.name}: GGUF string length {n} exceeds the file")
        return n

    def name(self) -> bytes:
        """A key or tensor name: short, so a damaged length cannot make us read (and hold) gigabytes."""
        n = self.string_length()
        if n > MAX_NAME_BYTES:
            raise CorruptFile(f"{self.source.name}: GGUF key or tensor name of {n} bytes (damaged length field?)")
        return self.take(n)

    def remaining(self) -> int:
        return self.source.size - self.pos


def read_header(source: ByteSource) -> tuple[list[TensorInfo], dict[str, Any], int]:
    """Return (tensors, metadata, byte offset where tensor data starts)."""
    name = source.name
    if source.size < 24:
        raise CorruptFile(f"{name} is too short to be a GGUF file")
    cur = _Cursor(source)
    if cur.take(4) != GGUF_MAGIC:
        raise CorruptFile(f"{name} is not a GGUF file (bad magic)")
    version = cur.unpack("<I")
    if version not in (2, 3):
        if version in (1,):
            raise UnsupportedFormat(f"{name} is GGUF version 1, which this tool does not read")
        raise CorruptFile(f"{name}: unknown GGUF version {version} (big-endian or damaged file?)")
    n_tensors = cur.unpack("<Q")
    n_kv = cur.unpack("<Q")
    # Each KV needs >= 8+1+4 bytes, each tensor info >= 8+4+8+4+8: bound counts by the file size.
    if n_kv * 13 > cur.remaining() or n_tensors * 32 > cur.remaining():
        raise CorruptFile(f"{name}: GGUF counts ({n_tensors} tensors, {n_kv} keys) do not fit in the file")

    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = _text(cur.name(), name)
        vtype = cur.unpack("<I")
        metadata[key] = _value(cur, vtype, name, depth=0, keep_strings=key == TOKENS_KEY)

    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise CorruptFile(f"{name}: general.alignment {alignment!r} is not a power of two")

    infos = []
    for _ in range(n_tensors):
        tname = _text(cur.name(), name)
        n_dims = cur.unpack("<I")
        if not 1 <= n_dims <= MAX_DIMS:
            raise CorruptFile(f"{name}: tensor {tname} has {n_dims} dimensions")
        dims = [cur.unpack("<Q") for _ in range(n_dims)]
        check_shape(name, tname, dims)
        type_id = cur.unpack("<I")
        offset = cur.unpack("<Q")
        infos.append((tname, dims, type_id, offset))

    data_start = (cur.pos + alignment - 1) // alignment * alignment
    source.keep(cur.base, cur.buf)  # read-ahead past the header often holds the first tensors
    data_size = source.size - data_start
    if data_size < 0:
        raise CorruptFile(f"{name}: GGUF file ends before its tensor data (truncated?)")
    tensors = []
    for tname, dims, type_id, offset in infos:
        try:
            qtype = GGMLQuantizationType(type_id)
        except ValueError:
            raise CorruptFile(f"{name}: tensor {tname} has unknown GGML type {type_id}") from None
        nbytes = gguf_nbytes(qtype, dims)
        if nbytes is None:
            raise CorruptFile(f"{name}: tensor {tname} ({qtype.name}) has a row length that is not whole blocks")
        if offset + nbytes > data_size:
            raise CorruptFile(f"{name}: tensor {tname} lies outside the file's data (truncated?)")
        if offset % alignment:  # llama.cpp writes every tensor at a multiple of general.alignment
            raise CorruptFile(f"{name}: tensor {tname} starts at offset {offset}, not aligned to {alignment} bytes")
        tensors.append(
            TensorInfo(
                name=tname,
                dtype=qtype.name,
                shape=tuple(reversed(dims)),
                source=source,
                offset=data_start + offset,
                nbytes=nbytes,
                format="gguf",
            )
        )
    check_no_overlap(name, tensors)
    return tensors, metadata, data_start


def _text(raw: bytes, fname: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptFile(f"{fname}: GGUF key or name is not UTF-8") from None


def _value(
    cur: _Cursor, vtype: int, fname: str, depth: int, keep_strings: bool = False
) -> int | float | str | list[int | float | str]:
    """One metadata value: a scalar, a string, a short array, or the length (_ArrayInfo) of what was skipped."""
    if vtype in _SCALARS.keys():
        scalar: int | float = cur.unpack(_SCALARS[GGUFValueType(vtype)])
        return scalar
    if vtype == GGUFValueType.STRING:
        n = cur.string_length()
        if n > KEEP_STRING_BYTES:
            cur.skip(n)
            return _ArrayInfo(n)
        return cur.take(n).decode("utf-8", errors="replace")
    if vtype == GGUFValueType.ARRAY:
        if depth > 1:
            raise CorruptFile(f"{fname}: GGUF arrays nested too deep")
        item_type = cur.unpack("<I")
        count = cur.unpack("<Q")
        if count > MAX_ARRAY_ITEMS or count > cur.remaining():
            raise CorruptFile(f"{fname}: GGUF array of {count} items does not fit in the file")
        if item_type in _SCALARS.keys():
            size = struct.calcsize(_SCALARS[GGUFValueType(item_type)])
            if count <= KEEP_ARRAY_ITEMS:
                return [cur.unpack(_SCALARS[GGUFValueType(item_type)]) for _ in range(count)]
            cur.skip(count * size)
            return _ArrayInfo(count)
        if item_type == GGUFValueType.STRING:
            if keep_strings and count <= MAX_KEPT_TOKENS:
                return [cur.take(cur.string_length()).decode("utf-8", errors="replace") for _ in range(count)]
            for _ in range(count):
                n = cur.unpack("<Q")
                cur.skip(n)
            return _ArrayInfo(count)
        if item_type == GGUFValueType.ARRAY:
            for _ in range(count):
                _value(cur, item_type, fname, depth + 1)
            return _ArrayInfo(count)
        raise CorruptFile(f"{fname}: GGUF array of unknown type {item_type}")
    raise CorruptFile(f"{fname}: unknown GGUF value type {vtype}")


class _ArrayInfo(int):
    """A large metadata array (or very long string), kept only as its length."""

"""How a probe keeps the rows it read: in the source's own precision, decoded to float32 only on use.

A probe of a bf16 model holds bf16 bits, of a Q8_0 GGUF its Q8_0 blocks: so its size in
memory and on disk is about the bytes it read, never 2x (bf16 -> float32) or 4x (Q8_0 ->
float32). npz has no bfloat16 dtype, so bf16 rows are kept as their uint16 bits, and each
array carries the name of its encoding. Decoding is exact: a decoded row is what
``formats.dtypes.decode_rows`` gives for the bytes read.

Encodings: ``F32``, ``F16``, ``BF16`` (uint16 bits), and ``gguf:<type>`` for any other GGML
type (Q8_0, Q4_0, K-quants, IQ*: the raw blocks as uint8). Sources that cannot be kept as
they are (F64, FP8 with a separate scale tensor, other FP8) are kept as float32.
"""

from __future__ import annotations

import numpy as np

from ..formats.dtypes import decode_rows

_PLAIN: dict[str, np.dtype] = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def encoding_of(dtype: str, fmt: str, scaled: bool = False) -> str:
    """The encoding rows of a tensor of this dtype are kept in."""
    if scaled:
        return "F32"  # FP8 values only mean something times their scale tensor
    if dtype in _PLAIN:
        return dtype
    if fmt == "gguf":
        return f"gguf:{dtype}"
    return "F32"


def storage_dtype(encoding: str) -> np.dtype:
    return _PLAIN.get(encoding, np.dtype(np.uint8))


def stored_width(encoding: str, cols: int, row_bytes: int) -> int:
    """Elements of one kept row: ``cols`` for plain encodings, ``row_bytes`` for raw GGML blocks."""
    return cols if encoding in _PLAIN else row_bytes


def keep(raw: bytes, decoded: np.ndarray, encoding: str, nrows: int) -> np.ndarray:
    """The rows of ``raw`` (already decoded to float32 as ``decoded``) in their kept form."""
    if (encoding in _PLAIN and encoding != "F32") or encoding.startswith("gguf:"):
        return np.frombuffer(raw, dtype=storage_dtype(encoding)).reshape(nrows, -1)
    return decoded.astype(np.float32, copy=False)


def encode(x: np.ndarray, encoding: str) -> np.ndarray:
    """float32 values that came from ``encoding`` back into it (exact for F32, F16 and BF16 sources)."""
    x = np.asarray(x, dtype=np.float32)
    if encoding == "F16":
        return x.astype(np.float16)
    if encoding == "BF16":
        return (x.view(np.uint32) >> 16).astype(np.uint16)
    return x


def decode(kept: np.ndarray, encoding: str, cols: int) -> np.ndarray:
    """float32 (rows, cols) of kept rows."""
    if encoding == "F32":
        return kept.reshape(-1, cols) if kept.ndim != 2 else kept
    if encoding == "F16":
        return kept.astype(np.float32).reshape(-1, cols)
    if encoding == "BF16":
        return (kept.astype(np.uint32) << 16).view(np.float32).reshape(-1, cols)
    rows = kept.shape[0] if kept.ndim == 2 else 1
    return decode_rows(kept.tobytes(), encoding.removeprefix("gguf:"), "gguf", rows, cols)

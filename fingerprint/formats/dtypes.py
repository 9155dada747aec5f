"""Decode raw tensor bytes into float32 rows: safetensors dtypes and every GGML type gguf can dequantize, and
FP8 weights through their scale tensors."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gguf_quants

from ..errors import UnsupportedFormat
from .tensor import TensorInfo

FP8_BLOCK = 128  # DeepSeek-V3's weight_block_size: the edge of a block that shares one FP8 scale

# safetensors dtype -> (bytes per element, numpy dtype or None when it is not a float we can read)
SAFETENSORS_DTYPES: dict[str, tuple[int, np.dtype | None]] = {
    "F64": (8, np.dtype("<f8")),
    "F32": (4, np.dtype("<f4")),
    "F16": (2, np.dtype("<f2")),
    "BF16": (2, np.dtype(ml_dtypes.bfloat16)),
    "F8_E4M3": (1, np.dtype(ml_dtypes.float8_e4m3fn)),
    "F8_E5M2": (1, np.dtype(ml_dtypes.float8_e5m2)),
    "F8_E8M0": (1, np.dtype(ml_dtypes.float8_e8m0fnu)),
    "BOOL": (1, None),
    "U8": (1, None),
    "I8": (1, None),
    "I16": (2, None),
    "U16": (2, None),
    "I32": (4, None),
    "U32": (4, None),
    "I64": (8, None),
    "U64": (8, None),
}

_GGUF_PLAIN: dict[GGMLQuantizationType, np.dtype] = {
    GGMLQuantizationType.F32: np.dtype("<f4"),
    GGMLQuantizationType.F16: np.dtype("<f2"),
    GGMLQuantizationType.F64: np.dtype("<f8"),
}


def gguf_type(name: str) -> GGMLQuantizationType:
    return GGMLQuantizationType[name]


def gguf_nbytes(qtype: GGMLQuantizationType, dims: list[int]) -> int | None:
    """Bytes of a GGUF tensor with dims in GGUF order (ne0 first); None when ne0 is not whole blocks."""
    block, type_size = GGML_QUANT_SIZES[qtype]
    if not dims:
        dims = [1]
    if dims[0] % block:
        return None
    n = dims[0] // block * type_size
    for d in dims[1:]:
        n *= d
    return n


# the dtype of a packed Linear folded into one logical tensor (formats/packed.py): read by units, never by decode_rows
PACKED_DTYPES = ("GPTQ", "AWQ", "BNB4", "CT")

# GGML's plain integer types hold no float weights (llama.cpp uses them for e.g. token ids, never for projections)
_GGUF_INTEGER = {"I8", "I16", "I32", "I64"}


def is_float_dtype(dtype: str, fmt: str) -> bool:
    if fmt == "gguf":
        return dtype in GGMLQuantizationType.__members__ and dtype not in _GGUF_INTEGER
    if dtype in PACKED_DTYPES:
        return True
    spec = SAFETENSORS_DTYPES.get(dtype)
    return spec is not None and spec[1] is not None


def decode_rows(raw: bytes, dtype: str, fmt: str, nrows: int, cols: int) -> np.ndarray:
    """Return a float32 array (nrows, cols) from the raw bytes of ``nrows`` whole rows."""
    if fmt != "gguf":  # safetensors and PyTorch zip checkpoints: plain little-endian elements, named alike
        spec = SAFETENSORS_DTYPES.get(dtype)
        if spec is None or spec[1] is None:
            raise UnsupportedFormat(f"tensors of dtype {dtype} are not floating-point weights this tool can read")
        if dtype == "BF16":  # bf16 is the top half of an f32: a shift is much faster than a cast
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            return u.view(np.float32).reshape(nrows, cols)
        return np.frombuffer(raw, dtype=spec[1]).astype(np.float32).reshape(nrows, cols)
    qtype = gguf_type(dtype)
    if qtype in _GGUF_PLAIN:
        return np.frombuffer(raw, dtype=_GGUF_PLAIN[qtype]).astype(np.float32).reshape(nrows, cols)
    if qtype == GGMLQuantizationType.BF16:
        u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return u.view(np.float32).reshape(nrows, cols)
    data = np.frombuffer(raw, dtype=np.uint8).reshape(nrows, -1)
    try:
        out = gguf_quants.dequantize(data, qtype)
    except NotImplementedError:
        raise UnsupportedFormat(f"GGUF type {dtype} cannot be dequantized by the gguf library yet") from None
    return np.asarray(out, dtype=np.float32).reshape(nrows, cols)


def read_scale(scale: TensorInfo) -> np.ndarray:
    """An FP8 weight's scale tensor (weight_scale_inv / weight_scale), read whole: it is small."""
    raw = scale.source.read(scale.offset, scale.nbytes)
    return decode_rows(raw, scale.dtype, scale.format, scale.rows, scale.cols).reshape(scale.shape)


def apply_fp8_scale(x: np.ndarray, scale: np.ndarray, first_row: int, shape: tuple[int, ...]) -> np.ndarray:
    """Rows ``first_row ..`` of an FP8 weight of ``shape``, decoded to float32 in ``x``, times their scales:
    one scale for the whole tensor, one per output row (compressed-tensors), or one per block of
    FP8_BLOCK x FP8_BLOCK elements (DeepSeek-V3's weight_scale_inv[i // 128, j // 128])."""
    rows, cols = x.shape
    n_rows = shape[0] if len(shape) > 1 else 1
    scaled: np.ndarray
    if scale.size == 1:
        return x * float(scale.reshape(-1)[0])
    if scale.shape[0] == n_rows and scale.size == n_rows:
        scaled = x * scale.reshape(-1)[first_row : first_row + rows, None]
        return scaled
    grid = scale.reshape(scale.shape[0], -1)
    block_rows = _block_size(n_rows, grid.shape[0])
    block_cols = _block_size(shape[-1], grid.shape[1])
    row_idx = np.arange(first_row, first_row + rows) // block_rows
    col_idx = np.arange(cols) // block_cols
    scaled = x * grid[np.ix_(row_idx, col_idx)]
    return scaled


def _block_size(n: int, blocks: int) -> int:
    """Block edge along one axis: FP8_BLOCK when it fits, else n / blocks."""
    return FP8_BLOCK if math.ceil(n / FP8_BLOCK) == blocks else math.ceil(n / blocks)


def requantized(x: np.ndarray, dtype: str) -> np.ndarray | None:
    """Float rows ``x`` rounded as a GGUF file of type ``dtype`` rounds them (quantized, then dequantized, by the
    gguf library's reference quantizer): what a quantized copy of these very weights would hold. None for a type
    the gguf library cannot quantize (K-quants, IQ types) or rows that are not whole blocks."""
    try:
        qtype = gguf_type(dtype)
    except KeyError:
        return None
    block = GGML_QUANT_SIZES[qtype][0]
    if x.ndim != 2 or x.shape[1] % block:
        return None
    try:
        blocks = gguf_quants.quantize(np.ascontiguousarray(x, dtype=np.float32), qtype)
        return np.asarray(gguf_quants.dequantize(blocks, qtype), dtype=np.float32).reshape(x.shape)
    except (NotImplementedError, ValueError):
        return None

"""Where one tensor's bytes are, and how to view them as rows."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import CorruptFile
from ..sources.base import ByteSource

if TYPE_CHECKING:
    from .packed import PackedTensor

MAX_DIM = 1 << 31  # no real weight has a dimension of 2^31 or more (the largest vocabularies are ~10^6)


def check_shape(fname: str, tname: str, shape: list[int] | tuple[int, ...]) -> None:
    """Refuse a declared shape no real tensor has, before anything is planned or allocated from it
    (a zero-size tensor of 2^60 rows costs no bytes, but a plan over its rows would never end)."""
    if any(d >= MAX_DIM for d in shape):
        raise CorruptFile(f"{fname}: {tname} declares a dimension of 2^31 or more ({_dims(shape)})")


def _dims(shape: list[int] | tuple[int, ...]) -> str:
    text = "x".join(str(d) for d in shape)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors dtype ("BF16", for PyTorch checkpoints too) or GGML type name ("Q8_0")
    shape: tuple[int, ...]  # numpy order (GGUF dims reversed)
    source: ByteSource
    offset: int  # absolute byte offset in the file
    nbytes: int
    format: str  # "safetensors", "gguf" or "pytorch"
    packed: PackedTensor | None = field(default=None, repr=False, compare=False)  # a GPTQ/AWQ/bnb Linear's parts

    @property
    def rows(self) -> int:
        """Rows of the 2-D view (all dims but the last); each row is a contiguous byte range."""
        return math.prod(self.shape[:-1]) if len(self.shape) > 1 else 1

    @property
    def cols(self) -> int:
        return self.shape[-1] if self.shape else 1

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def row_bytes(self) -> int:
        return self.nbytes // self.rows if self.rows else 0


def check_no_overlap(fname: str, tensors: list[TensorInfo]) -> None:
    """Two tensors sharing bytes mean a damaged or malicious header."""
    prev_end, prev_name = -1, ""
    for t in sorted((t for t in tensors if t.nbytes), key=lambda t: t.offset):
        if t.offset < prev_end:
            raise CorruptFile(f"{fname}: tensors {prev_name} and {t.name} overlap")
        prev_end, prev_name = t.offset + t.nbytes, t.name

"""A probe: the sample of one model's weights that every lineage signal is computed from.

What it reads is planned in plan.py, under a budget of bytes and of requests (at most 128 MB
and 1,000 reads per model, headers and tokenizer included), and read by reading.py; how the rows
are kept (in the source's precision, decoded to float32 on use) is rowcodec.py. Small models are
read whole ("exact"); larger ones are sampled and say so. A probe is stored as an npz without pickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..result import Mode, WeightFormat
from . import rowcodec
from .slots import runs

PROBE_VERSION = 4  # 4: rows chosen by their count, not the width; 3: rows kept in the source's precision


@dataclass
class RowSample:
    """Some rows of a 2-D matrix, in the Hugging Face row order, kept in the source's precision. ``shape`` is the
    matrix's as stored: (out, in), or (in, out) when ``transposed``."""

    rows: np.ndarray  # int64 row indices, ascending
    kept: np.ndarray  # rowcodec form: (len(rows), cols) F32/F16/BF16 bits, or (len(rows), row bytes) GGML blocks
    encoding: str
    shape: tuple[int, int]
    transposed: bool = False  # rows are input dimensions: a weight stored (in, out), GPT-2's Conv1D

    @property
    def data(self) -> np.ndarray:
        """The rows as float32 (len(rows), cols), decoded anew on each use: keep it only while needed."""
        return rowcodec.decode(self.kept, self.encoding, self.shape[1])

    def data_of(self, index: np.ndarray) -> np.ndarray:
        """float32 of the rows at these positions of the sample (only those are decoded)."""
        return rowcodec.decode(self.kept[index], self.encoding, self.shape[1])

    @property
    def complete(self) -> bool:
        return len(self.rows) == self.shape[0]

    @property
    def nbytes(self) -> int:
        return self.kept.nbytes


@dataclass(frozen=True)
class Probe:
    """The rows read from one model, by role and layer, with what was read and how."""

    model: str
    revision: str
    format: WeightFormat
    architecture: str | None
    n_layers: int
    config: dict[str, Any]  # hidden, heads, kv_heads, head_dim, experts, gguf_permuted, slot_elements
    mode: Mode
    vectors: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # role -> layer -> float32 vector
    matrices: dict[str, dict[int, RowSample]] = field(default_factory=dict)  # role -> layer -> rows
    experts: dict[str, dict[tuple[int, int], RowSample]] = field(default_factory=dict)  # role -> (layer, expert)
    tokens: list[str] = field(default_factory=list)  # texts of the embedding rows kept
    embedding_rows: RowSample | None = None  # rows = token ids, one per entry of ``tokens``
    vocab_size: int = 0
    vocab_source: str = ""
    bytes_read: int = 0
    bytes_total: int = 0
    requests: int = 0  # reads of this model, headers and tokenizer included
    reads: dict[str, int] = field(default_factory=dict)  # bytes per part: headers, vectors, matrices_<role>, ...
    vector_encodings: dict[str, str] = field(default_factory=dict)  # role -> how its vectors are kept on disk
    notes: list[str] = field(default_factory=list)
    tool_version: str = __version__
    computed_at: str = ""

    @property
    def embedding(self) -> np.ndarray | None:
        """float32 (len(tokens), hidden), decoded anew on each use."""
        return self.embedding_rows.data if self.embedding_rows is not None else None

    @property
    def memory_bytes(self) -> int:
        """Bytes of the arrays this probe holds."""
        n = sum(v.nbytes for layers in self.vectors.values() for v in layers.values())
        n += sum(r.nbytes for layers in self.matrices.values() for r in layers.values())
        n += sum(r.nbytes for items in self.experts.values() for r in items.values())
        return n + (self.embedding_rows.nbytes if self.embedding_rows is not None else 0)

    @property
    def is_moe(self) -> bool:
        return bool(self.experts)

    def meta(self) -> dict[str, Any]:
        """Everything but the arrays (the JSON part of the stored file)."""
        keys = (
            "model",
            "revision",
            "format",
            "architecture",
            "n_layers",
            "config",
            "mode",
            "tokens",
            "vocab_size",
            "vocab_source",
            "bytes_read",
            "bytes_total",
            "requests",
            "reads",
            "vector_encodings",
            "notes",
            "tool_version",
            "computed_at",
        )
        return {k: getattr(self, k) for k in keys}

    # ---- storage: an npz without pickles: every array packed into one pool per numpy dtype, stored
    # as it is (the rows are already as compact as the source); the index and metadata as deflated JSON ----
    def save(self, path: Path) -> None:
        """Write the probe to ``path`` atomically (readers see the old file or the whole new one)."""
        pools: dict[str, list[np.ndarray]] = {}
        index: dict[str, dict[str, Any]] = {}

        def put(key: str, arr: np.ndarray, **extra: Any) -> None:
            arr = np.ascontiguousarray(arr)
            pool = pools.setdefault(arr.dtype.name, [])
            index[key] = {
                "pool": arr.dtype.name,
                "offset": sum(a.size for a in pool),
                "shape": list(arr.shape),
                **extra,
            }
            pool.append(arr)

        for role, layers in self.vectors.items():
            enc = self.vector_encodings.get(role, "F32")
            for layer, v in layers.items():
                put(f"v|{role}|{layer}", rowcodec.encode(v, enc), encoding=enc)
        samples = [(f"m|{k}|{layer}", s) for k, layers in self.matrices.items() for layer, s in layers.items()]
        samples += [(f"e|{k}|{layer}|{e}", s) for k, items in self.experts.items() for (layer, e), s in items.items()]
        samples += [("embedding", self.embedding_rows)] if self.embedding_rows is not None else []
        for key, s in samples:
            put(key, s.kept, encoding=s.encoding, matrix=list(s.shape), runs=runs(s.rows), transposed=s.transposed)
        meta = json.dumps({**self.meta(), "version": PROBE_VERSION, "index": index}).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probe-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w") as z:
                _write_npy(z, "meta", [np.frombuffer(meta, np.uint8)], zipfile.ZIP_DEFLATED)
                for name, arrays in pools.items():
                    _write_npy(z, f"pool_{name}", arrays, zipfile.ZIP_STORED)
            os.replace(tmp, path)  # readers see the old file or the whole new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Probe:
        """A probe saved by ``save``; ValueError when another version wrote it."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.pop("version", None) != PROBE_VERSION:
                raise ValueError("probe written by another version")
            index = meta.pop("index")
            pools = {name: z[f"pool_{name}"] for name in {e["pool"] for e in index.values()}}
        vectors: dict[str, dict[int, np.ndarray]] = {}
        matrices: dict[str, dict[int, RowSample]] = {}
        experts: dict[str, dict[tuple[int, int], RowSample]] = {}
        embedding_rows = None
        for key, e in index.items():
            arr = pools[e["pool"]][e["offset"] : e["offset"] + int(np.prod(e["shape"]))].reshape(e["shape"])
            parts = key.split("|")
            if parts[0] == "v":
                vectors.setdefault(parts[1], {})[int(parts[2])] = rowcodec.decode(
                    arr, e["encoding"], arr.shape[-1]
                ).reshape(-1)
                continue
            rows = np.concatenate([np.arange(a, b) for a, b in e["runs"]]) if e["runs"] else np.zeros(0, np.int64)
            sample = RowSample(rows.astype(np.int64), arr, e["encoding"], tuple(e["matrix"]), bool(e["transposed"]))
            if parts[0] == "m":
                matrices.setdefault(parts[1], {})[int(parts[2])] = sample
            elif parts[0] == "e":
                experts.setdefault(parts[1], {})[(int(parts[2]), int(parts[3]))] = sample
            else:
                embedding_rows = sample
        return cls(**meta, vectors=vectors, matrices=matrices, experts=experts, embedding_rows=embedding_rows)


def _write_npy(z: zipfile.ZipFile, name: str, arrays: list[np.ndarray], compression: int) -> None:
    """Arrays of one dtype, one after the other, as a single 1-D .npy entry (written piece by piece: no copy)."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = compression
    with z.open(info, "w", force_zip64=True) as fh:
        header = {
            "descr": np.lib.format.dtype_to_descr(arrays[0].dtype),
            "fortran_order": False,
            "shape": (sum(a.size for a in arrays),),
        }
        np.lib.format.write_array_header_2_0(fh, header)
        for a in arrays:
            fh.write(a.data.cast("B"))


def probe_key(model_key: str, revision: str) -> str:
    """The file name (without .npz) of a model's probe in the cache: model key (with the budget), revision,
    probe version."""
    return hashlib.sha256(f"{model_key}|{revision}|{PROBE_VERSION}".encode()).hexdigest()[:32]

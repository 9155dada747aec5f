"""Checkpoint folders as transformers' ``save_pretrained`` writes them, through the safetensors library's own writer.

No hand-written safetensors bytes here: files with a malformed or padded header are made by the tests that need
them (tests/test_fuzz_headers.py, tests/test_bad_input.py). The reader below exists because
``safetensors.numpy`` cannot load F8 tensors into numpy; it reads any file these writers make.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .base import ST_DTYPES, Layout


def write_safetensors_file(tensors: Mapping[str, np.ndarray], path, metadata: Mapping[str, str] | None = None) -> Path:
    save_file(dict(tensors), str(path), metadata=dict(metadata) if metadata is not None else None)
    return Path(path)


def write_safetensors_dir(layout: Layout, path, *, dtype: str = "F32", shards: int = 1) -> Path:
    """A checkpoint folder as transformers' save_pretrained writes it.

    ``config.json`` (+ ``layout.extra_files``) and either ``model.safetensors`` or
    ``model-0000i-of-0000n.safetensors`` + ``model.safetensors.index.json``
    (``{"metadata": {"total_size": bytes}, "weight_map": {name: file}}``, keys sorted). Shards are cut in
    state-dict order by size, so one layer can straddle two files. F32 tensors are stored as ``dtype`` unless the
    layout fixes their dtype (FP8 + scale_inv, GPTQ, bnb ...); every file's metadata is ``{"format": "pt"}``."""
    if dtype not in ("F32", "F16", "BF16"):
        raise ValueError(dtype)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(layout.config, indent=2) + "\n")
    for fname, content in layout.extra_files.items():
        (path / fname).write_text(json.dumps(content, indent=2) + "\n")

    stored = {name: _as_dtype(arr, layout.stored_dtype(name, dtype)) for name, arr in layout.tensors.items()}
    names = list(stored)
    if shards < 1 or shards > len(names):
        raise ValueError(f"shards={shards}")
    total = sum(a.nbytes for a in stored.values())
    groups: list[list[str]] = [[] for _ in range(shards)]
    acc, cur = 0, 0
    for k, name in enumerate(names):
        remaining = len(names) - k
        want = min(int(acc * shards / total), shards - 1) if total else 0
        # advance one shard at a time; never leave a later shard empty
        if groups[cur] and (want > cur or shards - cur - 1 >= remaining):
            cur += 1
        groups[cur].append(name)
        acc += stored[name].nbytes

    if shards == 1:
        write_safetensors_file(stored, path / "model.safetensors", {"format": "pt"})
        return path
    weight_map = {}
    for j, group in enumerate(groups):
        fname = f"model-{j + 1:05d}-of-{shards:05d}.safetensors"
        write_safetensors_file({n: stored[n] for n in group}, path / fname, {"format": "pt"})
        weight_map.update(dict.fromkeys(group, fname))
    index = {"metadata": {"total_size": int(total)}, "weight_map": weight_map}
    (path / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return path


def read_safetensors_header(path) -> tuple[int, dict]:
    """(header length N, parsed JSON header)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return n, json.loads(f.read(n))


def read_safetensors_file(path) -> dict[str, np.ndarray]:
    """Every tensor of the file, F8 included."""
    n, header = read_safetensors_header(path)
    data = Path(path).read_bytes()[8 + n :]
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        a, z = info["data_offsets"]
        out[name] = np.frombuffer(data[a:z], dtype=ST_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def _as_dtype(arr: np.ndarray, st: str) -> np.ndarray:
    target = ST_DTYPES[st]
    if arr.dtype == target:
        return arr
    if arr.dtype.kind == "f" or arr.dtype == ST_DTYPES["BF16"]:
        return arr.astype(np.float32).astype(target)
    return arr.astype(target)

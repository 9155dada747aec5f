"""PyTorch zip checkpoints in torch.save's layout, written with the stdlib (torch is not a test dependency).

``torch_zip_bytes`` writes what ``torch.save(state_dict, f)`` writes (torch 2.x): records ``<archive>/data.pkl``,
``.format_version``, ``.storage_alignment``, ``byteorder``, ``data/<key>`` (one per storage, raw little-endian
elements), ``version``, ``.data/serialization_id``, each STORED, each record's data at a multiple of 64 bytes (a
local extra field ``FB`` pads the header), and ``data.pkl`` with the opcodes torch's pickler emits (protocol 2:
``GLOBAL torch._utils _rebuild_tensor_v2``, ``BINPERSID`` storage references, the memo as torch fills it). Checked
once against torch 2.13.0: ``torch.load(f, weights_only=True)`` of these files gives the arrays written, and their
``data.pkl`` is byte-for-byte torch's for the same state dict (``tests/torch_files/make_torch_files.py``). The
differences: no data descriptors after records (zipfile writes sizes in the local header; torch writes both),
so the reader's two ways of locating a storage's data are both exercised.

The hostile variants (a global outside the allowlist, a REDUCE of os.system, bombs) are built by the tests from
``pickle_ops``: these helpers only assemble bytes, they never unpickle anything.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import ml_dtypes
import numpy as np

ALIGNMENT = 64
STORAGE_CLASS = {
    np.dtype("<f4"): "FloatStorage",
    np.dtype("<f2"): "HalfStorage",
    np.dtype(ml_dtypes.bfloat16): "BFloat16Storage",
    np.dtype("<f8"): "DoubleStorage",
    np.dtype("<i8"): "LongStorage",
    np.dtype("<i4"): "IntStorage",
}


class PickleOps:
    """Protocol-2 opcodes, written the way torch's pickler writes a state dict (memo slots in order)."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo: dict[object, int] = {}

    def put(self, key: object | None = None) -> None:
        slot = len(self.memo)
        self.memo[key if key is not None else ("anon", slot)] = slot
        self.out += b"q" + bytes([slot]) if slot < 256 else b"r" + struct.pack("<I", slot)

    def get_or(self, key: object, emit: Callable[[], object]) -> None:
        if key in self.memo:
            slot = self.memo[key]
            self.out += b"h" + bytes([slot]) if slot < 256 else b"j" + struct.pack("<I", slot)
        else:
            emit()
            self.put(key)

    def glob(self, module: str, name: str) -> None:
        self.get_or(("global", module, name), lambda: self.out.extend(f"c{module}\n{name}\n".encode()))

    def string(self, text: str) -> None:
        raw = text.encode()
        self.get_or(("str", text), lambda: self.out.extend(b"X" + struct.pack("<I", len(raw)) + raw))

    def int(self, value: int) -> None:
        if 0 <= value < 256:
            self.out += b"K" + bytes([value])
        elif 0 <= value < 65536:
            self.out += b"M" + struct.pack("<H", value)
        elif -(2**31) <= value < 2**31:
            self.out += b"J" + struct.pack("<i", value)
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw

    def ints_tuple(self, values: tuple[int, ...]) -> None:
        if not values:
            self.out += b")"  # the empty tuple is never memoized
            return
        if len(values) <= 3:
            for v in values:
                self.int(v)
            self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(values)]
        else:
            self.out += b"("
            for v in values:
                self.int(v)
            self.out += b"t"
        self.put()


def state_dict_pickle(tensors: Mapping[str, tuple[str, str, int, tuple[int, ...], tuple[int, ...], int]]) -> bytes:
    """data.pkl for an OrderedDict of tensors: name -> (storage class, key, offset, shape, stride, storage numel)."""
    p = PickleOps()
    p.glob("collections", "OrderedDict")
    p.out += b")R"
    p.put()
    p.out += b"("
    for name, (storage_class, key, offset, shape, stride, numel) in tensors.items():
        p.string(name)
        p.glob("torch._utils", "_rebuild_tensor_v2")
        p.out += b"("
        p.out += b"("
        p.string("storage")
        p.glob("torch", storage_class)
        p.string(key)
        p.string("cpu")
        p.int(numel)
        p.out += b"t"
        p.put()
        p.out += b"Q"
        p.int(offset)
        p.ints_tuple(shape)
        p.ints_tuple(stride)
        p.out += b"\x89"  # requires_grad False
        p.glob("collections", "OrderedDict")
        p.out += b")R"
        p.put()
        p.out += b"t"
        p.put()
        p.out += b"R"
        p.put()
    p.out += b"u."
    return bytes(p.out)


def _record(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """A STORED record whose data starts at a multiple of ALIGNMENT, padded as torch pads: an extra field 'FB'."""
    offset = zf.fp.tell() if zf.fp is not None else 0
    start = offset + 30 + len(name.encode()) + 4
    pad = (-start) % ALIGNMENT
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    zf.writestr(info, data)


def torch_zip_bytes(
    state: Mapping[str, np.ndarray],
    *,
    archive: str = "archive",
    pickle_bytes: bytes | None = None,
    compress_storages: bool = False,
) -> bytes:
    """A torch.save zip of ``state`` (each array its own storage, contiguous), or of ``pickle_bytes`` as data.pkl."""
    described = {}
    storages: list[bytes] = []
    for i, (name, arr) in enumerate(state.items()):
        arr = np.require(arr, requirements="C")  # ascontiguousarray would make a 0-d array 1-d
        shape = tuple(int(d) for d in arr.shape)
        stride = tuple(int(s // arr.itemsize) for s in arr.strides) if arr.ndim else ()
        described[name] = (STORAGE_CLASS[arr.dtype], str(i), 0, shape, stride, int(arr.size))
        storages.append(arr.tobytes())
    pkl = pickle_bytes if pickle_bytes is not None else state_dict_pickle(described)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        _record(zf, f"{archive}/data.pkl", pkl)
        _record(zf, f"{archive}/.format_version", b"1")
        _record(zf, f"{archive}/.storage_alignment", b"64")
        _record(zf, f"{archive}/byteorder", b"little")
        for i, raw in enumerate(storages):
            if compress_storages:
                zf.writestr(f"{archive}/data/{i}", raw, compress_type=zipfile.ZIP_DEFLATED)
            else:
                _record(zf, f"{archive}/data/{i}", raw)
        _record(zf, f"{archive}/version", b"3\n")
        _record(zf, f"{archive}/.data/serialization_id", b"0" * 40)
    return buf.getvalue()


def write_torch_dir(state: Mapping[str, np.ndarray], path, config: Mapping | None = None, shards: int = 1) -> Path:
    """A folder as transformers' save_pretrained writes a pickle checkpoint: pytorch_model.bin, or shards
    pytorch_model-0000i-of-0000n.bin and pytorch_model.bin.index.json; config.json."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    names = list(state)
    if shards == 1:
        (path / "pytorch_model.bin").write_bytes(torch_zip_bytes(state, archive="pytorch_model"))
        return path
    weight_map = {}
    per = -(-len(names) // shards)
    for s in range(shards):
        fname = f"pytorch_model-{s + 1:05d}-of-{shards:05d}.bin"
        part = {n: state[n] for n in names[s * per : (s + 1) * per]}
        (path / fname).write_bytes(torch_zip_bytes(part, archive=fname.removesuffix(".bin")))
        weight_map |= dict.fromkeys(part, fname)
    total = sum(a.nbytes for a in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    return path

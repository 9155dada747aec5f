"""PyTorch zip checkpoints (``torch.save``'s format since torch 1.6: ``.bin``, ``.pt``, ``.pth``) read without
unpickling and without reading the file whole.

The archive holds ``<archive>/data.pkl`` (the state dict: names -> tensors, each a view of a storage),
``<archive>/data/<key>`` (one STORED entry per storage: raw little-endian elements), ``<archive>/byteorder``
and version records. Reads: the file's tail (zip end record and central directory), then one window from
``data.pkl``'s local header through the next few small entries (``data.pkl`` itself, ``byteorder``). ``data.pkl``
goes through ``torch_pickle``'s restricted unpickler, which runs nothing.

Where each storage's data starts: torch pads every local header's extra field so that data starts at a multiple
of the archive's storage alignment (64 bytes, or the ``.storage_alignment`` record) and writes each entry right
after the previous one. So the start is the one aligned position between an entry's local header and the next
entry's, less a data descriptor; the local headers read in the window confirm the rule, and any entry it does not
pin down has its own local header read.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from ..errors import CorruptFile, PickleRefused, UnsupportedFormat
from ..sources.base import ByteSource
from .tensor import TensorInfo, check_shape
from .torch_pickle import ITEMSIZE, TensorDesc, check_size, load_tensors
from .zip_index import LOCAL_HEADER_SIZE, ZipEntry, data_start, local_data_start, looks_like_zip, read_central_directory

FORMAT = "pytorch"
SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")  # the names torch.save's files go by
DEFAULT_ALIGNMENT = 64  # torch's kFieldAlignment
WINDOW_SLACK = 4096  # bytes read past data.pkl to take in the small records after it (byteorder, versions)
_DESCRIPTOR_SIZES = (16, 12, 24, 20)  # data descriptor with/without signature, 32- or 64-bit sizes
_FLAG_DESCRIPTOR = 0x08
_PICKLE_PROTO = 0x80

REFUSE_COMPRESSED_FIX = (
    "torch.save writes storages uncompressed; re-save the checkpoint with torch.save, or convert it to safetensors."
)


def read_header(source: ByteSource) -> tuple[list[TensorInfo], dict[str, Any], int]:
    """(contiguous tensors, {"archive", "skipped"}: the names of non-contiguous views left out, bytes of data.pkl)."""
    name = source.name
    if source.size < 22:
        _refuse_not_zip(source)
    try:
        entries, directory = read_central_directory(source)
    except CorruptFile:
        _refuse_not_zip(source)  # says why when it is a legacy pickle or no zip at all
        raise
    by_name = {e.name: e for e in entries}
    pickles = [e for e in entries if e.name.endswith("data.pkl") and e.name.count("/") == 1]
    if len(pickles) != 1:
        raise CorruptFile(f"{name}: a zip file, but not a PyTorch checkpoint (no single <archive>/data.pkl)")
    pkl = pickles[0]
    prefix = pkl.name.removesuffix("data.pkl")
    _require_stored(name, pkl)
    check_size(name, pkl.size)
    window, window_start = _read_window(source, entries, pkl)
    records = _Records(source, window, window_start)
    data = records.data(pkl)
    byteorder = by_name.get(prefix + "byteorder")
    if byteorder is not None:
        order = records.data(byteorder, limit=16).strip()
        if order != b"little":
            raise UnsupportedFormat(f"{name}: a {order.decode(errors='replace')!r}-endian checkpoint", _BIG_ENDIAN_FIX)
    alignment = DEFAULT_ALIGNMENT
    if (align_entry := by_name.get(prefix + ".storage_alignment")) is not None:
        text = records.data(align_entry, limit=16).strip()
        if not text.isdigit() or not 0 < int(text) <= 1 << 20:
            raise CorruptFile(f"{name}: its .storage_alignment record is not a number")
        alignment = int(text)

    descs = load_tensors(name, data)
    following = {e.name: nxt.header_offset for e, nxt in pairwise(entries)}
    following[entries[-1].name] = directory
    records.check_alignment_rule(entries, following, alignment)
    starts: dict[str, int] = {}
    tensors: list[TensorInfo] = []
    skipped: list[str] = []
    for tname, desc in descs.items():
        entry = by_name.get(f"{prefix}data/{desc.storage.key}")
        if entry is None:
            raise CorruptFile(f"{name}: {tname} refers to storage {desc.storage.key!r}, which the archive lacks")
        _require_stored(name, entry)
        check_shape(name, tname, desc.shape)
        if not desc.contiguous:
            skipped.append(tname)
            continue
        if entry.name not in starts:
            starts[entry.name] = records.start(entry, following[entry.name], alignment)
        tensors.append(_tensor_info(name, tname, desc, entry, starts[entry.name], source))
    return tensors, {"archive": prefix.rstrip("/"), "skipped": skipped}, len(data)


_BIG_ENDIAN_FIX = "Only little-endian checkpoints are read; re-save it on a little-endian machine or as safetensors."


def _tensor_info(
    fname: str, tname: str, desc: TensorDesc, entry: ZipEntry, start: int, source: ByteSource
) -> TensorInfo:
    itemsize = ITEMSIZE.get(desc.dtype)
    if itemsize is None:
        raise CorruptFile(f"{fname}: {tname} has an unknown dtype {desc.dtype}")
    numel = 1
    for d in desc.shape:
        numel *= d
    begin, nbytes = desc.offset * itemsize, numel * itemsize
    if begin + nbytes > entry.size or desc.storage.numel * ITEMSIZE[desc.storage.dtype] > entry.size:
        raise CorruptFile(
            f"{fname}: {tname} ({'x'.join(map(str, desc.shape))} {desc.dtype} at element {desc.offset}) lies outside "
            f"its storage ({entry.size:,} bytes)"
        )
    return TensorInfo(
        name=tname,
        dtype=desc.dtype,
        shape=desc.shape,
        source=source,
        offset=start + begin,
        nbytes=nbytes,
        format=FORMAT,
    )


def _require_stored(fname: str, entry: ZipEntry) -> None:
    if not entry.stored:
        raise UnsupportedFormat(
            f"{fname}: zip entry {entry.name} is compressed (method {entry.method}), and only stored (uncompressed) "
            "entries are read: their rows are byte ranges of the file",
            REFUSE_COMPRESSED_FIX,
        )


def _refuse_not_zip(source: ByteSource) -> None:
    head = source.read(0, min(4, source.size))
    if head[:1] == bytes([_PICKLE_PROTO]) or head[:1] in (b"(", b"}", b"]"):
        raise PickleRefused(
            f"{source.name} is a legacy PyTorch pickle (written by torch before 1.6, or by pickle itself), not a zip "
            "checkpoint: it cannot be read without unpickling"
        )
    if not looks_like_zip(head):
        raise CorruptFile(f"{source.name} is neither a PyTorch zip checkpoint nor a pickle")


def _read_window(source: ByteSource, entries: list[ZipEntry], pkl: ZipEntry) -> tuple[bytes, int]:
    """One read from data.pkl's local header through data.pkl and the small records after it."""
    start = pkl.header_offset
    end = start + LOCAL_HEADER_SIZE + 2 * len(pkl.name.encode()) + 256 + pkl.size + WINDOW_SLACK
    return source.read(start, min(end, source.size) - start), start


class _Records:
    """Reads of records and local headers, served from the window when it holds them."""

    def __init__(self, source: ByteSource, window: bytes, window_start: int) -> None:
        self.source = source
        self.window = window
        self.window_start = window_start
        self.rule_holds = True  # the local headers in the window agree with the alignment rule

    def _bytes(self, offset: int, length: int) -> bytes:
        rel = offset - self.window_start
        if 0 <= rel and rel + length <= len(self.window):
            return self.window[rel : rel + length]
        return self.source.read(offset, length)

    def _local_start(self, entry: ZipEntry) -> int | None:
        """The data start from the local header, when the window holds that header; else None."""
        rel = entry.header_offset - self.window_start
        if 0 <= rel and rel + LOCAL_HEADER_SIZE <= len(self.window):
            return local_data_start(self.source.name, entry, self.window[rel : rel + LOCAL_HEADER_SIZE])
        return None

    def data(self, entry: ZipEntry, limit: int | None = None) -> bytes:
        _require_stored(self.source.name, entry)
        if limit is not None and entry.size > limit:
            raise CorruptFile(f"{self.source.name}: record {entry.name} is {entry.size:,} bytes, not a short text")
        start = self._local_start(entry)
        if start is None:
            start = data_start(self.source, entry)
        if start + entry.size > self.source.size:
            raise CorruptFile(f"{self.source.name}: zip entry {entry.name} runs past the end of the file")
        return self._bytes(start, entry.size)

    def check_alignment_rule(self, entries: list[ZipEntry], following: dict[str, int], alignment: int) -> None:
        """Compare the rule with every local header the window holds; one disagreement and every storage's own
        local header is read instead (a zip written by something other than torch)."""
        for entry in entries:
            actual = self._local_start(entry)
            if actual is not None and _aligned_start(entry, following[entry.name], alignment) not in (actual, None):
                self.rule_holds = False

    def start(self, entry: ZipEntry, next_header: int, alignment: int) -> int:
        """Where a storage's data starts (see the module's docstring)."""
        start = self._local_start(entry)
        if start is None and self.rule_holds:
            start = _aligned_start(entry, next_header, alignment)
        if start is None:
            start = data_start(self.source, entry)
        if start + entry.size > self.source.size or start < entry.header_offset + LOCAL_HEADER_SIZE:
            raise CorruptFile(f"{self.source.name}: zip entry {entry.name} runs past the end of the file")
        return start


def _aligned_start(entry: ZipEntry, next_header: int, alignment: int) -> int | None:
    """The one aligned start between the entry's local header and the next entry's header, or None."""
    lowest = entry.header_offset + LOCAL_HEADER_SIZE + len(entry.name.encode())
    sizes = _DESCRIPTOR_SIZES if entry.flags & _FLAG_DESCRIPTOR else (0,)
    found = {
        s
        for d in sizes
        if (s := next_header - entry.size - d) >= lowest and s - lowest <= 0xFFFF and s % alignment == 0
    }
    return found.pop() if len(found) == 1 else None

"""A zip archive's table of contents, read through a ByteSource with Range reads: the end-of-central-directory
record (and its zip64 form) from the file's tail, then the central directory, then, per entry, where its data
starts. Nothing is decompressed: callers accept only STORED entries.

Every size and count comes from the file, so each is bounded by the file's real size (or a fixed cap) before
anything is allocated from it; a damaged or hostile archive ends in CorruptFile.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..errors import CorruptFile
from ..sources.base import ByteSource

EOCD = b"PK\x05\x06"
ZIP64_LOCATOR = b"PK\x06\x07"
ZIP64_EOCD = b"PK\x06\x06"
CENTRAL = b"PK\x01\x02"
LOCAL = b"PK\x03\x04"
LOCAL_HEADER_SIZE = 30
STORED = 0
TAIL_READ = 64 * 1024 + 22  # the EOCD record plus the longest comment a zip can carry
MAX_CENTRAL_DIRECTORY = 64 << 20  # ~800,000 entries of a torch checkpoint; no state dict has that many tensors
MAX_ENTRIES = 1_000_000
_U32 = 0xFFFFFFFF
_U16 = 0xFFFF


@dataclass(frozen=True)
class ZipEntry:
    """One member of the archive, as the central directory describes it."""

    name: str
    header_offset: int  # where its local header starts
    compressed_size: int
    size: int
    method: int  # 0: stored; anything else is compressed
    flags: int

    @property
    def stored(self) -> bool:
        return self.method == STORED and self.compressed_size == self.size


def looks_like_zip(head: bytes) -> bool:
    """A zip starts with a local header (or, for an empty archive, its end record)."""
    return head.startswith((LOCAL, EOCD))


def read_central_directory(source: ByteSource) -> tuple[list[ZipEntry], int]:
    """(the archive's entries in the order of their data in the file, where the central directory starts). One
    read of the tail, one more when the central directory is longer than the tail read."""
    name, size = source.name, source.size
    tail_start = max(0, size - TAIL_READ)
    tail = source.read(tail_start, size - tail_start)
    source.keep(tail_start, tail)  # the tail often holds the last storage's data too: never fetched twice
    at = _find_eocd(tail)
    if at < 0:
        raise CorruptFile(f"{name}: no zip end record at the end of the file (a truncated or damaged checkpoint)")
    eocd_pos = tail_start + at
    (_, disk, cd_disk, _, count, cd_size, cd_offset, _) = struct.unpack("<4sHHHHIIH", tail[at : at + 22])
    if disk != cd_disk:
        raise CorruptFile(f"{name}: a multi-part zip archive, which a checkpoint never is")
    end_of_cd = eocd_pos
    if count == _U16 or cd_size == _U32 or cd_offset == _U32:
        count, cd_size, cd_offset, end_of_cd = _zip64_end(source, tail, tail_start, at)
    if count > MAX_ENTRIES or cd_size > MAX_CENTRAL_DIRECTORY or count * 46 > cd_size:
        raise CorruptFile(f"{name}: its zip directory declares {count:,} entries in {cd_size:,} bytes")
    if cd_offset + cd_size > end_of_cd:
        raise CorruptFile(f"{name}: its zip directory lies past the end of the file (a truncated file?)")
    if cd_offset >= tail_start:
        raw = tail[cd_offset - tail_start : cd_offset - tail_start + cd_size]
    else:
        raw = source.read(cd_offset, cd_size)
    entries = _parse_central(name, raw, count)
    entries.sort(key=lambda e: e.header_offset)
    limit = cd_offset
    for e in reversed(entries):  # each entry's data ends before the next entry (or the directory) begins
        if e.header_offset + LOCAL_HEADER_SIZE + e.compressed_size > limit:
            raise CorruptFile(f"{name}: zip entry {e.name!r} overlaps the next one (a damaged archive)")
        limit = e.header_offset
    return entries, cd_offset


def data_start(source: ByteSource, entry: ZipEntry) -> int:
    """Where an entry's data starts: after its local header, whose name and extra field lengths may differ from
    the central directory's (torch pads the local extra field so that storages are aligned)."""
    head = source.read(entry.header_offset, LOCAL_HEADER_SIZE)
    return local_data_start(source.name, entry, head)


def local_data_start(fname: str, entry: ZipEntry, head: bytes) -> int:
    """``data_start`` from the local header's first 30 bytes, already read."""
    if len(head) < LOCAL_HEADER_SIZE or head[:4] != LOCAL:
        raise CorruptFile(f"{fname}: zip entry {entry.name!r} has no local header where the directory says")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return entry.header_offset + LOCAL_HEADER_SIZE + int(name_len) + int(extra_len)


def _find_eocd(tail: bytes) -> int:
    """The last EOCD signature whose comment length reaches exactly to the end of the file."""
    at = tail.rfind(EOCD)
    while at >= 0:
        if at + 22 <= len(tail) and at + 22 + struct.unpack("<H", tail[at + 20 : at + 22])[0] == len(tail):
            return at
        at = tail.rfind(EOCD, 0, at)
    return -1


def _zip64_end(source: ByteSource, tail: bytes, tail_start: int, at: int) -> tuple[int, int, int, int]:
    """(entries, directory size, directory offset, where the zip64 end record starts) from the zip64 records."""
    name = source.name
    loc = at - 20
    if loc < 0 or tail[loc : loc + 4] != ZIP64_LOCATOR:
        raise CorruptFile(f"{name}: a zip64 archive without its zip64 locator")
    (record_offset,) = struct.unpack("<Q", tail[loc + 8 : loc + 16])
    if record_offset + 56 > tail_start + loc:
        raise CorruptFile(f"{name}: its zip64 end record lies past the end of the file")
    if record_offset >= tail_start:
        record = tail[record_offset - tail_start : record_offset - tail_start + 56]
    else:
        record = source.read(record_offset, 56)
    if record[:4] != ZIP64_EOCD:
        raise CorruptFile(f"{name}: no zip64 end record where its locator says")
    count, cd_size, cd_offset = struct.unpack("<QQQ", record[32:56])
    return count, cd_size, cd_offset, record_offset


def _parse_central(fname: str, raw: bytes, count: int) -> list[ZipEntry]:
    entries: list[ZipEntry] = []
    pos = 0
    for _ in range(count):
        if raw[pos : pos + 4] != CENTRAL or pos + 46 > len(raw):
            raise CorruptFile(f"{fname}: its zip directory is damaged (entry {len(entries)} has no signature)")
        (flags, method) = struct.unpack("<HH", raw[pos + 8 : pos + 12])
        csize, usize = struct.unpack("<II", raw[pos + 20 : pos + 28])
        name_len, extra_len, comment_len = struct.unpack("<HHH", raw[pos + 28 : pos + 34])
        (offset,) = struct.unpack("<I", raw[pos + 42 : pos + 46])
        end = pos + 46 + name_len + extra_len + comment_len
        if end > len(raw):
            raise CorruptFile(f"{fname}: its zip directory is damaged (entry {len(entries)} runs past its end)")
        name = raw[pos + 46 : pos + 46 + name_len].decode("utf-8", errors="replace")
        extra = raw[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        usize, csize, offset = _zip64_fields(fname, name, extra, usize, csize, offset)
        entries.append(ZipEntry(name, offset, csize, usize, method, flags))
        pos = end
    return entries


def _zip64_fields(fname: str, name: str, extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Sizes and offset that did not fit 32 bits, from the entry's zip64 extra field (in this order)."""
    if _U32 not in (usize, csize, offset):
        return usize, csize, offset
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack("<HH", extra[pos : pos + 4])
        body = extra[pos + 4 : pos + 4 + length]
        if tag == 1:
            values = [v for (v,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
            fields = [usize, csize, offset]
            for i, v in enumerate(fields):
                if v == _U32:
                    if not values:
                        break
                    fields[i] = values.pop(0)
            else:
                return fields[0], fields[1], fields[2]
        pos += 4 + length
    raise CorruptFile(f"{fname}: zip entry {name!r} lacks the zip64 sizes its directory entry calls for")

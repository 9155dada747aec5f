"""The library folder: a manifest and, per entry, the model's probe and σ fingerprint.

    <library>/manifest.json
    <library>/entries/<key>.probe.npz          the probe (lineage/probe.py)
    <library>/entries/<key>.fingerprint.json   the σ fingerprint (result.py)

Entry files are written before the manifest names them and the manifest is replaced atomically, so a reader
never sees an entry whose files are missing, and an interrupted build leaves a library that is whole. One
``Library`` object may be used from several threads (a build adds entries as models finish).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from .. import __version__
from ..errors import FingerprintError, NotALibrary
from ..lineage.probe import PROBE_VERSION, Probe
from ..reference import parse_reference
from ..result import Fingerprint
from .facts import Facts, facts_of

LIBRARY_FORMAT = "llm-fingerprint-library"
LIBRARY_VERSION = 1
MANIFEST = "manifest.json"
ENTRIES = "entries"
MAX_ARCHIVE_MEMBER = 8 << 30  # an imported archive's member larger than this is refused (a probe is ~100 MB)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Discard(Exception):
    """Raised inside ``_replaced`` to drop what was written and keep the old file."""


@contextmanager
def _replaced(path: Path) -> Iterator[BinaryIO]:
    """A file written beside ``path`` that replaces it whole when the block ends, or vanishes on any error (or on
    ``_Discard``, which is swallowed): readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except _Discard:
        Path(tmp).unlink(missing_ok=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_atomically(path: Path, data: bytes) -> None:
    with _replaced(path) as f:
        f.write(data)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class LibraryEntry:
    """One known model: what it is (pinned), what it declares, its facts, and where its files are."""

    key: str
    model: str  # Hub models pinned: org/name@<commit sha>; a local model by its file or folder name
    repo_id: str | None
    revision: str  # commit sha (Hub) or sha256:<hex> of the files (local)
    source: str  # "hub" or "local"
    family: str
    declared_base: tuple[str, ...]  # what the model card (or GGUF metadata) names as its base
    facts: Facts
    probe: str  # paths inside the library folder
    fingerprint: str
    probe_sha256: str
    added_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "model": self.model,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "source": self.source,
            "family": self.family,
            "declared_base": list(self.declared_base),
            "facts": self.facts.to_json(),
            "probe": self.probe,
            "fingerprint": self.fingerprint,
            "probe_sha256": self.probe_sha256,
            "added_at": self.added_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LibraryEntry:
        return cls(
            key=str(d["key"]),
            model=str(d["model"]),
            repo_id=d.get("repo_id"),
            revision=str(d["revision"]),
            source=str(d.get("source", "hub")),
            family=str(d.get("family", "")),
            declared_base=tuple(str(x) for x in d.get("declared_base") or ()),
            facts=Facts.from_json(d["facts"]),
            probe=str(d["probe"]),
            fingerprint=str(d["fingerprint"]),
            probe_sha256=str(d.get("probe_sha256", "")),
            added_at=str(d.get("added_at", "")),
        )


def entry_key(model: str, revision: str) -> str:
    return hashlib.sha256(f"{model}|{revision}".encode()).hexdigest()[:32]


def pinned_name(probe: Probe, fingerprint: Fingerprint) -> tuple[str, str | None, str]:
    """(model, repo_id, source) as the library names a model: a Hub model pinned to the commit read, a local
    one by its file or folder name (a path means nothing on another machine)."""
    if fingerprint.source == "hub" and fingerprint.repo_id:
        body = fingerprint.model.rsplit("@", 1)[0]
        return f"{body}@{probe.revision}", fingerprint.repo_id, "hub"
    return Path(fingerprint.model.rstrip("/")).name or fingerprint.model, None, "local"


def name_in_library(reference: str) -> str:
    """How the library would name a model given by ``reference`` (before reading it): a Hub model by its
    repository (with the file chosen in it, and the revision when it is a commit sha), a local one by its name."""
    try:
        ref = parse_reference(reference)
    except FingerprintError:
        return reference
    if ref.kind == "local" or ref.repo_id is None:
        return Path(reference.rstrip("/")).name or reference
    body = f"{ref.repo_id}/{ref.filename}" if ref.filename else ref.repo_id
    return f"{body}@{ref.pinned_sha}" if ref.pinned_sha else body


class _DeferredSaves:
    """When a library with deferred saves writes its manifest next: after ``every`` adds or ``seconds``."""

    def __init__(self, every: int, seconds: float):
        self.every, self.seconds = max(1, every), seconds
        self.pending, self.last = 0, time.monotonic()

    def due(self) -> bool:
        self.pending += 1
        return self.pending >= self.every or time.monotonic() - self.last >= self.seconds

    def saved(self) -> None:
        self.pending, self.last = 0, time.monotonic()


class Library:
    """A library folder. ``Library.open(path)`` reads one; ``create=True`` starts an empty one there."""

    def __init__(self, path: Path, entries: Iterable[LibraryEntry] = (), meta: dict[str, Any] | None = None):
        self.path = Path(path)
        self._entries = {e.key: e for e in entries}
        self.meta = dict(meta or {})
        self._lock = threading.Lock()
        self._deferred: _DeferredSaves | None = None

    # ---- reading
    @classmethod
    def open(cls, path: str | Path, *, create: bool = False) -> Library:
        path = Path(path).expanduser()
        manifest = path / MANIFEST
        if not manifest.is_file():
            if create and (not path.exists() or (path.is_dir() and not any(path.iterdir()))):
                lib = cls(path, meta={"created_at": _now()})
                lib._save()
                return lib
            why = "no such folder" if not path.exists() else "this folder has no manifest.json"
            raise NotALibrary(why, model=str(path))
        try:
            d = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NotALibrary(f"its manifest.json cannot be read ({exc})", model=str(path)) from None
        check_manifest(d, where=str(path))
        try:
            entries = [LibraryEntry.from_json(e) for e in d.get("entries", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise NotALibrary(f"its manifest.json has a damaged entry ({exc})", model=str(path)) from None
        meta = {k: v for k, v in d.items() if k not in ("format", "version", "entries")}
        return cls(path, entries, meta)

    @property
    def entries(self) -> list[LibraryEntry]:
        return sorted(self._entries.values(), key=lambda e: (e.family.lower(), e.model.lower()))

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, name: str) -> LibraryEntry | None:
        """The entry named by its key, its pinned model, or its model without the revision (the newest added)."""
        if name in self._entries:
            return self._entries[name]
        exact = [e for e in self._entries.values() if e.model == name]
        loose = [e for e in self._entries.values() if e.model.rsplit("@", 1)[0] == name or e.repo_id == name]
        found = exact or loose
        return max(found, key=lambda e: e.added_at) if found else None

    def probe(self, entry: LibraryEntry) -> Probe:
        return Probe.load(self.path / entry.probe)

    def fingerprint(self, entry: LibraryEntry) -> Fingerprint:
        return Fingerprint.from_json(json.loads((self.path / entry.fingerprint).read_text(encoding="utf-8")))

    # ---- writing
    def add(
        self,
        probe: Probe,
        fingerprint: Fingerprint,
        *,
        family: str = "",
        declared_base: Iterable[str] = (),
    ) -> LibraryEntry:
        """Add a model (or replace the entry of the same model at the same revision); its files first, then the
        manifest."""
        model, repo_id, source = pinned_name(probe, fingerprint)
        key = entry_key(model, probe.revision)
        probe_rel, fp_rel = f"{ENTRIES}/{key}.probe.npz", f"{ENTRIES}/{key}.fingerprint.json"
        probe.save(self.path / probe_rel)
        _write_atomically(self.path / fp_rel, json.dumps(fingerprint.to_json(), indent=1).encode())
        entry = LibraryEntry(
            key=key,
            model=model,
            repo_id=repo_id,
            revision=probe.revision,
            source=source,
            family=family,
            declared_base=tuple(dict.fromkeys(b for b in declared_base if b)),
            facts=facts_of(probe),
            probe=probe_rel,
            fingerprint=fp_rel,
            probe_sha256=_sha256(self.path / probe_rel),
            added_at=_now(),
        )
        with self._lock:
            self._entries[key] = entry
            if self._deferred is None or self._deferred.due():
                self._save()
        return entry

    @contextmanager
    def saves_deferred(self, *, every: int = 50, seconds: float = 30.0) -> Iterator[None]:
        """Within it, ``add`` writes the manifest only after ``every`` adds or ``seconds``, and once at the end: the
        manifest holds every entry, so writing it after each add of a large build would cost the square of its
        size. What a crash loses is entries whose files are written but not yet listed (a new build re-reads them
        from the probe cache)."""
        self._deferred = _DeferredSaves(every, seconds)
        try:
            yield
        finally:
            with self._lock:
                self._deferred = None
                self._save()

    def remove(self, name: str) -> LibraryEntry | None:
        """Remove an entry (by key or model); the manifest first, then its files."""
        with self._lock:
            entry = self.find(name)
            if entry is None:
                return None
            del self._entries[entry.key]
            self._save()
        for rel in (entry.probe, entry.fingerprint):
            (self.path / rel).unlink(missing_ok=True)
        return entry

    def _save(self) -> None:
        if self._deferred is not None:
            self._deferred.saved()
        self.meta.setdefault("created_at", _now())
        d = {
            "format": LIBRARY_FORMAT,
            "version": LIBRARY_VERSION,
            **self.meta,
            "tool_version": __version__,
            "probe_version": PROBE_VERSION,
            "updated_at": _now(),
            "entries": [e.to_json() for e in self.entries],
        }
        _write_atomically(self.path / MANIFEST, json.dumps(d, indent=1, ensure_ascii=False).encode())

    # ---- one file to publish: export and import
    def export(self, archive: str | Path) -> Path:
        """The whole library as one zip file (the manifest and every entry's files)."""
        archive = Path(archive).expanduser()
        with _replaced(archive) as f, zipfile.ZipFile(f, "w") as z:
            z.write(self.path / MANIFEST, MANIFEST, compress_type=zipfile.ZIP_DEFLATED)
            for e in self.entries:
                z.write(self.path / e.probe, e.probe, compress_type=zipfile.ZIP_STORED)
                z.write(self.path / e.fingerprint, e.fingerprint, compress_type=zipfile.ZIP_DEFLATED)
        return archive

    def import_archive(self, archive: str | Path) -> list[LibraryEntry]:
        """Add the entries of an exported library to this one (an entry already here is replaced). Only the
        manifest and files under entries/ are read from the archive; each probe is checked against its sha256."""
        archive = Path(archive).expanduser()
        try:
            z = zipfile.ZipFile(archive)
        except (OSError, zipfile.BadZipFile) as exc:
            raise NotALibrary(f"not an exported library ({exc})", model=str(archive)) from None
        with z:
            try:
                d = json.loads(z.read(MANIFEST).decode("utf-8"))
            except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise NotALibrary(f"the archive has no readable manifest.json ({exc})", model=str(archive)) from None
            check_manifest(d, where=str(archive))
            try:
                incoming = [LibraryEntry.from_json(e) for e in d.get("entries", [])]
            except (KeyError, TypeError, ValueError) as exc:
                raise NotALibrary(f"its manifest.json has a damaged entry ({exc})", model=str(archive)) from None
            names = set(z.namelist())
            for e in incoming:
                for rel in (e.probe, e.fingerprint):
                    if rel != f"{ENTRIES}/{Path(rel).name}" or rel not in names:
                        raise NotALibrary(
                            f"entry {e.model}: file {rel!r} is missing or outside entries/", model=str(archive)
                        )
                    if z.getinfo(rel).file_size > MAX_ARCHIVE_MEMBER:
                        raise NotALibrary(f"entry {e.model}: {rel} is implausibly large", model=str(archive))
            for e in incoming:
                if not _extract(z, e.probe, self.path / e.probe, e.probe_sha256):
                    raise NotALibrary(
                        f"entry {e.model}: its probe does not match its sha256",
                        "The archive is damaged or was changed: export it again, or download it again.",
                        model=str(archive),
                    )
                _extract(z, e.fingerprint, self.path / e.fingerprint, "")
        with self._lock:
            for e in incoming:
                self._entries[e.key] = e
            self._save()
        return incoming


def _extract(z: zipfile.ZipFile, member: str, dest: Path, sha256: str) -> bool:
    """Copy one member to ``dest`` through a temporary file, streaming; False (and nothing written) when its
    content does not match ``sha256`` (not checked when empty)."""
    h = hashlib.sha256()
    matched = True
    with _replaced(dest) as out, z.open(member) as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            h.update(block)
            out.write(block)
        if sha256 and h.hexdigest() != sha256:
            matched = False
            raise _Discard
    return matched


def check_manifest(d: object, *, where: str) -> None:
    """Refuse a manifest of another format or version, with what to do."""
    if not isinstance(d, dict) or d.get("format") != LIBRARY_FORMAT:
        raise NotALibrary("its manifest.json is not a reference library's", model=where)
    if d.get("version") != LIBRARY_VERSION:
        raise NotALibrary(
            f"library format version {d.get('version')!r}; this tool reads version {LIBRARY_VERSION}",
            "Update the tool (or rebuild the library with this version).",
            model=where,
        )

"""Persistent cache of fingerprints (and of local file hashes) in SQLite.

Keyed by (model key, revision, mode). Every write is a single transaction, so a crash
leaves either the old state or the new entry, never half of one. The cache heals: a damaged
database file is moved aside and rebuilt, a location that cannot be used means running with
an in-memory cache (``note`` says which, in one line), and a row that fails validation is
deleted and recomputed, never served.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .reference import ModelRef
from .result import SCHEMA_VERSION, Fingerprint

ENV_PATH = "FINGERPRINT_CACHE"
log = logging.getLogger(__name__)


def model_key(ref: ModelRef) -> str:
    """The key a model's results are kept under, with its revision and mode: a Hub repo and the file chosen in
    it; every local model shares one key, its revision (the files' sha256) telling them apart."""
    if ref.kind == "hub":
        return f"hub:{ref.repo_id}:{ref.filename or ''}"
    return "local"


def default_path() -> Path:
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-fingerprint" / "fingerprints.sqlite"


class Store:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.note = ""  # one line when the cache could not be used as asked (moved aside, or in memory only)
        self._lock = threading.Lock()
        try:
            self._db = self._open(self.path)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) or not self.path.is_file():
                self._db = self._in_memory(
                    f"the cache at {self.path} cannot be used ({exc}): running without a persistent cache"
                )
            else:
                aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
                try:
                    os.replace(self.path, aside)
                    self._db = self._open(self.path)
                    self._say(f"the cache at {self.path} was damaged ({exc}): moved aside to {aside.name} and rebuilt")
                except (OSError, sqlite3.DatabaseError) as again:
                    self._db = self._in_memory(
                        f"the cache at {self.path} is damaged and cannot be replaced ({again}): "
                        "running without a persistent cache"
                    )
        except OSError as exc:
            self._db = self._in_memory(
                f"the cache folder {self.path.parent} cannot be used ({exc.strerror or exc}): "
                "running without a persistent cache"
            )

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        try:
            with db:
                if str(path) != ":memory:":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS fingerprints ("
                    " key TEXT, revision TEXT, mode TEXT, schema INTEGER, body TEXT,"
                    " PRIMARY KEY (key, revision, mode))"
                )
                db.execute(
                    "CREATE TABLE IF NOT EXISTS file_hashes ("
                    " path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT)"
                )
                db.execute("SELECT count(*) FROM fingerprints").fetchone()  # a damaged file fails here at the latest
        except BaseException:
            db.close()
            raise
        return db

    def _in_memory(self, why: str) -> sqlite3.Connection:
        self._say(why)
        return self._open(Path(":memory:"))

    def _say(self, note: str) -> None:
        self.note = note
        log.warning("%s", note)

    def get(self, key: str, revision: str, mode: str) -> Fingerprint | None:
        """Mode 'auto' accepts any stored mode, exact first."""
        modes = ("exact", "sampled") if mode == "auto" else (mode,)
        with self._lock:
            for m in modes:
                row = self._db.execute(
                    "SELECT body FROM fingerprints WHERE key=? AND revision=? AND mode=? AND schema=?",
                    (key, revision, m, SCHEMA_VERSION),
                ).fetchone()
                if row:
                    try:
                        return Fingerprint.from_json(json.loads(row[0]))
                    except (ValueError, TypeError, KeyError, RecursionError):
                        # edited or damaged: recomputed, never served
                        self._db.execute(
                            "DELETE FROM fingerprints WHERE key=? AND revision=? AND mode=?", (key, revision, m)
                        )
                        self._db.commit()
        return None

    def put(self, key: str, fp: Fingerprint) -> None:
        """Remember a fingerprint; a cache that cannot be written (disk full, made read-only) is noted, not fatal."""
        body = json.dumps(fp.to_json())
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?, ?, ?)",
                    (key, fp.revision, fp.mode, SCHEMA_VERSION, body),
                )
        except sqlite3.Error as exc:
            self._say(f"the cache at {self.path} could not be written ({exc}): this result is not kept")

    def known_sha256(self, path: Path) -> str | None:
        """The remembered sha256 of a local file, if its size and mtime are unchanged."""
        st = path.stat()
        with self._lock:
            row = self._db.execute(
                "SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path=?", (str(path.resolve()),)
            ).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            sha256: str | None = row[2]
            return sha256
        return None

    def file_sha256(self, path: Path, compute: Callable[[Path], str]) -> str:
        """sha256 of a local file, remembered while its size and mtime are unchanged."""
        known = self.known_sha256(path)
        if known:
            return known
        st = path.stat()
        p = str(path.resolve())
        digest = compute(path)
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)", (p, st.st_size, st.st_mtime_ns, digest)
                )
        except sqlite3.Error as exc:
            self._say(f"the cache at {self.path} could not be written ({exc}): the file hash is not kept")
        return digest

    def close(self) -> None:
        with self._lock:
            self._db.close()

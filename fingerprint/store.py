"""Persistent cache of fingerprints (and of local file hashes) in SQLite.

Keyed by (model key, revision, mode). Every write is a single transaction, so a crash
leaves either the old state or the new entry, never half of one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from .result import SCHEMA_VERSION, Fingerprint

ENV_PATH = "FINGERPRINT_CACHE"


def default_path() -> Path:
    env = os.environ.get(ENV_PATH)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-fingerprint" / "fingerprints.sqlite"


class Store:
    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS fingerprints ("
                " key TEXT, revision TEXT, mode TEXT, schema INTEGER, body TEXT,"
                " PRIMARY KEY (key, revision, mode))"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS file_hashes ("
                " path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT)"
            )

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
                    return Fingerprint.from_json(json.loads(row[0]))
        return None

    def put(self, key: str, fp: Fingerprint) -> None:
        body = json.dumps(fp.to_json())
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?, ?, ?)",
                (key, fp.revision, fp.mode, SCHEMA_VERSION, body),
            )

    def known_sha256(self, path: Path) -> str | None:
        """The remembered sha256 of a local file, if its size and mtime are unchanged."""
        st = path.stat()
        with self._lock:
            row = self._db.execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path=?", (str(path.resolve()),)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        return None

    def file_sha256(self, path: Path, compute) -> str:
        """sha256 of a local file, remembered while its size and mtime are unchanged."""
        known = self.known_sha256(path)
        if known:
            return known
        st = path.stat()
        p = str(path.resolve())
        digest = compute(path)
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)", (p, st.st_size, st.st_mtime_ns, digest))
        return digest

    def close(self) -> None:
        with self._lock:
            self._db.close()

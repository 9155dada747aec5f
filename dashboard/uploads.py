"""Uploads: which files a visitor may upload (type, size, the session's quota), and one session's upload folder,
deleted when the session ends (``dashboard.session_end``), when its state is dropped, or by a sweep after 24 h."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from dashboard.settings import ENV_UPLOAD_DIR, Settings
from fingerprint.checkpoint import PICKLE_SUFFIXES

MB = 1024 * 1024  # Streamlit's upload limits count MB as MiB
# .bin/.pt/.pth go through the same reader as local files: torch.save's zip read without unpickling
UPLOAD_TYPES = ("safetensors", "gguf", "bin", "pt", "pth")
PICKLE_EXPLANATION = (
    "PyTorch checkpoints (.bin, .pt, .pth) are read without unpickling: only tensor descriptions are taken from "
    "them, and anything else in the file is refused. Legacy PyTorch pickles (before torch 1.6, not a zip) and "
    "plain pickles (.pkl) can run code when loaded, so they are never opened."
)
STALE_UPLOADS_SECONDS = 24 * 3600

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def upload_refusal(
    name: str, size: int, settings: Settings, limit_mb: int | None = None, held: Iterable[int] = ()
) -> str | None:
    """Why an uploaded file is refused (type, size, or the session's quota given the sizes it ``held``), or None."""
    suffix = Path(name).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return f"{name}: refused. {PICKLE_EXPLANATION}"
    if suffix.lstrip(".") not in UPLOAD_TYPES:
        return f"{name}: not a .safetensors, .gguf or PyTorch (.bin, .pt, .pth) file, the weight formats read here."
    limit = limit_mb or settings.max_upload_mb
    if size > limit * MB:
        return (
            f"{name}: {size / MB:,.0f} MB is over the {limit:,} MB limit for one uploaded file"
            + (" on this shared server" if settings.shared else "")
            + ". Put the model on the Hub (a private repository and a token work) or run the tool on your own computer."
        )
    held = list(held)
    if len(held) >= settings.session_uploads:
        return (
            f"{name}: refused, this session already holds {len(held)} uploaded files (at most "
            f"{settings.session_uploads}). Remove one from the upload box first."
        )
    if (sum(held) + size) > settings.session_upload_mb * MB:
        return (
            f"{name}: refused, the uploads of this session would take {(sum(held) + size) / MB:,.0f} MB (at most "
            f"{settings.session_upload_mb:,} MB). Remove one from the upload box first."
        )
    return None


def safe_filename(name: str) -> str:
    """A file name that is safe on disk and keeps the extension: no folders, no odd characters."""
    base = Path(name.replace("\\", "/")).name
    stem, suffix = os.path.splitext(base)
    stem = _SAFE.sub("_", stem).strip("._") or "upload"
    suffix = _SAFE.sub("", suffix.lower())
    return (stem[:120] + suffix)[:160]


def upload_root() -> Path:
    return Path(os.environ.get(ENV_UPLOAD_DIR) or Path(tempfile.gettempdir()) / "llm-fingerprint-uploads")


class UploadFolder:
    """One session's upload folder; removed when the session's state is dropped (or at exit)."""

    def __init__(self, root: Path | None = None) -> None:
        root = root or upload_root()
        root.mkdir(parents=True, exist_ok=True)
        prune_stale_uploads(root)
        self.path = Path(tempfile.mkdtemp(prefix="session-", dir=root))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def save(self, src: BinaryIO, name: str, chunk: int = 8 * MB) -> Path:
        """Write an upload under a temporary name, then rename: a reader never sees half a file."""
        folder = self.path / uuid.uuid4().hex[:12]
        folder.mkdir()
        final = folder / safe_filename(name)
        part = folder / (".part-" + final.name)
        try:
            with open(part, "wb") as out:
                while True:
                    block = src.read(chunk)
                    if not block:
                        break
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return final

    def remove(self, path: Path) -> None:
        """Delete one saved upload (its own sub-folder)."""
        path = Path(path)
        if path.parent.parent == self.path:
            shutil.rmtree(path.parent, ignore_errors=True)

    def cleanup(self) -> None:
        self._finalizer()


def prune_stale_uploads(root: Path, older_than: float = STALE_UPLOADS_SECONDS) -> None:
    """Remove session folders left behind by a crash (untouched for a day)."""
    now = time.time()
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for p in entries:
        try:
            if not (p.is_dir() and p.name.startswith("session-")):
                continue
            newest = max([p.stat().st_mtime] + [c.stat().st_mtime for c in p.iterdir()])
            if now - newest > older_than:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            continue

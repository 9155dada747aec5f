"""Deployment settings and what a visitor may send: shared (deployed) mode, caps, uploads.

Read from environment variables; the dashboard applies Streamlit secrets (top-level keys) to the
environment first, so a `secrets.toml` on a hosting service works like exported variables.
No streamlit here.

  FINGERPRINT_SHARED_MODE   1/true/yes/on: a server many people use. Local paths are refused
                            (typed or from a share link), uploads and the model count are capped.
  FINGERPRINT_MAX_MODELS    models per session (default 50 local, 8 shared)
  FINGERPRINT_MAX_UPLOAD_MB size of one uploaded file, MB as Streamlit counts them (MiB)
                            (default 2000 local, 200 shared). Streamlit's own server.maxUploadSize
                            must be at least this (it is the hard limit on the server side).
  FINGERPRINT_UPLOAD_DIR    where per-session upload folders go (default: the system temp dir)
  FINGERPRINT_MAX_CONCURRENT computations (one model's fingerprint, one lineage task) running at once on this
                            server, for all visitors together; the others queue, visitor by visitor
                            (default 2 shared, no limit local)
  HF_TOKEN                  the server's Hub token: used for Hub reads, never shown or exported
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from fingerprint.checkpoint import PICKLE_SUFFIXES

from .demo import demo_name, resolve_demo_reference

ENV_SHARED = "FINGERPRINT_SHARED_MODE"
ENV_MAX_MODELS = "FINGERPRINT_MAX_MODELS"
ENV_MAX_UPLOAD_MB = "FINGERPRINT_MAX_UPLOAD_MB"
ENV_UPLOAD_DIR = "FINGERPRINT_UPLOAD_DIR"
ENV_TOKEN = "HF_TOKEN"
ENV_MAX_EXACT_MB = "FINGERPRINT_MAX_EXACT_MB"
ENV_SESSION_UPLOADS = "FINGERPRINT_SESSION_UPLOADS"
ENV_SESSION_UPLOAD_MB = "FINGERPRINT_SESSION_UPLOAD_MB"
ENV_MAX_CONCURRENT = "FINGERPRINT_MAX_CONCURRENT"

DEFAULT_MAX_MODELS = {False: 50, True: 8}
DEFAULT_MAX_UPLOAD_MB = {False: 2000, True: 200}
DEFAULT_MAX_EXACT_MB = {False: 0, True: 2000}  # 0: no cap; a shared server samples bigger models
DEFAULT_SESSION_UPLOADS = {False: 200, True: 8}  # files one session may hold at once
DEFAULT_SESSION_UPLOAD_MB = {False: 100_000, True: 400}  # MB one session may hold at once
DEFAULT_MAX_CONCURRENT = {False: 0, True: 2}  # 0: no limit; shared: about one per core of a small server
MB = 1024 * 1024  # Streamlit's upload limits count MB as MiB

UPLOAD_TYPES = ("safetensors", "gguf")
PICKLE_TYPES = tuple(suffix.removeprefix(".") for suffix in PICKLE_SUFFIXES)
PICKLE_EXPLANATION = (
    "Pickle checkpoints (.bin, .pt, .pth, .ckpt) can run code when they are loaded, so this tool never opens "
    "them. Upload the model's .safetensors or .gguf file instead (most Hub repositories ship one)."
)
STALE_UPLOADS_SECONDS = 24 * 3600

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    shared: bool = False
    max_models: int = DEFAULT_MAX_MODELS[False]
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB[False]
    max_exact_mb: int = DEFAULT_MAX_EXACT_MB[False]  # exact reads larger than this fall back to sampled (0: no cap)
    session_uploads: int = DEFAULT_SESSION_UPLOADS[False]
    session_upload_mb: int = DEFAULT_SESSION_UPLOAD_MB[False]
    max_concurrent: int = DEFAULT_MAX_CONCURRENT[False]  # computations at once for all visitors (0: no limit)
    hf_token: str | None = field(default=None, repr=False)  # never shown, logged or exported
    problems: tuple[str, ...] = ()  # environment values that could not be used (for the server log)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        problems: list[str] = []
        raw = env.get(ENV_SHARED, "").strip().lower()
        if raw in _TRUE:
            shared = True
        else:
            shared = False
            if raw not in _FALSE:
                problems.append(f"{ENV_SHARED}={raw!r} is not 1/true/0/false: shared mode is off")

        def positive(name: str, default: int) -> int:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = int(text)
            except ValueError:
                value = 0
            if value < 1:
                problems.append(f"{name}={text!r} is not a positive whole number: using {default}")
                return default
            return value

        return cls(
            shared=shared,
            max_models=positive(ENV_MAX_MODELS, DEFAULT_MAX_MODELS[shared]),
            max_upload_mb=positive(ENV_MAX_UPLOAD_MB, DEFAULT_MAX_UPLOAD_MB[shared]),
            max_exact_mb=positive(ENV_MAX_EXACT_MB, DEFAULT_MAX_EXACT_MB[shared])
            if shared or env.get(ENV_MAX_EXACT_MB)
            else 0,
            session_uploads=positive(ENV_SESSION_UPLOADS, DEFAULT_SESSION_UPLOADS[shared]),
            session_upload_mb=positive(ENV_SESSION_UPLOAD_MB, DEFAULT_SESSION_UPLOAD_MB[shared]),
            max_concurrent=(
                positive(ENV_MAX_CONCURRENT, DEFAULT_MAX_CONCURRENT[shared] or 1)
                if shared or env.get(ENV_MAX_CONCURRENT)
                else 0
            ),
            hf_token=(env.get(ENV_TOKEN) or "").strip() or None,
            problems=tuple(problems),
        )

    def token_for(self, visitor_token: str | None) -> str | None:
        """The token for Hub reads: the visitor's own (this session only) before the server's."""
        return (visitor_token or "").strip() or self.hf_token

    def upload_limit_mb(self, server_max_mb: int | None = None) -> int:
        """The effective per-file limit: ours, never above Streamlit's server.maxUploadSize (the hard limit)."""
        return min(self.max_upload_mb, server_max_mb) if server_max_mb else self.max_upload_mb

    def consistency_problems(self, server_max_mb: int | None) -> list[str]:
        """Deployment mistakes to log: Streamlit accepting bigger uploads than our cap (they are held in memory)."""
        out = []
        if server_max_mb and server_max_mb < self.max_upload_mb:
            out.append(
                f"server.maxUploadSize ({server_max_mb} MB) is below {ENV_MAX_UPLOAD_MB} ({self.max_upload_mb} MB): "
                f"uploads are limited to {server_max_mb} MB"
            )
        if self.shared and server_max_mb and server_max_mb > self.max_upload_mb:
            out.append(
                f"shared mode: Streamlit accepts uploads up to {server_max_mb} MB (server.maxUploadSize) but the cap is "
                f"{self.max_upload_mb} MB; bigger files are refused only after they arrived. Set "
                f"STREAMLIT_SERVER_MAX_UPLOAD_SIZE={self.max_upload_mb}"
            )
        return out


def apply_secrets(secrets: Mapping[str, object], environ: dict[str, str] | None = None) -> list[str]:
    """Copy top-level scalar secrets into the environment (booleans as true/false); return the keys set.

    Streamlit itself promotes str/int/float secrets but not booleans, so
    `FINGERPRINT_SHARED_MODE = true` in secrets.toml would otherwise be lost.
    """
    env = os.environ if environ is None else environ
    applied = []
    for key, value in secrets.items():
        if isinstance(value, bool):
            env[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            env[key] = str(value)
        else:
            continue
        applied.append(key)
    return applied


# ---------------------------------------------------------------- what a visitor may ask for


def shared_mode_refusal(reference: str, settings: Settings, allowed_roots: Iterable[Path] = ()) -> str | None:
    """Why a reference may not be read on this server, or None.

    In shared mode a local path is refused (the server's disk is not the visitor's), except the demo models
    shipped with the tool and files this session uploaded (under ``allowed_roots``).
    """
    if not settings.shared:
        return None
    from .errors import FingerprintError
    from .reference import parse_reference

    resolved = resolve_demo_reference(reference)
    if resolved is not None:
        return None
    refusal = (
        f"{reference}: files and folders on the server cannot be read on this shared server. "
        "Give a Hub ID, or upload the file on the Models page."
    )
    try:
        ref = parse_reference(reference)
    except FingerprintError:
        # a path that does not exist gets the same answer as one that does: a visitor must not learn
        # which files the server has
        return refusal if _looks_like_a_path(reference) else None
    if ref.kind != "local":
        return None
    path = ref.path or Path(reference)
    if demo_name(str(path)) is not None:
        return None
    for root in allowed_roots:
        try:
            if path.resolve().is_relative_to(Path(root).resolve()):
                return None
        except OSError:
            continue
    return refusal


def _looks_like_a_path(reference: str) -> bool:
    """A reference that failed to parse and reads as a path on the server rather than a Hub ID."""
    text = reference.strip()
    if text.startswith("hf://"):
        return False
    return (
        text.startswith(("/", ".", "~", "\\"))
        or text.count("/") >= 2
        or text.endswith((".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt"))
    )


def count_refusal(already: Iterable[str], asked: Iterable[str], settings: Settings) -> str | None:
    """A clear message when a session would hold more models than allowed, else None."""
    have = list(dict.fromkeys(already))
    new = [r for r in dict.fromkeys(asked) if r not in have]
    total = len(have) + len(new)
    if total <= settings.max_models:
        return None
    where = "this shared server" if settings.shared else "this dashboard"
    return (
        f"Too many models: {where} fingerprints at most {settings.max_models} per session, and this would make "
        f"{total} ({len(have)} already in the session + {len(new)} new). Remove some from the list, or forget "
        "this session's results with 'Clear all results' in the sidebar."
    )


# ---------------------------------------------------------------- uploads

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def upload_refusal(
    name: str, size: int, settings: Settings, limit_mb: int | None = None, held: Iterable[int] = ()
) -> str | None:
    """Why an uploaded file is refused (type, size, or the session's quota given the sizes it ``held``), or None."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix in PICKLE_TYPES:
        return f"{name}: refused. {PICKLE_EXPLANATION}"
    if suffix not in UPLOAD_TYPES:
        return f"{name}: not a .safetensors or .gguf file. Only these two weight formats can be fingerprinted."
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

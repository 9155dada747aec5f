"""What a visitor may ask this server to read: no server paths in shared mode (except the demo models and the
session's own uploads), no more models than the session may hold."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from dashboard.settings import Settings
from fingerprint.demo import demo_name, resolve_demo_reference
from fingerprint.errors import FingerprintError
from fingerprint.reference import parse_reference


def shared_mode_refusal(reference: str, settings: Settings, allowed_roots: Iterable[Path] = ()) -> str | None:
    """Why a reference may not be read on this server, or None.

    In shared mode a local path is refused (the server's disk is not the visitor's), except the demo models
    shipped with the tool and files this session uploaded (under ``allowed_roots``).
    """
    if not settings.shared:
        return None
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

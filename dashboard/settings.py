"""Deployment settings: shared (deployed) mode and its caps.

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
  FINGERPRINT_AUTO_LINEAGE_MB the lineage evidence (verdicts) of the models on the Compare page starts without a
                            click when its probes read at most this many MB, none from the Hub (default 256 local,
                            64 shared; 0: always wait for a click)
  HF_TOKEN                  the server's Hub token: used for Hub reads, never shown or exported
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

ENV_SHARED = "FINGERPRINT_SHARED_MODE"
ENV_MAX_MODELS = "FINGERPRINT_MAX_MODELS"
ENV_MAX_UPLOAD_MB = "FINGERPRINT_MAX_UPLOAD_MB"
ENV_UPLOAD_DIR = "FINGERPRINT_UPLOAD_DIR"
ENV_TOKEN = "HF_TOKEN"
ENV_MAX_EXACT_MB = "FINGERPRINT_MAX_EXACT_MB"
ENV_SESSION_UPLOADS = "FINGERPRINT_SESSION_UPLOADS"
ENV_SESSION_UPLOAD_MB = "FINGERPRINT_SESSION_UPLOAD_MB"
ENV_MAX_CONCURRENT = "FINGERPRINT_MAX_CONCURRENT"
ENV_AUTO_LINEAGE_MB = "FINGERPRINT_AUTO_LINEAGE_MB"

DEFAULT_MAX_MODELS = {False: 50, True: 8}
DEFAULT_MAX_UPLOAD_MB = {False: 2000, True: 200}
DEFAULT_MAX_EXACT_MB = {False: 0, True: 2000}  # 0: no cap; a shared server samples bigger models
DEFAULT_SESSION_UPLOADS = {False: 200, True: 8}  # files one session may hold at once
DEFAULT_SESSION_UPLOAD_MB = {False: 100_000, True: 400}  # MB one session may hold at once
DEFAULT_MAX_CONCURRENT = {False: 0, True: 2}  # 0: no limit; shared: about one per core of a small server
DEFAULT_AUTO_LINEAGE_MB = {False: 256, True: 64}  # local reads a verdict may start with unasked (0: never)

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
    auto_lineage_mb: int = DEFAULT_AUTO_LINEAGE_MB[False]
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

        def whole(name: str, default: int, least: int = 1) -> int:
            text = env.get(name, "").strip()
            if not text:
                return default
            try:
                value = int(text)
            except ValueError:
                value = least - 1
            if value < least:
                kind = "positive" if least == 1 else "non-negative"
                problems.append(f"{name}={text!r} is not a {kind} whole number: using {default}")
                return default
            return value

        return cls(
            shared=shared,
            max_models=whole(ENV_MAX_MODELS, DEFAULT_MAX_MODELS[shared]),
            max_upload_mb=whole(ENV_MAX_UPLOAD_MB, DEFAULT_MAX_UPLOAD_MB[shared]),
            max_exact_mb=whole(ENV_MAX_EXACT_MB, DEFAULT_MAX_EXACT_MB[shared])
            if shared or env.get(ENV_MAX_EXACT_MB)
            else 0,
            session_uploads=whole(ENV_SESSION_UPLOADS, DEFAULT_SESSION_UPLOADS[shared]),
            session_upload_mb=whole(ENV_SESSION_UPLOAD_MB, DEFAULT_SESSION_UPLOAD_MB[shared]),
            max_concurrent=(
                whole(ENV_MAX_CONCURRENT, DEFAULT_MAX_CONCURRENT[shared] or 1)
                if shared or env.get(ENV_MAX_CONCURRENT)
                else 0
            ),
            auto_lineage_mb=whole(ENV_AUTO_LINEAGE_MB, DEFAULT_AUTO_LINEAGE_MB[shared], least=0),
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

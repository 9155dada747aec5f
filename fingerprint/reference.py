"""Model references as the user types them: Hub IDs (with revision or file) and local paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BadReference
from .formats import torch_zip
from .result import Source

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
WEIGHT_SUFFIXES = (".safetensors", ".gguf", *torch_zip.SUFFIXES)
HUB_PREFIX = "hf://"
MAX_REFERENCE = 1024  # characters: longer than any Hub ID with revision and file, or any sane path


@dataclass(frozen=True)
class ModelRef:
    text: str  # the reference as given; shown to the user and written as ``model``
    kind: Source
    repo_id: str | None = None
    revision: str | None = None  # as given (branch, tag, sha) or None for the default branch
    filename: str | None = None  # a file chosen inside a Hub repo
    path: Path | None = None  # local file or folder

    @property
    def pinned_sha(self) -> str | None:
        """The revision when it is a full commit sha (then the cache can answer without the network), else None."""
        return self.revision if self.revision is not None and _FULL_SHA.match(self.revision) else None

    @property
    def hub_repo_id(self) -> str:
        """The repository of a Hub reference; BadReference for a local one."""
        if self.repo_id is None:
            raise BadReference(f"{self.text} is a local path, not a Hub model", model=self.text)
        return self.repo_id


def parse_reference(text: str, *, filename: str | None = None) -> ModelRef:
    """Parse ``org/name``, ``org/name@rev``, ``org/name/file.gguf[@rev]`` or a local path.

    A path that exists on disk is local; anything else must look like a Hub ID.
    """
    text = text.strip()
    if not text:
        raise BadReference("empty model reference")
    if len(text) > MAX_REFERENCE:
        raise BadReference(
            f"the model reference is {len(text):,} characters long (at most {MAX_REFERENCE:,})", model=text[:60] + "..."
        )
    if any(not c.isprintable() for c in text):
        raise BadReference("the model reference contains control characters", model=text)
    forced_hub = text.startswith(HUB_PREFIX)  # hf://org/name: the Hub even if a folder has that name
    path = Path(text).expanduser()
    if not forced_hub and _exists(path):
        return ModelRef(text=text, kind="local", path=path.resolve())
    if forced_hub:
        text = text[len(HUB_PREFIX) :]
    looks_like_a_file = text.endswith(WEIGHT_SUFFIXES) and text.count("/") < 2  # org/name/file.gguf names a Hub file
    if text.startswith((".", "/", "~")) or (looks_like_a_file and not forced_hub):
        raise BadReference("no such file or folder", model=text)

    body, revision = text, None
    if "@" in text:
        body, revision = text.rsplit("@", 1)
        if not revision:
            raise BadReference("empty revision after '@'", model=text)
    parts = body.split("/")
    repo_id = "/".join(parts[:2])
    inner = "/".join(parts[2:]) or None
    if not _HUB_ID.match(repo_id) or not _valid_repo_id(repo_id):
        raise BadReference(f"not a Hub model ID or an existing path: {text!r}", model=text)
    if inner and filename and inner != filename:
        raise BadReference(f"two file names given ({inner} and {filename})", model=text)
    chosen = inner or filename
    if chosen and not chosen.endswith(WEIGHT_SUFFIXES):
        raise BadReference(f"{chosen} is not a .safetensors, .gguf or PyTorch (.bin, .pt) file", model=text)
    return ModelRef(text=text, kind="hub", repo_id=repo_id, revision=revision, filename=chosen)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, an embedded NUL
        return False


def _valid_repo_id(repo_id: str) -> bool:
    """The Hub's own rule for repository names (no '..' or '--', length, first and last characters)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return False
    return True

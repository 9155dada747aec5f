"""What a model says it was made from: the model card's ``base_model`` (README.md front matter, as the Hub
reads it) and, in a GGUF file, ``general.base_model.<i>.*``. A declaration is only a claim: a scan checks it
against the weights."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs installed; only safe_load is used

from ..checkpoint import Checkpoint

README = "README.md"
README_MAX_BYTES = 256 << 10  # the front matter is at the top; a model card is rarely larger
_HUB_URL = re.compile(r"^https?://(?:www\.)?huggingface\.co/(?P<repo>[^/\s]+/[^/\s?#]+)")
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _repo_ids(value: object) -> list[str]:
    """Hub repository ids in a ``base_model`` value (a string or a list of them; URLs become ids)."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str):
            continue
        text = item.strip()
        if m := _HUB_URL.match(text):
            text = m.group("repo")
        if _REPO_ID.match(text):
            out.append(text)
    return list(dict.fromkeys(out))


def card_bases(readme: str) -> list[str]:
    """The ``base_model`` of a model card's YAML front matter ([] when there is none or it cannot be read)."""
    if not readme.startswith("---"):
        return []
    end = readme.find("\n---", 3)
    if end < 0:
        return []
    try:
        meta = yaml.safe_load(readme[3:end])
    except yaml.YAMLError:
        return []
    return _repo_ids(meta.get("base_model")) if isinstance(meta, dict) else []


def gguf_bases(metadata: Mapping[str, Any]) -> list[str]:
    """``general.base_model.<i>.repo_url`` (or organization/name) of a GGUF file's metadata."""
    count = metadata.get("general.base_model.count")
    n = count if isinstance(count, int) and 0 < count <= 64 else 0
    out = []
    for i in range(n):
        url = metadata.get(f"general.base_model.{i}.repo_url")
        org, name = metadata.get(f"general.base_model.{i}.organization"), metadata.get(f"general.base_model.{i}.name")
        found = _repo_ids(url) if isinstance(url, str) else []
        if not found and isinstance(org, str) and isinstance(name, str):
            found = _repo_ids(f"{org.strip().replace(' ', '-')}/{name.strip().replace(' ', '-')}")
        out += found
    return list(dict.fromkeys(out))


def declared_bases(ckpt: Checkpoint) -> list[str]:
    """What an opened model declares as its base(s): its GGUF metadata first, then its model card."""
    out = gguf_bases(ckpt.metadata)
    source = ckpt.open_file(README)
    if source is not None:
        try:
            raw = source.read(0, min(source.size, README_MAX_BYTES))
        finally:
            source.close()
        out += card_bases(raw.decode("utf-8", errors="replace"))
    return list(dict.fromkeys(out))

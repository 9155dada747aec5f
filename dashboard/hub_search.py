"""Hub ID suggestions while a visitor types on the Models page: the Hub's public model search, fast or not at all."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fingerprint.present.formatting import human_count


class SuggestionsUnavailable(Exception):
    """The Hub's model search could not be reached (offline, blocked, an error answer)."""


@dataclass(frozen=True)
class Hit:
    id: str
    downloads: int | None = None
    likes: int | None = None
    pipeline_tag: str | None = None
    gated: bool = False
    private: bool = False


def search_hub(query: str, *, limit: int = 10, endpoint: str | None = None, timeout: float = 4.0) -> list[Hit]:
    """Hub models whose ID contains ``query``, most downloaded first: what ``HfApi().list_models(search=...,
    limit=..., sort="downloads")`` asks, as one request.

    One GET with a short timeout and no retries: ``list_models`` retries a refused connection for about 23 s,
    far too long for suggestions while someone types. Never sends a token (suggestions are public search only,
    so a server token cannot leak private model names). Raises SuggestionsUnavailable on any failure.
    """
    query = query.strip()
    if not query:
        return []
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise SuggestionsUnavailable("HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import constants
        from huggingface_hub.hf_api import ModelInfo
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        base = (endpoint or constants.ENDPOINT).rstrip("/")
        response = get_session().get(
            f"{base}/api/models",
            params={"search": query, "limit": limit, "sort": "downloads"},
            headers=build_hf_headers(token=False),
            timeout=timeout,
        )
        hf_raise_for_status(response)
        items = response.json()
        if not isinstance(items, list):
            raise ValueError("the answer is not a list of models")
        out = []
        for item in items[:limit]:
            if not isinstance(item, dict) or not isinstance(item.get("id") or item.get("modelId"), str):
                continue
            item.setdefault("siblings", None)
            info = ModelInfo(**item)
            out.append(
                Hit(
                    id=info.id,
                    downloads=info.downloads,
                    likes=info.likes,
                    pipeline_tag=info.pipeline_tag,
                    gated=bool(info.gated),
                    private=bool(info.private),
                )
            )
        return out
    except Exception as exc:
        raise SuggestionsUnavailable(f"{type(exc).__name__}: {exc}".splitlines()[0][:200]) from None


def format_hit(hit: Hit) -> str:
    """One line for a suggestion: ID, downloads (last 30 days, as the Hub counts), likes, task, gated."""
    parts = [hit.id]
    if hit.downloads is not None:
        parts.append(f"{human_count(hit.downloads)} downloads/month")
    if hit.likes:
        parts.append(f"{human_count(hit.likes)} likes")
    if hit.pipeline_tag:
        parts.append(hit.pipeline_tag)
    if hit.gated:
        parts.append("gated: needs a token")
    return " · ".join(parts)

"""What to fingerprint: the demo set (real tiny trained models shipped in tests/fixtures), presets of
well-known Hub cases, and Hub ID suggestions while typing.

No streamlit here: the dashboard and anything else can use these lists.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"


@dataclass(frozen=True)
class DemoModel:
    path: str  # relative to the repository root
    name: str  # short name shown in charts
    description: str

    @property
    def absolute(self) -> Path:
        return REPO_ROOT / self.path


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        "tests/fixtures/stories260k",
        "stories260k",
        "A tiny Llama (5 layers, width 64) trained on children's stories by Andrej Karpathy (llama2.c), "
        "stored as safetensors.",
    ),
    DemoModel(
        "tests/fixtures/stories260k-q8_0.gguf",
        "stories260k-q8_0.gguf",
        "The same model, quantized to 8 bits and stored as GGUF (the llama.cpp format): a copy, not a new model.",
    ),
    DemoModel(
        "tests/fixtures/babyllama-tok361",
        "babyllama-tok361",
        "A tiny Llama (5 layers, width 128) trained from scratch on children's stories.",
    ),
    DemoModel(
        "tests/fixtures/babyllama-tok105",
        "babyllama-tok105",
        "Another tiny Llama with the same shapes and training recipe, trained independently: "
        "it shares no weights with babyllama-tok361.",
    ),
)

DEMO_EXPLANATION = (
    "Four real, tiny trained models ship with this tool. "
    "Two relations are known for certain: **stories260k** and **stories260k-q8_0.gguf** are the same model "
    "(one is a quantized copy of the other), and **babyllama-tok361** and **babyllama-tok105** are two "
    "*independent* models trained with the same recipe. Expect the copy to correlate at about 1.00 - and the two "
    "independent models at about 0.95. That second number is the point of the demo: a high σ-curve "
    "correlation also appears between models that share nothing but a recipe, so one signal is never proof."
)


def demo_paths() -> list[str]:
    """Absolute paths of the demo models, in display order."""
    return [str(m.absolute) for m in DEMO_MODELS]


def demo_name(reference: str) -> str | None:
    """The demo model's short name when ``reference`` points to one, else None."""
    try:
        p = Path(reference).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # ValueError: an embedded NUL
        return None
    for m in DEMO_MODELS:
        if p == m.absolute:
            return m.name
    return None


DEMO_PREFIX = "demo:"


def demo_reference(reference: str) -> str | None:
    """``demo:<name>`` for a demo model's path: a reference that means the same on every machine."""
    name = demo_name(reference)
    return DEMO_PREFIX + name if name else None


def resolve_demo_reference(reference: str) -> str | None:
    """The local path of ``demo:<name>``; None when ``reference`` is not a demo reference."""
    if not reference.startswith(DEMO_PREFIX):
        return None
    name = reference[len(DEMO_PREFIX) :].strip()
    for m in DEMO_MODELS:
        if m.name == name:
            return str(m.absolute)
    return None


@dataclass(frozen=True)
class Preset:
    title: str
    models: tuple[str, ...]
    explanation: str


PRESETS: tuple[Preset, ...] = (
    Preset(
        "Pangu Pro MoE vs Qwen2.5-14B (the 2025 claim)",
        ("IntervitensInc/pangu-pro-moe-model", "Qwen/Qwen2.5-14B"),
        "The pair behind the July 2025 paper (arXiv 2507.03014), which reported r = 0.927 and called it evidence "
        "of lineage. Large downloads are avoided: the tool reads only attention tensors, sampled for big models.",
    ),
    Preset(
        "Qwen-1.8B vs Qwen1.5-MoE-A2.7B (an upcycle the paper used)",
        ("Qwen/Qwen-1_8B", "Qwen/Qwen1.5-MoE-A2.7B"),
        "Known lineage the 2025 paper checked its method on: Qwen's model card says Qwen1.5-MoE-A2.7B was "
        "upcycled from Qwen-1.8B. The MoE model's attention is compared with the dense one's.",
    ),
    Preset(
        "Llama-3.1-70B-Instruct vs Llama-3.1-Nemotron-70B (a fine-tune the paper used)",
        ("meta-llama/Llama-3.1-70B-Instruct", "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF"),
        "Known lineage the 2025 paper checked its method on: NVIDIA's Nemotron-70B is a fine-tune of Llama-3.1-70B-"
        "Instruct. Both are large, so they are sampled; Llama is gated: accept its licence and give a token.",
    ),
    Preset(
        "Llama-2-7B vs deepseek-llm-7b (independent models)",
        ("meta-llama/Llama-2-7b-hf", "deepseek-ai/deepseek-llm-7b-base"),
        "Two models trained independently by different companies with similar recipes; their σ-curves still "
        "correlate around 0.9. Llama-2 is gated: accept its licence on the Hub and give a token.",
    ),
    Preset(
        "Qwen2.5-7B base vs its Instruct fine-tune",
        ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"),
        "A base model and its own fine-tune: real shared lineage, for comparison with the cases above.",
    ),
    Preset(
        "Qwen2.5-0.5B base vs Instruct (small, quick)",
        ("Qwen/Qwen2.5-0.5B", "Qwen/Qwen2.5-0.5B-Instruct"),
        "A small base model and its fine-tune: about a gigabyte each, fingerprinted exactly in well under a minute.",
    ),
    Preset(
        "SmolLM2-135M base vs Instruct (smallest)",
        ("HuggingFaceTB/SmolLM2-135M", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        "A very small base model and its fine-tune: the quickest real check of a fine-tune relation over the network.",
    ),
)


# ---------------------------------------------------------------- Hub ID suggestions


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


def _count(n: int) -> str:
    if n < 1000:
        return str(n)
    exp = min(int(math.log10(n)) // 3, 3)
    value = n / 1000**exp
    text = f"{value:.1f}".rstrip("0").rstrip(".") if value < 100 else f"{value:.0f}"
    return text + "kMB"[exp - 1]


def format_hit(hit: Hit) -> str:
    """One line for a suggestion: ID, downloads (last 30 days, as the Hub counts), likes, task, gated."""
    parts = [hit.id]
    if hit.downloads is not None:
        parts.append(f"{_count(hit.downloads)} downloads/month")
    if hit.likes:
        parts.append(f"{_count(hit.likes)} likes")
    if hit.pipeline_tag:
        parts.append(hit.pipeline_tag)
    if hit.gated:
        parts.append("gated: needs a token")
    return " · ".join(parts)

"""The demo set (real tiny trained models shipped in tests/fixtures) and presets of well-known Hub cases.

No streamlit here: the dashboard and anything else can use these lists.
"""

from __future__ import annotations

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
    except (OSError, RuntimeError):
        return None
    for m in DEMO_MODELS:
        if p == m.absolute:
            return m.name
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

"""The demo set: four real tiny trained models shipped inside the package (``fingerprint/demo_models``, see its
README.md), so an installed wheel has them too. The tests use the same models.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent / "demo_models"


@dataclass(frozen=True)
class DemoModel:
    name: str  # its file or folder in DEMO_DIR, and the short name shown in charts
    description: str

    @property
    def absolute(self) -> Path:
        return DEMO_DIR / self.name


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel(
        "stories260k",
        "A tiny Llama (5 layers, width 64) trained on children's stories by Andrej Karpathy (llama2.c), "
        "stored as safetensors.",
    ),
    DemoModel(
        "stories260k-q8_0.gguf",
        "The same model, quantized to 8 bits and stored as GGUF (the llama.cpp format): a copy, not a new model.",
    ),
    DemoModel(
        "babyllama-tok361",
        "A tiny Llama (5 layers, width 128) trained from scratch on children's stories.",
    ),
    DemoModel(
        "babyllama-tok105",
        "Another tiny Llama with the same shapes and training recipe, trained independently: "
        "it shares no weights with babyllama-tok361.",
    ),
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

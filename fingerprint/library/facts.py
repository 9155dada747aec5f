"""The cheap facts of a model: what can be known without comparing weights - its shapes, its depth, its
vocabulary - taken from its probe's metadata. A scan uses them to pick the few library entries worth comparing
weights with; they are kept in the library's manifest, so picking reads no probe file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..lineage.probe import Probe


@dataclass(frozen=True)
class Facts:
    architecture: str | None
    format: str
    layers: int
    hidden: int | None
    heads: int | None
    kv_heads: int | None
    head_dim: int | None
    vocab_size: int
    experts: int | None
    vocab_source: str  # where the token texts came from ("" when only token ids were known)
    # the texts of the embedding rows the probe kept: tokens picked by a hash of their text, so two models with the
    # same tokenizer keep the same ones, and their overlap estimates how much of a vocabulary two models share
    tokens: tuple[str, ...] = ()
    vector_lengths: dict[str, int] = field(default_factory=dict)  # norm/bias role -> length (its first layer)
    embedding_rows: int = 0  # embedding rows kept (0: no embedding read)

    @property
    def moe(self) -> bool:
        return bool(self.experts)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tokens"] = list(self.tokens)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Facts:
        known = set(cls.__dataclass_fields__)
        kept = {k: v for k, v in d.items() if k in known}
        kept["tokens"] = tuple(str(t) for t in kept.get("tokens") or ())
        kept["vector_lengths"] = {str(k): int(v) for k, v in (kept.get("vector_lengths") or {}).items()}
        return cls(**kept)


def _int(x: object) -> int | None:
    return int(x) if isinstance(x, int | float) and not isinstance(x, bool) and x > 0 else None


def facts_of(probe: Probe) -> Facts:
    """The facts of the model a probe was read from."""
    c = probe.config
    lengths = {role: int(next(iter(layers.values())).shape[-1]) for role, layers in probe.vectors.items() if layers}
    return Facts(
        architecture=probe.architecture,
        format=probe.format,
        layers=probe.n_layers,
        hidden=_int(c.get("hidden")),
        heads=_int(c.get("heads")),
        kv_heads=_int(c.get("kv_heads")),
        head_dim=_int(c.get("head_dim")),
        vocab_size=int(probe.vocab_size or 0),
        experts=_int(c.get("experts")),
        vocab_source=probe.vocab_source if probe.tokens else "",
        tokens=tuple(probe.tokens),
        vector_lengths=lengths,
        embedding_rows=len(probe.tokens) if probe.embedding_rows is not None else 0,
    )

"""Where a pair's signal value falls among what unrelated pairs score.

The backgrounds come from ``calibration.json``, written by ``benchmarks/lineage.py`` from
real trained models (the fixtures and the tiny Llamas of ``benchmarks/train_tiny.py``).
They are small models: the file records which pairs it was made from, and every
percentile says how many unrelated pairs it rests on.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
MARGIN = 0.05  # how far above every unrelated pair a value must be to count


@dataclass(frozen=True)
class Placement:
    percentile: float  # % of unrelated pairs scoring below this value
    z: float | None  # (value - unrelated mean) / unrelated std
    n_unrelated: int
    above_unrelated_max: bool
    below_related_fraction: float | None  # % of related pairs scoring below this value

    def to_json(self) -> dict[str, Any]:
        return {
            "percentile": round(self.percentile, 1),
            "z": None if self.z is None else round(self.z, 2),
            "n_unrelated": self.n_unrelated,
            "above_unrelated_max": self.above_unrelated_max,
            "related_below": None if self.below_related_fraction is None else round(self.below_related_fraction, 1),
        }


@dataclass(frozen=True)
class Calibration:
    unrelated: dict[str, list[float]]
    related: dict[str, list[float]]
    source: dict[str, Any]

    def _background(self, signal: str) -> tuple[list[float], float, float] | None:
        """(unrelated values, their mean, their sample std), or None with fewer than 2 pairs."""
        bg = self.unrelated.get(signal) or []
        if len(bg) < 2:
            return None
        mean = sum(bg) / len(bg)
        return bg, mean, math.sqrt(sum((v - mean) ** 2 for v in bg) / (len(bg) - 1))

    def place(self, signal: str, value: float) -> Placement | None:
        background = self._background(signal)
        if background is None:
            return None
        bg, mean, sd = background
        below = sum(v < value for v in bg) + 0.5 * sum(v == value for v in bg)
        z = (value - mean) / sd if sd > 0 else None
        rel = self.related.get(signal) or []
        rel_below = 100.0 * sum(v < value for v in rel) / len(rel) if rel else None
        return Placement(100.0 * below / len(bg), z, len(bg), value > max(bg), rel_below)

    def clear_of_background(self, signal: str, value: float) -> bool | None:
        """Above every unrelated pair by at least MARGIN: what the stress test calls 'survived'."""
        background = self._background(signal)
        return None if background is None else bool(value >= max(background[0]) + MARGIN)

    def threshold(self, signal: str) -> float | None:
        """The value above which a pair is called related on this signal: above every unrelated
        pair by MARGIN, and 3 background standard deviations (at least 0.1) above their mean."""
        background = self._background(signal)
        if background is None:
            return None
        bg, mean, sd = background
        return max(max(bg) + MARGIN, mean + max(3 * sd, 0.1))


@lru_cache(maxsize=1)
def load(path: str | None = None) -> Calibration:
    p = Path(path) if path else CALIBRATION_FILE
    if not p.is_file():
        return Calibration({}, {}, {"missing": str(p)})
    data = json.loads(p.read_text())
    unrelated: dict[str, list[float]] = {}
    related: dict[str, list[float]] = {}
    for pair in data.get("pairs", []):
        target = related if pair.get("related") else unrelated
        for name, value in (pair.get("signals") or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                target.setdefault(name, []).append(float(value))
    return Calibration(unrelated, related, {k: v for k, v in data.items() if k != "pairs"})

"""The stress test: change a model without changing what it computes, and see which signals notice.

Each transformation (transforms.py) is applied to a small local Llama-family model; the
result is written as a real safetensors checkpoint and goes through the same pipeline as any
model (fingerprint, probe, signals, verdict) against the original. The forward pass
(forward.py) measures how much the outputs moved, so the screen can show that an "exact"
transformation really left the model unchanged while a signal broke.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from ..errors import BadReference, CorruptFile, UnsupportedFormat
from ..fingerprinting import Options, compute, open_model
from . import calibration
from .evidence import sigma_between, verdict_from
from .forward import HFConfig, Weights, output_change
from .reading import build_probe
from .signals import Signal
from .transforms import TRANSFORMS
from .verdict import Relation

MAX_STRESS_BYTES = 256 << 20  # the whole model is loaded: small models only
LLAMA_TYPES = ("llama", "mistral", "qwen2")


@dataclass
class StressRow:
    transform: str
    label: str
    description: str
    exact: bool
    output_change: float  # max |Δ log-probability| over a few token sequences (nats)
    verdict: Relation
    related: bool
    signals: dict[str, Signal]
    survived: dict[str, bool | None]  # still clearly above every unrelated pair (None: n/a)

    def to_json(self) -> dict[str, Any]:
        return {
            "transform": self.transform,
            "label": self.label,
            "description": self.description,
            "exact": self.exact,
            "output_change": self.output_change,
            "verdict": self.verdict,
            "related": self.related,
            "signals": {n: s.value for n, s in self.signals.items()},
            "survived": self.survived,
        }


@dataclass
class StressReport:
    model: str
    rows: list[StressRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "rows": [r.to_json() for r in self.rows], "notes": self.notes}


def load_small_model(path: str) -> tuple[Weights, HFConfig, Path]:
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    config_path = folder / "config.json"
    files = sorted(folder.glob("*.safetensors"))
    if not folder.is_dir() or not config_path.is_file() or not files:
        raise BadReference("the stress test needs a local folder with config.json and .safetensors weights")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise CorruptFile(f"config.json cannot be read ({exc})", "Check the model folder.", model=path) from None
    if config.get("model_type") not in LLAMA_TYPES:
        raise UnsupportedFormat(
            f"the stress test knows Llama-family models only (model_type {config.get('model_type')!r})"
        )
    size = sum(f.stat().st_size for f in files)
    if size > MAX_STRESS_BYTES:
        raise UnsupportedFormat(
            f"the stress test loads the whole model: {size / 2**20:.0f} MiB is over {MAX_STRESS_BYTES >> 20} MiB"
        )
    weights: Weights = {}
    for f in files:
        try:
            weights.update(load_file(str(f)))
        except Exception as exc:
            raise CorruptFile(
                f"{f.name} cannot be read as safetensors ({exc})", "Check or re-download the file.", model=path
            ) from None
    return {k: v.astype(np.float32) for k, v in weights.items()}, config, folder


def write_model(folder: Path, weights: Weights, config: HFConfig, source: Path) -> None:
    """A real checkpoint folder: float32 model.safetensors, config.json, and the source's vocabulary files."""
    folder.mkdir(parents=True)
    save_file(
        {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}, str(folder / "model.safetensors")
    )
    cfg = dict(config)
    if "lm_head.weight" in weights:
        cfg["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(cfg))
    for name in ("tokenizer.json", "vocab.json"):
        if (source / name).is_file():
            shutil.copy(source / name, folder / name)


def stress_test(path: str, transforms: list[str] | None = None, seed: int = 0) -> StressReport:
    weights, config, folder = load_small_model(path)
    opts = Options(use_cache=False)
    report = StressReport(model=path)
    base_fp = compute(str(folder), opts)
    if base_fp.error:
        raise base_fp.error
    ckpt = open_model(str(folder), opts)
    try:
        base = build_probe(ckpt, path)
    finally:
        ckpt.close()
    cal = calibration.load()
    with tempfile.TemporaryDirectory(prefix="stress-") as tmp:
        for i, name in enumerate(transforms or list(TRANSFORMS)):
            t = TRANSFORMS[name]
            changed = t.fn(weights, config, seed)
            out = Path(tmp) / f"{i}-{name}"
            write_model(out, changed, config, folder)
            fp = compute(str(out), opts)
            ckpt = open_model(str(out), opts)
            try:
                probe = build_probe(ckpt, t.label)
            finally:
                ckpt.close()
            v = verdict_from(
                base, probe, sigma_between(base_fp.fingerprint, fp.fingerprint, str(fp.error) if fp.error else None)
            )
            survived = {
                n: cal.clear_of_background(n, value) if (value := s.measured) is not None else None
                for n, s in v.signals.items()
            }
            report.rows.append(
                StressRow(
                    transform=name,
                    label=t.label,
                    description=t.description,
                    exact=t.exact,
                    output_change=float(output_change(weights, changed, config)),
                    verdict=v.verdict,
                    related=v.related,
                    signals=v.signals,
                    survived=survived,
                )
            )
    if not cal.unrelated:
        report.notes.append("no calibration: 'survived' cannot be judged")
    return report

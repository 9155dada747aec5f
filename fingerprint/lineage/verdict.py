"""From signals to a verdict: which relation the evidence is consistent with, and how strongly.

Rules, strongest evidence first (thresholds from the calibration's unrelated pairs):
- weights equal at identical positions (r >= 0.9999): same weights, or a quantized copy
  when the values differ by more than rounding to 16 bits would explain - never when the architectures differ
  (dense versus MoE, another depth or width): no copy makes one from the other;
- r high but short of that in a quantized format: quantized copy - unless r is farther from 1 than the format's
  own rounding of the other model's weights explains: then the relation below, "seen through a quantized copy";
- element-wise r above every unrelated pair: fine-tune (or a depth/width derivative when the
  depths or widths differ; an MoE upcycle when one model is MoE and the experts match);
- the AWM signal above every unrelated pair while element-wise is not: same lineage after
  heavy training (or permuted/rotated weights);
- otherwise: no evidence of lineage - which is not proof of independence;
- insufficient data when neither element-wise, AWM nor MoE evidence could be computed.
σ-curves and norm vectors never decide a verdict on their own: look-alike training recipes
make unrelated models score high on both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from .calibration import Calibration, Placement
from .signals import SIGNAL_LABELS, Signal

Relation = Literal[
    "same_weights",
    "quantized_copy",
    "fine_tune",
    "same_lineage",
    "depth_width_derivative",
    "moe_upcycle",
    "no_evidence",
    "insufficient_data",
]
VERDICTS: dict[Relation, str] = {
    "same_weights": "consistent with the same weights",
    "quantized_copy": "consistent with a quantized copy",
    "fine_tune": "consistent with a fine-tune (light training of the same weights)",
    "same_lineage": "consistent with the same lineage after heavy training",
    "depth_width_derivative": "consistent with a depth/width derivative (pruned or grown)",
    "moe_upcycle": "consistent with an MoE upcycle of the dense model",
    "no_evidence": "no evidence of lineage (not proof of independence)",
    "insufficient_data": "insufficient data to judge",
}
RELATED: set[Relation] = {
    "same_weights",
    "quantized_copy",
    "fine_tune",
    "same_lineage",
    "depth_width_derivative",
    "moe_upcycle",
}
DECISIVE = ("elementwise", "awm", "moe")  # signals that can make a pair "related"
# GGUF, and packed safetensors (Probe.config["packed"])
QUANTIZED_FORMATS = ("gguf", "gptq", "awq", "bnb4", "compressed-tensors")
FINE_TUNE_R = 0.95  # element-wise r of a light fine-tune; below it (yet above unrelated pairs): heavier training
ROUNDING_MARGIN = 2.0  # a quantized copy is no farther from r = 1 than this times its format's own rounding


@dataclass(frozen=True)
class Verdict:
    """The relation a pair's evidence is consistent with, how strongly, and everything it rests on."""

    a: str
    b: str
    verdict: Relation
    related: bool
    strength: float
    because: list[str]
    not_checked: list[str]
    caveats: list[str]
    signals: dict[str, Signal]
    placements: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> {bytes_read, mode, per part}
    qualifier: str = ""  # e.g. "seen through a quantized copy": how the relation was seen

    @property
    def sentence(self) -> str:
        return VERDICTS[self.verdict] + (f", {self.qualifier}" if self.qualifier else "")

    def to_json(self) -> dict[str, Any]:
        sigs = {}
        for name, s in self.signals.items():
            d = s.to_json()
            place = self.placements.get(name)
            d["percentile"] = place["percentile"] if place else None  # among unrelated pairs
            d["z"] = place["z"] if place else None
            d["background"] = place
            sigs[name] = d
        return {
            "a": self.a,
            "b": self.b,
            "verdict": self.verdict,
            "verdict_text": self.sentence,
            "qualifier": self.qualifier or None,
            "related": self.related,
            "strength": round(self.strength, 3),
            "because": self.because,
            "not_checked": self.not_checked,
            "caveats": self.caveats,
            "signals": sigs,
            "reads": self.reads,
        }


def _strength_above(placement: Placement | None, n: int) -> float:
    """Probability-like: 1 - (chance an unrelated pair scores this high), never above what
    n unrelated pairs can support (1 - 0.5/(n+1))."""
    cap = 1 - 0.5 / (n + 1)
    if placement is None or placement.z is None:
        return 0.5
    tail = 0.5 * math.erfc(placement.z / math.sqrt(2))
    return max(0.0, min(cap, 1 - tail))


def _measured(signal: Signal | None) -> float | None:
    """The signal's value, or None when it is absent or could not be computed."""
    return signal.measured if signal is not None else None


def decide(
    a: str,
    b: str,
    signals: dict[str, Signal],
    calibration: Calibration,
    *,
    formats: tuple[str, str] = ("", ""),
    depths: tuple[int, int] = (0, 0),
    widths: tuple[int | None, int | None] = (None, None),
    moe: tuple[bool, bool] = (False, False),
    reads: dict[str, dict[str, Any]] | None = None,
    notes: Sequence[str] = (),
) -> Verdict:
    """The verdict for models ``a`` and ``b`` from their signals. ``reads``: what was read from each model;
    ``notes``: what each model's reading noted, added to the caveats."""
    raw = {n: calibration.place(n, v) if (v := _measured(s)) is not None else None for n, s in signals.items()}
    placements = {n: p.to_json() if p else None for n, p in raw.items()}
    not_checked = [
        f"{SIGNAL_LABELS[n]}: {s.reason}"
        for n, s in signals.items()
        if not s.available and not (s.reason or "").startswith("does not apply")
    ]
    caveats = ["Weights alone cannot prove or disprove derivation; this is statistical evidence, not an accusation."]
    if not calibration.unrelated:
        caveats.append("no calibration file: values cannot be placed against unrelated pairs")
    else:
        n_bg = max(len(v) for v in calibration.unrelated.values())
        caveats.append(f"calibrated on {n_bg} unrelated pairs of small trained models; large models may differ")

    def above(value: float | None, name: str) -> TypeGuard[float]:
        """``value`` was measured and is at or above the calibration's threshold for signal ``name``."""
        t = calibration.threshold(name)
        return value is not None and t is not None and value >= t

    el = signals.get("elementwise")
    el_r, awm_cka, moe_r = _measured(el), _measured(signals.get("awm")), _measured(signals.get("moe"))
    shape_change = depths[0] != depths[1] or (widths[0] and widths[1] and widths[0] != widths[1])
    # no copy, quantized or not, turns a dense model into an MoE or changes its depth or width: such pairs are never
    # "the same weights" or "a quantized copy", whatever the file formats and however alike the shared tensors
    architecture_change = shape_change or moe[0] != moe[1]
    quantized = any(f in QUANTIZED_FORMATS for f in formats)
    because: list[str] = []
    verdict: Relation | None = None
    strength = 0.5

    # a copy's r is what the format's rounding of the same weights gives; farther from 1 than twice that is more
    rounding_r = el.detail.get("rounding_r") if el is not None else None
    beyond_rounding = (
        quantized
        and el_r is not None
        and rounding_r is not None
        and 1 - el_r > ROUNDING_MARGIN * (1 - rounding_r) + 1e-6
    )
    if el is not None and el_r is not None and not architecture_change:
        rel_diff = el.detail.get("relative_difference")
        lowest = el.detail.get("min", el_r)
        n_el = len(calibration.unrelated.get("elementwise", []))
        if el_r >= 0.9999 and lowest >= 0.999 and rel_diff is not None and rel_diff < 2e-3:
            verdict = "same_weights"
            because.append(f"weights at identical positions correlate r = {el_r:.6f} (lowest tensor {lowest:.6f})")
            because.append(f"median relative difference {rel_diff:.1e}: no more than 16-bit rounding")
            strength = 1 - 0.5 / (n_el + 1)
        elif el_r >= 0.98 and lowest >= 0.95 and quantized and not beyond_rounding:
            verdict = "quantized_copy"
            because.append(f"weights at identical positions correlate r = {el_r:.4f} in a quantized format")
            strength = max(_strength_above(raw.get("elementwise"), n_el), 0.9 if el_r >= 0.999 else 0.0)
    if verdict is None and moe[0] != moe[1] and above(moe_r, "moe"):
        verdict = "moe_upcycle"
        because.append(f"experts match the dense MLP's neurons: mean |r| = {moe_r:.3f}")
        strength = _strength_above(raw.get("moe"), len(calibration.unrelated.get("moe", [])))
    if verdict is None and above(el_r, "elementwise"):
        light = el_r >= FINE_TUNE_R
        verdict = "depth_width_derivative" if shape_change else "fine_tune" if light else "same_lineage"
        because.append(f"weights at identical positions correlate r = {el_r:.3f}, above every unrelated pair")
        if light and not shape_change:
            because.append(
                f"r >= {FINE_TUNE_R}: light training, the weights moved little - a fine-tune, or continued "
                "pre-training short enough to move them as little (the weights alone cannot tell these apart)"
            )
        if not light and not shape_change:
            because.append(
                f"r < {FINE_TUNE_R}: more than a light fine-tune (long training, or weights permuted/rescaled)"
            )
        strength = _strength_above(raw.get("elementwise"), len(calibration.unrelated.get("elementwise", [])))
    if verdict is None and above(awm_cka, "awm"):
        verdict = "depth_width_derivative" if shape_change else "same_lineage"
        because.append(
            f"the Q/K attention matrices, after lining up the hidden dimensions, agree at {awm_cka:.3f} (CKA, a "
            "similarity from 0 to 1), above every unrelated pair"
        )
        strength = _strength_above(raw.get("awm"), len(calibration.unrelated.get("awm", [])))
    if verdict is None:
        decisive = [n for n in DECISIVE if _measured(signals.get(n)) is not None]
        if not calibration.unrelated:
            verdict = "insufficient_data"
            because.append("no calibration: the signals cannot be placed against unrelated pairs")
            strength = 0.0
        elif not decisive:
            verdict = "insufficient_data"
            because.append("neither element-wise, AWM nor MoE evidence could be computed")
            strength = 0.0
        else:
            verdict = "no_evidence"
            placed = [p for n in decisive if (p := raw.get(n)) is not None]
            fractions = [p.below_related_fraction for p in placed if p.below_related_fraction is not None]
            # how unlike related pairs this pair is: 1 when it scores below every related pair on every decisive signal
            strength = 1 - max(fractions) / 100 if fractions else 0.5
            strength = min(strength, 1 - 0.5 / (len(calibration.related.get(decisive[0], [])) + 1))
            because.append(
                "no decisive signal is above what unrelated pairs score: "
                + "; ".join(f"{SIGNAL_LABELS[n]} = {signals[n].value:.3f}" for n in decisive)
            )
    if verdict == "quantized_copy" and rounding_r is None:
        not_checked.append(
            "whether more than the quantized file's rounding separates the weights: its type cannot be re-quantized "
            "here (GGUF K-quants and IQ types, GPTQ, AWQ, bitsandbytes), so a light fine-tune seen through it reads "
            "as a copy"
        )
    qualifier = ""
    if beyond_rounding and verdict in RELATED and verdict not in ("same_weights", "quantized_copy"):
        qualifier = "seen through a quantized copy"
        because.append(
            f"{el.detail['rounding_type'] if el else ''} rounding of the other model's own weights would correlate "
            f"at r = {rounding_r:.4f}; r = {el_r:.4f} is farther from 1: the weights changed before they were "
            "quantized"
        )
    sigma_r = _measured(signals.get("sigma"))
    if sigma_r is not None and sigma_r > 0.9 and verdict in ("no_evidence", "insufficient_data"):
        caveats.append(
            f"the σ-curves correlate at {sigma_r:.2f}, yet that alone is not evidence: unrelated models with "
            "look-alike recipes score as high"
        )
    if shape_change:
        caveats.append(
            f"the models differ in shape ({depths[0]} vs {depths[1]} layers, width {widths[0]} vs {widths[1]})"
        )
    awm = signals.get("awm")
    if awm is not None and awm.available and str(awm.detail.get("alignment", "")).startswith("weight profiles"):
        caveats.append(
            "no shared tokens: AWM lined the hidden dimensions up by their weight profiles (norm weights and column "
            "scales layer by layer), which a rotation of the hidden space defeats"
        )
    if moe[0] != moe[1]:
        caveats.append(
            f"the models differ in architecture: {a if moe[0] else b} is an MoE (experts), {b if moe[0] else a} is "
            "dense; no copy makes one from the other"
        )
    caveats += notes
    return Verdict(
        a,
        b,
        verdict,
        verdict in RELATED,
        float(strength),
        because,
        not_checked,
        caveats,
        signals,
        placements,
        dict(reads or {}),
        qualifier,
    )

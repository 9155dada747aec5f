"""The lineage evidence in words: where a value falls among unrelated pairs, what a verdict's strength means,
the verdict of a stress-tested copy. Every function takes the calibration as an argument (default: the shipped
one); without a calibration the words say what cannot be judged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..lineage import calibration as calibration_mod
from ..lineage.calibration import Calibration
from ..lineage.cost import ProbeCost
from ..lineage.verdict import VERDICTS, Relation, Verdict
from .formatting import human_bytes
from .texts import EVIDENCE_EXPLANATION, EVIDENCE_EXPLANATION_UNCALIBRATED


def calibration_or_default(cal: Calibration | None) -> Calibration:
    return cal if cal is not None else calibration_mod.load()


def has_calibration(cal: Calibration | None = None) -> bool:
    return bool(calibration_or_default(cal).unrelated)


def evidence_explanation(cal: Calibration | None = None) -> str:
    """How to read the evidence figure, with or without a calibration to draw behind the pair."""
    return EVIDENCE_EXPLANATION if has_calibration(cal) else EVIDENCE_EXPLANATION_UNCALIBRATED


def placement_text(place: Mapping[str, Any] | None, *, calibrated: bool) -> str:
    """Where a value falls among unrelated pairs, in words ('' when there is nothing to say)."""
    if not calibrated:
        return "no calibration: cannot be placed"
    if not place:
        return "too few unrelated pairs for this signal"
    n = place.get("n_unrelated", 0)
    if place.get("above_unrelated_max"):
        where = f"above all {n} unrelated pairs"
    else:
        where = f"above {place['percentile']:.0f}% of {n} unrelated pairs"
    z = place.get("z")
    if z is not None:  # in words: a z of +634.6 says nothing to most readers
        where += (
            " (far beyond their range)"
            if abs(z) > 10
            else f" ({abs(z):.1f} standard deviations {'above' if z >= 0 else 'below'} their mean)"
        )
    return where


def strength_text(v: Verdict, cal: Calibration | None = None) -> str:
    """What the strength number means for this kind of verdict."""
    if v.verdict == "insufficient_data":
        return "no strength: nothing decisive could be computed"
    if v.verdict == "no_evidence":  # no number here: next to a related pair's strength it would read as one
        if not has_calibration(cal):
            return "undecided: without a calibration nothing short of near-identical weights can be recognised"
        below = (
            "every"
            if v.strength >= 0.995
            else "almost every"
            if v.strength >= 0.9
            else "most"
            if v.strength >= 0.5
            else "some"
        )
        return (
            f"this pair scores lower than {below} related pair the calibration has seen: nothing links these "
            "weights (which is not proof that the models are unrelated)"
        )
    if v.verdict == "same_weights":
        return f"the weights are equal up to 16-bit rounding (strength {v.strength:.2f} of 1)"
    if not has_calibration(cal):
        return (
            f"strength {v.strength:.2f} of 1, from the rule for near-identical weights alone "
            "(no calibration installed to compare with unrelated pairs)"
        )
    return (
        f"{strength_phrase(v, cal)} (strength {v.strength:.2f} of 1: how unlikely an unrelated pair is to score this "
        "high, limited by how many unrelated pairs the calibration has)"
    )


def stress_verdict_text(verdict: Relation, cal: Calibration | None = None) -> str:
    """The verdict of a changed model against its original. Without a calibration only identical weights can be
    recognised, so 'no evidence' there says nothing: it is shown as 'no verdict'."""
    if verdict == "no_evidence" and not has_calibration(cal):
        return "no verdict: needs the calibration"
    return VERDICTS.get(verdict, verdict)


RELATION_SHORT: dict[Relation, str] = {  # a verdict in a heatmap cell or a table column
    "same_weights": "same weights",
    "quantized_copy": "quantized copy",
    "fine_tune": "fine-tune",
    "same_lineage": "same lineage",
    "depth_width_derivative": "pruned / grown",
    "moe_upcycle": "MoE upcycle",
    "no_evidence": "no evidence",
    "insufficient_data": "can't tell",
}


def relation_short(v: Verdict) -> str:
    """The verdict in a table cell, with how it was seen (e.g. through a quantized copy)."""
    return RELATION_SHORT[v.verdict] + (" (via a quantized copy)" if v.qualifier else "")


def strength_phrase(v: Verdict, cal: Calibration | None = None) -> str:
    """How strong a verdict is, in a few words (for a table cell or a hover line; ``strength_text`` says more)."""
    if v.verdict == "insufficient_data":
        return "nothing decisive could be computed"
    if not has_calibration(cal):
        return "near-identical weights" if v.related else "undecided (no calibration)"
    if v.verdict == "same_weights":
        return "equal up to 16-bit rounding"
    if v.verdict == "no_evidence":
        return (
            "below every related pair seen"
            if v.strength >= 0.995
            else "below almost every related pair seen"
            if v.strength >= 0.9
            else "below most related pairs seen"
            if v.strength >= 0.5
            else "weak: near some related pairs"
        )
    return (
        "far above every unrelated pair seen"
        if v.strength >= 0.99
        else "above every unrelated pair seen"
        if v.strength >= 0.9
        else "just above the unrelated pairs seen"
    )


def probe_cost_text(cost: ProbeCost, names: Mapping[str, str]) -> str:
    """What computing the verdicts will read, before it is read."""
    if cost.free:
        return "Every model's sample is already read: seconds."
    n = len(cost.to_read)
    who = ", ".join(names.get(k, k) for k in cost.to_read[:4]) + (f" and {n - 4} more" if n > 4 else "")
    text = f"Reads a sample of {n} model{'s' if n != 1 else ''}' weights ({who}): at most {human_bytes(cost.bytes)}"
    if cost.hub_models:
        text += (
            f", in up to {cost.hub_requests:,} requests to the Hugging Face Hub (an anonymous visitor may make 3,000 "
            "per 5 minutes). Measured against a local Hub-like server: 23 to 46 s for two Hub models (BENCHMARKS.md); slower over the internet"
        )
    return text + ". Each sample is kept, so this is paid once per model."

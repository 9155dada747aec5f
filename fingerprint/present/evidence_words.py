"""The lineage evidence in words: where a value falls among unrelated pairs, what a verdict's strength means,
the verdict of a stress-tested copy. Every function takes the calibration as an argument (default: the shipped
one); without a calibration the words say what cannot be judged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..lineage import calibration as calibration_mod
from ..lineage.calibration import Calibration
from ..lineage.verdict import VERDICTS, Relation, Verdict
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
        return f"strength {v.strength:.2f} of 1: the weights are equal up to 16-bit rounding"
    if not has_calibration(cal):
        return (
            f"strength {v.strength:.2f} of 1, from the rule for near-identical weights alone "
            "(no calibration installed to compare with unrelated pairs)"
        )
    return (
        f"strength {v.strength:.2f} of 1: how unlikely an unrelated pair is to score this high "
        "(limited by how many unrelated pairs the calibration has)"
    )


def stress_verdict_text(verdict: Relation, cal: Calibration | None = None) -> str:
    """The verdict of a changed model against its original. Without a calibration only identical weights can be
    recognised, so 'no evidence' there says nothing: it is shown as 'no verdict'."""
    if verdict == "no_evidence" and not has_calibration(cal):
        return "no verdict: needs the calibration"
    return VERDICTS.get(verdict, verdict)

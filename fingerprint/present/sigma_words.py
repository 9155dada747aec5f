"""What a σ-curve correlation means for a reader, in words: how strong it is, and what to know about a pair
before trusting its number."""

from __future__ import annotations

import math

from ..compare import INTERVAL_LEVEL, PairComparison, role_interval, role_score
from ..result import Fingerprint
from .formatting import number_or_na
from .labels import short_role
from .texts import SIGMA_CAVEAT_WITH_EXAMPLES


def strength(r: float | None) -> str:
    """How strong a σ-curve correlation is, in words, with the calibration a reader needs."""
    if r is None or not math.isfinite(r):
        return "undefined (a flat curve, or fewer than 3 layers)"
    if r >= 0.99:
        return "near-identical shape: what a copy or a quantized copy gives"
    if r >= 0.9:
        return "very high: yet independent look-alike models reach this too"
    if r >= 0.7:
        return "high: similar shape over depth"
    if r >= 0.4:
        return "moderate"
    if r > -0.4:
        return "weak or none"
    return "negative: opposite shapes"


def interval_range(c: PairComparison, role: str = "mean", digits: int = 2) -> str:
    """A pair's r interval as '0.90–0.95', 'exact' when no σ it uses carries an error, '' when the r is undefined."""
    r = role_score(c, role)
    if r is None or not math.isfinite(r):
        return ""
    interval = role_interval(c, role)
    if interval is None or interval[0] == interval[1]:
        return "exact"
    low, high = (number_or_na(x, digits) for x in interval)
    return f"{low}–{high}"


def interval_words(c: PairComparison, role: str = "mean", digits: int = 2) -> str:
    """How sure a pair's r is: 'exact', or its interval ('95% interval 0.90–0.95, from sampled σ'); '' when the r
    is undefined."""
    span = interval_range(c, role, digits)
    return span if span in ("", "exact") else f"{INTERVAL_LEVEL:.0%} interval {span}, from sampled σ"


def r_words(c: PairComparison, role: str = "mean", digits: int = 2) -> str:
    """'r = 0.93 (95% interval 0.90–0.95, from sampled σ)', 'r = 0.93 (exact)' or 'r = n/a'."""
    how_sure = interval_words(c, role, digits)
    return f"r = {number_or_na(role_score(c, role), digits)}" + (f" ({how_sure})" if how_sure else "")


def certainty_sentence(c: PairComparison, fa: Fingerprint, fb: Fingerprint, name_a: str, name_b: str) -> str:
    """How sure the pair's score is, and why, for the pair view; with what would make it exact."""
    if c.score is None:
        return "No score, so nothing to be sure of."
    if c.exact:
        return f"{r_words(c)}: both models were read in full, so the score has no sampling error."
    sampled = [n for fp, n in ((fa, name_a), (fb, name_b)) if fp.mode == "sampled"]
    return (
        f"{r_words(c)}. {' and '.join(sampled)} {'were' if len(sampled) > 1 else 'was'} read in sampled mode (a few row blocks "
        "per tensor), so each σ has a standard error. The interval comes from redrawing both curves within those "
        f"errors: the exact score, with every weight read, falls inside such an interval about {INTERVAL_LEVEL:.0%} "
        "of the time."
    )


def _max_rel_err(fp: Fingerprint) -> float:
    worst = 0.0
    for role, s in fp.stats.items():
        for sd, err in zip(fp.curves.get(role, []), s.get("std_err", []), strict=False):
            if sd and err and math.isfinite(sd) and math.isfinite(err) and sd > 0:
                worst = max(worst, err / sd)
    return worst


def _family(arch: str) -> str:
    """'LlamaForCausalLM' (config.json) and 'llama' (GGUF) name the same architecture."""
    a = arch.lower()
    for suffix in ("forcausallm", "forconditionalgeneration", "lmheadmodel", "model"):
        a = a.removesuffix(suffix)
    return a.replace("_", "").replace("-", "")


def pair_caveats(fa: Fingerprint, fb: Fingerprint, pair: PairComparison, name_a: str, name_b: str) -> list[str]:
    """What a reader must know before trusting this pair's number."""
    out: list[str] = []
    if fa.revision == fb.revision and fa.format == fb.format:
        out.append("Both entries are the very same files (same revision): r = 1 says nothing about lineage.")
    if pair.resampled:
        out.append(
            f"Different depths ({pair.layers_a} vs {pair.layers_b} layers): the shorter curve was linearly "
            "stretched onto the longer one before correlating; layer i of one model is not layer i of the other."
        )
    for fp, name in ((fa, name_a), (fb, name_b)):
        if fp.format == "gguf":
            out.append(
                f"{name} is a GGUF file (quantized weights, format gguf): rounding shifts each σ slightly; "
                "a quantized copy of a model still correlates about 1 with the original."
            )
        if fp.mode == "sampled":
            out.append(
                f"{name} was fingerprinted in sampled mode (a few row blocks per tensor): each σ has a standard "
                f"error, at most {100 * _max_rel_err(fp):.2f}% of its value here."
            )
    if fa.architecture and fb.architecture and _family(fa.architecture) != _family(fb.architecture):
        out.append(
            f"Different architectures ({fa.architecture} vs {fb.architecture}): only the roles both have are compared."
        )
    if pair.score is None:
        out.append("No score: the two models share no projection curve that can be correlated.")
    elif set(pair.score_roles) != {"q", "k", "v", "o"}:
        out.append("The score averages over " + ", ".join(short_role(r) for r in pair.score_roles) + " only.")
    for fp, name in ((fa, name_a), (fb, name_b)):
        for note in fp.notes:
            out.append(f"{name}: {note}.")
    out.append(SIGMA_CAVEAT_WITH_EXAMPLES)
    return out

"""What a σ-curve correlation means for a reader, in words: how strong it is, and what to know about a pair
before trusting its number."""

from __future__ import annotations

import math

from ..compare import PairComparison
from ..result import Fingerprint
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

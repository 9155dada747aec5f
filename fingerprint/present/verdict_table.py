"""Which verdicts exist and the evidence each needs, in words: one table for the screen (under every verdict) and for
SCHEMA.md (a test keeps the two the same). The numbers come from the rules themselves (lineage/verdict.py)."""

from __future__ import annotations

from ..lineage.verdict import FINE_TUNE_R, ROUNDING_MARGIN, VERDICTS, Relation
from .evidence_words import RELATION_SHORT

QUALIFIER = "seen through a quantized copy"

# (relation, the evidence it needs), in the order the rules are tried
VERDICT_EVIDENCE: tuple[tuple[Relation, str], ...] = (
    (
        "same_weights",
        "the weights at identical positions correlate at r >= 0.9999 (every tensor >= 0.999) and differ by no more "
        "than 16-bit rounding (median relative difference < 0.2 %); same depth, width and dense/MoE kind",
    ),
    (
        "quantized_copy",
        "one side in a quantized format (GGUF, or packed safetensors: GPTQ, AWQ, bitsandbytes 4-bit, "
        "compressed-tensors), r >= 0.98 (every tensor >= 0.95), and r no farther from 1 than "
        f"{ROUNDING_MARGIN:g} x what that format's own rounding of the other side's weights gives; same depth, width "
        "and dense/MoE kind",
    ),
    (
        "moe_upcycle",
        "one model is a mixture of experts and the other dense, and the experts' neurons match the dense MLP's "
        "(the MoE signal above every unrelated pair)",
    ),
    (
        "fine_tune",
        f"element-wise r above every unrelated pair and >= {FINE_TUNE_R:g}: the weights moved little (a light "
        "fine-tune, or continued pre-training short enough to move them as little); same depth and width",
    ),
    (
        "same_lineage",
        f"element-wise r above every unrelated pair but < {FINE_TUNE_R:g}, or AWM (Q/K after lining up the hidden "
        "dimensions) above every unrelated pair while element-wise is not: heavy training, or weights permuted, "
        "rescaled or rotated",
    ),
    (
        "depth_width_derivative",
        "element-wise r or AWM above every unrelated pair, and the depths or widths differ: layers or dimensions "
        "removed or added",
    ),
    (
        "no_evidence",
        "element-wise, AWM or MoE could be computed, and none is above what unrelated pairs score; not proof of "
        "independence",
    ),
    (
        "insufficient_data",
        "none of element-wise, AWM or MoE could be computed (no tensor of the same shape, and the hidden "
        "dimensions could be lined up neither by shared tokens nor by their weight profiles), or no calibration to "
        "place them against",
    ),
)
QUALIFIER_EVIDENCE = (
    f"added to a related verdict other than a copy when one side is quantized and r is farther from 1 than "
    f"{ROUNDING_MARGIN:g} x that format's own rounding: the weights changed before they were quantized"
)
NEVER_DECIDE = (
    "σ-curves and norm vectors never decide a verdict: unrelated models trained with look-alike recipes score high "
    "on both."
)


def verdict_table_screen() -> str:
    """The table for the screen, as markdown (its long cells wrap, where a data table would cut them)."""
    lines = ["| verdict | the evidence it needs |", "|---|---|"]
    lines += [f"| **{RELATION_SHORT[r]}** | {needs} |" for r, needs in VERDICT_EVIDENCE]
    lines.append(f"| **... (via a quantized copy)** | {QUALIFIER_EVIDENCE} |")
    return "\n".join(lines)


def verdict_table_markdown() -> str:
    """The table as SCHEMA.md holds it."""
    lines = ["| `verdict` | says | the evidence it needs |", "|---|---|---|"]
    lines += [f"| `{r}` | {VERDICTS[r]} | {needs} |" for r, needs in VERDICT_EVIDENCE]
    lines.append(f"| `qualifier`: {QUALIFIER} | ..., {QUALIFIER} | {QUALIFIER_EVIDENCE} |")
    return "\n".join(lines) + "\n\n" + NEVER_DECIDE

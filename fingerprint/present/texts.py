"""Every explanatory text the tool shows, once: the σ caveat, what r means, how to read the lineage evidence and
the stress test, the demo. The command line, the HTML report and the dashboard's pages all take them from here.

Texts meant for the dashboard may carry Markdown emphasis (``**``, ``*``); ``plain`` strips it for the report and
the terminal.
"""

from __future__ import annotations

from ..lineage.plan import PROBE_BYTES, PROBE_REQUESTS

PAPER_URL = "https://arxiv.org/abs/2507.03014"
CRITIQUE_URL = "https://www.zhihu.com/question/1924254207063593527/answer/1924429291443164725"  # in Chinese: deepseek-llm-7b vs Llama-2-7b = 0.91

PAPER_STATUS = (
    'arXiv has since withdrawn the paper (version 2, 24 April 2026: "withdrawn by arXiv Admin"); version 1 can '
    "still be read. The withdrawal settles nothing about Pangu Pro MoE and Qwen2.5-14B either way: it neither "
    "shows that one was derived from the other nor that it was not. What stands is the measurement itself: the "
    "method is public, and this tool computes it, with what it can and cannot show."
)
PAPER_LINK_TEXT = "The paper (arXiv 2507.03014, withdrawn)"

NEVER_PROOF = "A high σ-curve correlation is consistent with shared lineage, never proof"
SIGMA_CAVEAT = NEVER_PROOF + ": independently trained models with look-alike recipes also correlate highly."
SIGMA_CAVEAT_WITH_EXAMPLES = (
    SIGMA_CAVEAT.removesuffix(".") + " (the two independent tiny babyllama models shipped with this tool score 0.95; "
    "Llama-2-7B and deepseek-llm-7b score about 0.91)."
)

VERDICT_NOT_PROOF = (
    "A verdict is evidence, never proof: it says what the weights are consistent with. A related verdict does not "
    "prove that one model was made from the other, 'no evidence' does not prove that it was not, and a library "
    "only knows the models someone added to it: the true base may not be among them."
)

WHAT_IS_R = (
    "Each number is a Pearson correlation r between two models' σ-curves (per layer, the standard deviation of "
    "an attention weight matrix), averaged over the projections both models have (Q, K, V, O). r = 1: the curves "
    "have the same shape; 0: no relation; -1: opposite shapes. Scale does not matter, only the shape over depth."
)
HEATMAP_SCALE = "1 = identical shape, 0 = unrelated, -1 = opposite. " + NEVER_PROOF + "."

PROBE_READS = (
    f"a sample of each model's weights (at most {PROBE_BYTES / 1e6:.0f} MB in {PROBE_REQUESTS:,} requests per model, "
    "cached on disk; the demo models whole)"
)

_SIGNALS_ORDERED = "The signals are ordered from the hardest to fake (top) to the weakest (σ-curves, bottom)."
EVIDENCE_EXPLANATION = (
    "Each row is one lineage signal, computed from a sample of both models' weights. Grey dots: what pairs of "
    "models known to be *unrelated* score on that signal (the calibration); orange circles: pairs known to be "
    "related; the black diamond: this pair. A value far to the right of every grey dot is evidence of shared "
    "weights; a value among the grey dots is not - and is never proof of independence either. " + _SIGNALS_ORDERED
)
UNCALIBRATED_GUIDE = (
    "As a guide, from the demo models: the two independent babyllamas score about 0 element-wise, on norms and on "
    "layer alignment, and well below 0.5 on AWM, yet 0.95 on σ-curves (look-alike training recipes)."
)
EVIDENCE_EXPLANATION_UNCALIBRATED = (
    "Each row is one lineage signal, computed from a sample of both models' weights; the black diamond is this "
    "pair's value. No calibration is installed, so the values of unrelated pairs cannot be drawn behind it. "
    + UNCALIBRATED_GUIDE
    + " "
    + _SIGNALS_ORDERED
)
NO_CALIBRATION_VERDICT = (
    "No calibration is installed: without the values of known unrelated pairs no signal can be called "
    "high enough, so only near-identical weights (the same weights, a quantized copy) can be recognised. "
    "Read the values with the guide above."
)

FUNCTION_PRESERVING = "function-preserving"
OUTPUT_CHANGING = "output-changing"


def transformation_kind(exact: bool) -> str:
    """What a stress-test transformation does to the model's outputs, in the words every screen uses."""
    return FUNCTION_PRESERVING if exact else OUTPUT_CHANGING


STRESS_EXPLANATION = (
    "The stress test changes a model's weights in two kinds of ways. **Function-preserving** transformations "
    "keep what the model computes: rescaling Q against K, V against O, permuting attention heads or MLP neurons, "
    "rotating the residual stream. **Output-changing** ones do not: quantization and noise change the outputs, "
    "sometimes a lot (Q4_0 on a tiny model moves them by several nats). The output change column measures each: "
    "the largest change of any next-token log-probability, in nats, over a few token sequences (about 1e-12 "
    "means the model computes the same; 0.01 is a small change; 1 or more is a large one). Each changed model is then "
    "compared with the original, "
    "as if someone had published it as their own. A signal **survived** when it still places the pair clearly "
    "(by at least 0.05) above every unrelated pair, and **broke** when it falls into or just above the unrelated range.\n\n"
    "Why it matters: a signal that breaks under an *exact* transformation can be defeated on purpose, for free. "
    "Whoever copies a model can apply that transformation, and the model works exactly as before while the signal "
    'says "unrelated". A low value on such a signal is therefore never evidence of independence.'
)
NO_CALIBRATION_STRESS = (
    "No calibration is installed, so 'survived' (still clearly above every unrelated pair) cannot be judged and no "
    "verdict beyond identical weights can be given: the cells are coloured by value instead. " + UNCALIBRATED_GUIDE
)

DEMO_EXPLANATION = (
    "Four real, tiny trained models ship with this tool. "
    "Two relations are known for certain: **stories260k** and **stories260k-q8_0.gguf** are the same model "
    "(one is a quantized copy of the other), and **babyllama-tok361** and **babyllama-tok105** are two "
    "*independent* models trained with the same recipe. Expect the copy to correlate at about 1.00 - and the two "
    "independent models at about 0.95. That second number is the point of the demo: a high σ-curve "
    "correlation also appears between models that share nothing but a recipe, so one signal is never proof."
)


def plain(text: str) -> str:
    """A text without its Markdown emphasis, for the HTML report and the terminal."""
    return text.replace("**", "").replace("*", "")


GLOSSARY: dict[str, str] = {
    "σ-curve": "per layer, the standard deviation (spread) of one attention weight matrix (Q, K, V or O), drawn "
    "layer after layer: a model's σ-curve",
    "Pearson r": "how alike two curves' shapes are: 1 the same shape, 0 no relation, -1 opposite shapes; the size "
    "of the values does not matter",
    "exact / sampled": "exact reads every attention weight; sampled reads evenly spread blocks of rows, so each σ "
    "carries a standard error and each r an interval",
    "verdict": "what a pair's weights are consistent with, from all the lineage signals: the same weights, a "
    "quantized copy, a fine-tune (light training of the same weights), the same lineage (heavier training, or "
    "weights permuted or rescaled), pruned / grown (layers or width removed or added), an MoE upcycle (a "
    "mixture-of-experts model made from a dense one), no evidence (nothing links the weights, which is not proof "
    "of independence), or can't tell (nothing decisive could be computed)",
    "how strong": "for a related verdict, how far the pair lies above every unrelated pair the calibration has seen; "
    "for 'no evidence', how far below the related pairs it lies",
    "lineage evidence": "signals computed from a sample of both models' weights themselves, not from their σ-curves",
    "element-wise": "the correlation of the two models' weights at identical positions: near 1 only when one was "
    "made from the other (a copy, a quantized copy, a fine-tune)",
    "AWM": "attention weight matching: the attention matrices compared after lining up the two models' hidden "
    "dimensions through tokens both vocabularies share, so a rotated or permuted copy is still recognised",
    "CKA": "centered kernel alignment, a similarity of two sets of vectors that ignores rotations and rescaling "
    "(used inside AWM and the layer alignment)",
    "norms & biases": "the correlation of the models' normalisation weights and biases, small vectors that training "
    "changes slowly",
    "layer alignment": "every layer of one model against every layer of the other: a copy lights up the diagonal, "
    "a model with layers removed shows a path that skips",
    "calibration": "what pairs of models known to be unrelated (and known to be related) score on each signal, "
    "measured once on real trained models; a value is read against it",
    "percentile": "the share of unrelated pairs that score below this pair: the 99th percentile means higher than "
    "99 of 100 unrelated pairs",
    "z": "how many standard deviations of the unrelated pairs' scores this pair lies above their mean",
    "strength": "for a related verdict, how unlikely an unrelated pair is to score this high (0 to 1, limited by how "
    "many unrelated pairs the calibration has); a 'no evidence' verdict has none",
    "safetensors / GGUF": "the two weight file formats read here: safetensors holds the weights as trained (16 or "
    "32 bits); GGUF, llama.cpp's format, usually holds a quantized copy",
    "quantized": "stored with fewer bits per weight (8, 4 or fewer), which rounds every weight a little: a "
    "quantized copy keeps the weights' pattern, so element-wise still recognises it",
    "revision": "which version of a model was read: a Hub model's commit (a 40-character id, shown short), a local "
    "file's content hash (sha256); the same revision always gives the same numbers",
    "function-preserving / output-changing": "the stress test's two kinds of change: a function-preserving one "
    "(rescaling, permuting, rotating) leaves every output the same; an output-changing one (quantization, noise) "
    "moves the outputs by the measured number of nats",
    "nats": "the unit of the stress test's output change: the largest change of a next-token log-probability; "
    "about 1e-12 means the same model, 1 or more a large change",
}

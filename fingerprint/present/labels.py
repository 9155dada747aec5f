"""What to call things on screen: roles, scores, signals, models (short unique names), Hub commits."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

from ..demo import demo_reference
from ..formats.packed import READ_AS
from ..result import Fingerprint
from ..roles import ROLE_LABELS, ROLE_ORDER

SHORT_ROLE = {
    "q": "Q",
    "k": "K",
    "v": "V",
    "o": "O",
    "qkv": "QKV",
    "attn_norm": "norm",
    "q_norm": "Q norm",
    "k_norm": "K norm",
}
SHORT_SIGNAL = {
    "elementwise": "Element-wise",
    "awm": "AWM (Q/K aligned)",
    "vectors": "Norms & biases",
    "depth": "Layer alignment",
    "moe": "MoE experts",
    "sigma": "σ-curves",
}
WHAT_SIGNAL = {  # what the number is, in a few words (the axis sub-label)
    "elementwise": "Pearson r of weights at identical positions",
    "awm": "Q/K attention matrices after lining up the hidden dimensions",
    "vectors": "centred Pearson r of norm weights & biases",
    "depth": "mean similarity along the best layer alignment",
    "moe": "mean |r| of matched neurons, experts vs dense MLP",
    "sigma": "Pearson r of σ-curves (weakest)",
}
MATRIX_SIGNALS = ("elementwise", "awm", "vectors", "depth")  # what a heatmap over many models can show
ALL_PAIRS_VIEWS = ("verdict", *MATRIX_SIGNALS, "sigma")  # what the Compare page's "All pairs" can show
ALL_PAIRS_NAMES = {
    "verdict": "Verdicts (all signals weighed)",
    **{s: SHORT_SIGNAL[s] for s in MATRIX_SIGNALS},
    "sigma": "σ-curves (the paper's measure: weakest)",
}


def role_label(role: str) -> str:
    """What a role is, in words ('mean' is the comparison score)."""
    if role == "mean":
        return "mean over projections (Q, K, V, O)"
    if role.endswith("_bias"):
        base = role.removesuffix("_bias")
        return f"{ROLE_LABELS.get(base, base)} bias"
    return ROLE_LABELS.get(role, role)


def short_role(role: str) -> str:
    if role.endswith("_bias"):
        return short_role(role.removesuffix("_bias")) + " bias"
    return SHORT_ROLE.get(role, role)


def score_label(role: str) -> str:
    """The name of the number shown for a role, e.g. in a chart title or a table header."""
    return f"Pearson r of σ-curves ({role_label(role)})"


def roles_present(fps: Sequence[Fingerprint]) -> list[str]:
    """Roles that at least two of the models have (so a correlation exists), in display order."""
    counts: dict[str, int] = {}
    for fp in fps:
        for r in fp.curves:
            counts[r] = counts.get(r, 0) + 1
    need = 2 if len(fps) > 1 else 1
    known = [r for r in ROLE_ORDER if counts.get(r, 0) >= need]
    return known + sorted(r for r, c in counts.items() if c >= need and r not in known)


_PINNED = re.compile(r"@([0-9a-f]{40})$")


def display_names(fps: Sequence[Fingerprint]) -> list[str]:
    """Short unique names: Hub references as given (a full commit sha cut to 7 characters), local paths by their
    shortest unique tail."""
    names = [_PINNED.sub(lambda m: "@" + m.group(1)[:7], f.model) if f.source == "hub" else f.model for f in fps]
    local = [i for i, f in enumerate(fps) if f.source == "local"]
    parts = {i: PurePath(fps[i].model).parts or (fps[i].model,) for i in local}
    depth = {i: 1 for i in local}
    for _ in range(64):
        tails = {i: "/".join(parts[i][-depth[i] :]) for i in local}
        counts: dict[str, int] = {}
        for t in tails.values():
            counts[t] = counts.get(t, 0) + 1
        for i in local:
            names[i] = tails[i]
        clash = [i for i in local if counts[tails[i]] > 1 and depth[i] < len(parts[i])]
        if not clash:
            break
        for i in clash:
            depth[i] += 1
    seen: set[str] = set()
    for i, n in enumerate(names):  # still equal (same path twice, or a tail equal to a Hub ID): full reference
        if n in seen:
            names[i] = fps[i].model
        seen.add(names[i])
    return names


def hub_commit_url(fp: Fingerprint) -> str | None:
    """The Hub page of the commit a Hub fingerprint was read from (None for local files)."""
    if fp.source == "hub" and fp.repo_id and len(fp.revision) == 40:
        return f"https://huggingface.co/{fp.repo_id}/commit/{fp.revision}"
    return None


def public_reference(fp: Fingerprint, local_paths: bool = False) -> str:
    """How an export names a model: the Hub reference; a demo model as ``demo:<name>``; another local model by its
    file or folder name, unless ``local_paths`` (the full path says where the user keeps their files)."""
    if fp.source != "local" or local_paths:
        return fp.model
    return demo_reference(fp.model) or PurePath(fp.model).name or fp.model


def format_label(fmt: str, files: int, notes: Sequence[str] = ()) -> str:
    """How a model's weights were read, in words: the format, for PyTorch checkpoints that nothing was unpickled,
    the number of files, and how packed weights were read when they were (e.g. "pickle checkpoint read without
    unpickling: 2 shards", "GPTQ 4-bit (group 128) dequantized from the packed weights: 1 file")."""
    read_as = next((n for n in notes if n.endswith(READ_AS)), None)
    name = read_as or {"pytorch": "pickle checkpoint read without unpickling", "gguf": "GGUF"}.get(fmt, fmt)
    if files >= 1:  # fingerprints written before their files were recorded have none
        name = f"{name}: {'1 file' if files == 1 else f'{files} shards'}"
    return name

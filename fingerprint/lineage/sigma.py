"""The σ-curves of a verdict, from the rows its probe already read: no second pass over the model.

For each layer and each of Q, K, V, O: the standard deviation of the rows read, pooled, with a
delete-one-slot jackknife standard error when the matrix was sampled (slots are the probe's
blocks of rows, plan.py). When every matrix was read whole the values are those of the exact
fingerprint bit for bit: the moments are accumulated over the same row chunks, in the file's
row order, as ``stats.compute_stats`` does in exact mode.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from .. import __version__
from ..result import Fingerprint, Mode, Source
from ..stats import JOB_BYTES, SUBCHUNK_ELEMENTS, Moments, jackknife
from .probe import Probe, RowSample
from .slots import geometry, llama_cpp_rows

SIGMA_ROLES = ("q", "k", "v", "o")
_BYTES_PER_ELEMENT = {"F32": 4, "F16": 2, "BF16": 2}


def fingerprint_of(probe: Probe, source: Source = "local", repo_id: str | None = None) -> Fingerprint | None:
    """The attention σ fingerprint of a probe; None when it lacks Q, K, V or O rows (MLA, a fused QKV it could not split)."""
    if any(k not in probe.matrices for k in SIGMA_ROLES):
        return None
    n = probe.n_layers
    curves: dict[str, list[float | None]] = {}
    stats: dict[str, dict[str, list[float | None]]] = {}
    complete = True
    for role in SIGMA_ROLES:
        per_layer = [_layer_stat(probe, role, probe.matrices[role].get(i)) for i in range(n)]
        complete &= all(s is None or s[1] for s in per_layer)
        rows = [s[0] if s else None for s in per_layer]
        curves[role] = [r["std"] if r else None for r in rows]
        stats[role] = {
            k: [r[k] if r else None for r in rows] for k in ("mean", "rms", "std_err", "mean_err", "rms_err")
        }
    mode: Mode = "exact" if complete else "sampled"
    notes = (
        []
        if complete
        else ["σ from the lineage probe's rows; each σ carries a jackknife standard error over its slots"]
    )
    cfg = probe.config
    return Fingerprint(
        model=probe.model,
        revision=probe.revision,
        source=source,
        format=probe.format,
        architecture=probe.architecture,
        layers=n,
        mode=mode,
        curves=curves,
        stats=stats,
        bytes_read=probe.bytes_read,
        bytes_total=probe.bytes_total,
        tool_version=__version__,
        computed_at=probe.computed_at,
        repo_id=repo_id,
        config={
            k: v
            for k, v in {
                "num_attention_heads": cfg.get("heads"),
                "num_key_value_heads": cfg.get("kv_heads"),
                "head_dim": cfg.get("head_dim"),
                "hidden_size": cfg.get("hidden"),
            }.items()
            if v
        },
        notes=notes,
    )


def _layer_stat(probe: Probe, role: str, s: RowSample | None) -> tuple[dict[str, float], bool] | None:
    if s is None:
        return None
    x = s.data
    if s.complete:
        total = _exact_moments(probe, role, s, x)
        return {
            "std": total.std,
            "mean": total.mean,
            "rms": total.rms,
            "std_err": 0.0,
            "mean_err": 0.0,
            "rms_err": 0.0,
        }, True
    # Conv1D Q/K/V were sampled as the rows of the fused c_attn they are column blocks of: its slots
    cut_as = ("qkv", (s.shape[0], 3 * s.shape[1])) if s.transposed and role in ("q", "k", "v") else (role, s.shape)
    g = geometry(*cut_as, probe.config.get("head_dim"), probe.config.get("slot_elements") or 1)
    slot = g.slot_of(s.rows)
    blocks = [Moments.of(x[slot == k]) for k in np.unique(slot)]
    total = Moments()
    for m in blocks:
        total = total + m
    errs = {
        f"{name}_err": jackknife(total, blocks, attrgetter(name)) if len(blocks) > 1 else 0.0
        for name in ("std", "mean", "rms")
    }
    return {"std": total.std, "mean": total.mean, "rms": total.rms, **errs}, False


def _exact_moments(probe: Probe, role: str, s: RowSample, x: np.ndarray) -> Moments:
    """Moments of a whole matrix merged exactly as exact mode merges them: file row order, pieces of
    JOB_BYTES, sub-chunks of SUBCHUNK_ELEMENTS."""
    if probe.config.get("gguf_permuted") and role in ("q", "k") and probe.config.get("head_dim"):
        x = x[np.argsort(llama_cpp_rows(s.rows, probe.config["head_dim"]), kind="stable")]
    rows, cols = x.shape
    row_bytes = s.kept.shape[1] if s.encoding.startswith("gguf:") else cols * _BYTES_PER_ELEMENT.get(s.encoding, 4)
    piece = max(1, JOB_BYTES // max(row_bytes, 1))
    sub = max(1, SUBCHUNK_ELEMENTS // max(cols, 1))
    total = Moments()
    for p0 in range(0, rows, piece):
        p1 = min(rows, p0 + piece)
        part = Moments()
        for g0 in range(p0, p1, sub):
            part = part + Moments.of(x[g0 : min(p1, g0 + sub)])
        total = total + part
    return total

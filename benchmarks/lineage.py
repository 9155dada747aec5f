"""Lineage benchmark: every signal and the verdict on pairs of real trained models whose relation is known.

    python benchmarks/lineage.py [--models DIR] [--no-calibration]

Models: the test fixtures and the tiny Llamas of benchmarks/train_tiny.py (trained on CPU:
independent seeds, a fine-tune, continued pre-training, a pruned copy, MoE upcycles,
quantized copies), plus function-preserving manipulations of one of them
(fingerprint/lineage/transforms.py) and width-pruned copies of two of them that share no token
with their parent (WIDTH_PRUNED). Pairs are labelled related / unrelated by how they were made,
never by what the signals say. Each pair records how AWM lined the hidden dims up: by shared
tokens, by a rotation fitted on them, or - when no token can be matched - by weight profiles.

Writes fingerprint/lineage/calibration.json (the unrelated background the verdict is placed
against) and benchmarks/data/results/lineage.json (AUROC per signal, the verdict's true- and
false-positive rates, with the verdict judged leave-one-out: each pair is decided with a
calibration that does not contain it).

The models are small enough to be read whole under the probe's budget, so the pairs are judged
again with probes that read only a fraction of each model's matrix bytes (``--fractions``; slots
of one row or rotary pair, no request limit), with 64 embedding rows (half a row per hidden dim,
as a 7B reads) and with all of them: the trade-off between the budget and the decisions. A 7B
model at the default budget reads about 0.5 % of its matrix bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl
import numpy as np

from fingerprint.fingerprinting import Options
from fingerprint.lineage import calibration as cal_mod
from fingerprint.lineage.evidence import get_probe, probe_fingerprint, sigma_between
from fingerprint.lineage.forward import HFConfig, Weights
from fingerprint.lineage.plan import ProbeBudget
from fingerprint.lineage.signals import SIGNAL_ORDER, all_signals
from fingerprint.lineage.stress import load_small_model, write_model
from fingerprint.lineage.transforms import TRANSFORMS
from fingerprint.lineage.verdict import decide

FIXTURES = bl.FIXTURES
DEFAULT_MODELS = bl.DATA / "lineage"
SKIPPED = 3  # exit code: no trained models here (run_all.py keeps the last results)
MANIPULATIONS = ("permute_heads", "scale_qk", "permute_mlp", "rotate_hidden")
FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25)  # of each model's matrix bytes, for the budget trade-off
SCALED_WINDOWS, SCALED_WINDOW_IDS = 2, 32  # 64 embedding rows: half a row per hidden dim, as a 7B reads
EVERY_WINDOW = 1 << 20
# width-pruned copies, generated (not trained): (name, source, hidden dims kept, seed, noise in weight σ). Their
# vocabulary is cut to VOCAB_KEPT of its rows and no vocabulary file is kept, so no token can be matched with the
# source: AWM has to line the hidden dims up by their weight profiles
WIDTH_PRUNED = (
    ("s0-narrow96", "base-s0", 96, 0, 0.0),
    ("s0-narrow96-noise", "base-s0", 96, 1, 0.1),
    ("s0-narrow64", "base-s0", 64, 3, 0.0),
    ("stories-narrow48", "stories260k", 48, 0, 0.0),
)
VOCAB_KEPT = 0.75
READS_HIDDEN = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight")
WRITES_HIDDEN = ("o_proj.weight", "down_proj.weight")
FIXTURE_MODELS = ("stories260k", "babyllama-tok361", "babyllama-tok105")


def pairs_for(models: dict[str, str]) -> list[tuple[str, str, bool, str]]:
    """(a, b, related, kind) for every pair whose relation is known from how the models were made."""
    out: list[tuple[str, str, bool, str]] = []

    def add(a, b, related, kind):
        if a in models and b in models:
            out.append((a, b, related, kind))

    seeds = [f"base-s{i}" for i in range(6)]
    for a, b in combinations(seeds, 2):
        add(a, b, False, "independent, same architecture")
    add("wide-s0", "wide-s1", False, "independent, same architecture (wider)")
    for s in seeds[:3]:
        add(s, "wide-s0", False, "independent, different width")
    add("base-s0", "s1-finetune", False, "fine-tune of an unrelated model")
    add("base-s0", "s1-moe", False, "MoE upcycle of an unrelated model")
    for dense, moe in (("base-s2", "s0-moe"), ("base-s3", "s0-moe"), ("base-s4", "s1-moe"), ("base-s5", "s1-moe")):
        add(dense, moe, False, "MoE upcycle of an unrelated model")
    add("s0-finetune", "s1-finetune", False, "fine-tunes of unrelated models")
    add("s0-continued", "base-s2", False, "continued pre-training vs an unrelated model")
    add("s0-pruned", "base-s1", False, "pruned copy vs an unrelated model")
    add("babyllama-tok361", "babyllama-tok105", False, "independent (fixtures; σ-curves correlate 0.95)")
    add("stories260k", "babyllama-tok361", False, "independent, different width (fixtures)")

    add("base-s0", "s0-f16", True, "same weights (float16 copy)")
    add("base-s0", "s0-q8_0.gguf", True, "quantized copy (Q8_0 GGUF)")
    add("base-s0", "s0-q4_0.gguf", True, "quantized copy (Q4_0 GGUF)")
    add("stories260k", "stories260k-q8_0.gguf", True, "quantized copy (fixture, llama.cpp's own export)")
    add("base-s0", "s0-finetune", True, "fine-tune")
    add("base-s0", "s0-continued", True, "continued pre-training (heavy)")
    add("s0-finetune", "s0-continued", True, "siblings (both from base-s0)")
    add("base-s0", "s0-pruned", True, "layer-pruned copy, healed")
    add("base-s0", "s0-moe", True, "MoE upcycle, trained")
    add("base-s1", "s1-moe", True, "MoE upcycle, trained")
    add("base-s1", "s1-finetune", True, "fine-tune")
    # relations seen through a quantized copy of the parent (issue 14): neither is a quantized copy
    add("s0-finetune", "s0-q8_0.gguf", True, "fine-tune vs a Q8_0 GGUF of its parent")
    add("s0-finetune", "s0-q4_0.gguf", True, "fine-tune vs a Q4_0 GGUF of its parent")
    add("s0-moe", "s0-q8_0.gguf", True, "MoE upcycle vs a Q8_0 GGUF of its dense parent")
    for name in MANIPULATIONS:
        add("base-s0", f"s0-{name}", True, f"function-preserving manipulation: {TRANSFORMS[name].label}")

    # no token can be matched in the pairs below: character vocabulary (tokenizer.json) against models without a
    # vocabulary file and of another vocabulary size
    for a in ("base-s0", "base-s1", "base-s2", "wide-s0", "s0-finetune"):
        for b in FIXTURE_MODELS:
            add(a, b, False, "other family, no shared tokens (lineage model vs fixture)")
    add("base-s1", "s0-narrow96", False, "width-pruned copy of an unrelated model, no shared tokens")
    add("base-s2", "s0-narrow64", False, "width-pruned copy of an unrelated model, no shared tokens")
    add("s0-narrow64", "stories260k", False, "width-pruned copy vs another family, no shared tokens")
    add("babyllama-tok361", "stories-narrow48", False, "width-pruned copy of an unrelated fixture, no shared tokens")
    for name, source, dims, _, noise in WIDTH_PRUNED:
        plus = f" plus noise ({noise:g} σ)" if noise else ""
        add(source, name, True, f"width-pruned copy ({dims} hidden dims){plus}, no shared tokens")
    return out


def discover(models_dir: Path, work: Path) -> dict[str, str]:
    models = {p.name: str(p) for p in sorted(models_dir.iterdir()) if p.is_dir() and (p / "config.json").is_file()}
    models.update({p.name: str(p) for p in sorted(models_dir.glob("*.gguf"))})
    for name in ("stories260k", "babyllama-tok361", "babyllama-tok105", "stories260k-q8_0.gguf"):
        models[name] = str(FIXTURES / name)
    if "base-s0" in models:
        weights, config, folder = load_small_model(models["base-s0"])
        for name in MANIPULATIONS:
            out = work / f"s0-{name}"
            write_model(out, TRANSFORMS[name].fn(weights, config, 1), config, folder)
            models[f"s0-{name}"] = str(out)
    for name, source, dims, seed, noise in WIDTH_PRUNED:
        if source in models:
            weights, config, _ = load_small_model(models[source])
            out = work / name
            # the output folder as "source": write_model copies no vocabulary file
            write_model(out, *width_pruned(weights, config, dims, seed, noise), out)
            models[name] = str(out)
    return models


def width_pruned(weights: Weights, config: HFConfig, dims: int, seed: int, noise: float) -> tuple[Weights, HFConfig]:
    """A copy keeping ``dims`` of the hidden dims (chosen at random, in order) and the first VOCAB_KEPT of the
    vocabulary, with Gaussian noise of ``noise`` times each matrix's σ added to every matrix."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(hidden, dims, replace=False))
    vocab = int(config["vocab_size"] * VOCAB_KEPT)
    out: Weights = {}
    for name, w in weights.items():
        if w.ndim == 1 and w.shape[0] == hidden:
            w = w[keep]
        elif name.endswith(READS_HIDDEN):
            w = w[:, keep]
        elif name.endswith(WRITES_HIDDEN):
            w = w[keep, :]
        elif name.endswith(("embed_tokens.weight", "lm_head.weight")):
            w = w[:vocab, keep]
        if noise and w.ndim == 2:
            w = w + noise * w.std() * rng.standard_normal(w.shape).astype(np.float32)
        out[name] = w
    # the heads keep their size: head_dim is no longer hidden_size / heads
    head_dim = config.get("head_dim") or hidden // heads
    return out, {**config, "hidden_size": dims, "vocab_size": vocab, "head_dim": head_dim}


LARGE_PROBE_SCRIPT = """
import json, resource, sys, time
from fingerprint.fingerprinting import Options, open_model
from fingerprint.lineage.reading import build_probe
t = time.perf_counter()
ckpt = open_model(sys.argv[1], Options(use_cache=False))
p = build_probe(ckpt, sys.argv[1])
ckpt.close()
print(json.dumps({"bytes_read": p.bytes_read, "bytes_total": p.bytes_total, "requests": ckpt.context.requests,
                  "mode": p.mode, "seconds": time.perf_counter() - t,
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def probe_large_models() -> dict:
    """Probe the big generated models of benchmarks/bytes.py (when present), each in its own process (peak RSS)."""
    import subprocess

    from bytes import BIG, GGUF

    out = {}
    for spec, path in ((BIG, bl.DATA / BIG.name), (GGUF, bl.DATA / GGUF.name / f"{GGUF.name}.gguf")):
        if not path.exists():
            print(f"(skipping {spec.name}: generate it with benchmarks/bytes.py)")
            continue
        proc = subprocess.run(
            [sys.executable, "-c", LARGE_PROBE_SCRIPT, str(path)], capture_output=True, text=True, cwd=bl.ROOT
        )
        if proc.returncode != 0:
            raise SystemExit(f"probe of {spec.name} failed: {proc.stderr[-2000:]}")
        out[spec.name] = {"label": spec.name, **json.loads(proc.stdout.strip().splitlines()[-1])}
    return out


def verdict_7b() -> dict:
    """A whole verdict between two 7B-shaped bf16 models (benchmarks/probe_7b.py): bytes, requests, peak RSS, probe files."""
    from probe_7b import measure

    return measure()


def auroc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder of benchmarks/train_tiny.py")
    ap.add_argument("--no-calibration", action="store_true", help="do not rewrite fingerprint/lineage/calibration.json")
    ap.add_argument(
        "--fractions",
        type=float,
        nargs="*",
        default=list(FRACTIONS),
        help="judge the pairs again with probes reading these fractions of each model's matrix bytes",
    )
    args = ap.parse_args(argv)
    if not args.models.is_dir():
        print(
            f"{args.models} not found: train the models first - `pip install -e '.[train]'` (CPU PyTorch), then "
            "`python benchmarks/train_tiny.py` (about 10 minutes on 2 cores)",
            file=sys.stderr,
        )
        return SKIPPED
    t0 = time.perf_counter()
    opts = Options(use_cache=False)
    with tempfile.TemporaryDirectory(prefix="lineage-bench-") as tmp:
        models = discover(args.models, Path(tmp))
        pairs = pairs_for(models)
        rows, probes = judge(models, pairs, opts, lambda name: None)
        probe_info = {
            name: {
                "bytes_read": p.bytes_read,
                "requests": p.requests,
                "mode": p.mode,
                "layers": p.n_layers,
                "hidden": p.config.get("hidden"),
                "experts": p.config.get("experts"),
            }
            for name, p in probes.items()
        }
        for row in rows:
            row.pop("_signals")
        tradeoff = []
        for every_token in (False, True):
            for fraction in args.fractions:
                t = time.perf_counter()
                scaled, scaled_probes = judge(
                    models,
                    pairs,
                    opts,
                    lambda name, fraction=fraction, every_token=every_token: scaled_budget(
                        probes[name], fraction, every_token
                    ),
                )
                tradeoff.append(
                    _tradeoff_row(fraction, every_token, scaled, scaled_probes, probes, time.perf_counter() - t)
                )
                print(f"fraction {fraction}, every token {every_token}: {tradeoff[-1]['verdict']}")
    summary = _summarise(rows)
    manifest = args.models / "manifest.json"
    trained = json.loads(manifest.read_text()).get("models", []) if manifest.is_file() else []
    payload = {
        "trained": [
            {
                k: m.get(k)
                for k in ("name", "kind", "parent", "seed", "steps", "data", "train_loss", "eval_loss", "seconds")
            }
            for m in trained
        ],
        "machine": bl.machine(),
        "seconds": round(time.perf_counter() - t0, 1),
        "pairs": rows,
        "summary": summary,
        "probes": probe_info,
        "probes_large": probe_large_models(),
        "budget_tradeoff": tradeoff,
        "verdict_7b": verdict_7b(),
    }
    payload["calibration_drift"] = _drift(rows)
    bl.save_result("lineage", payload)
    if not args.no_calibration:
        cal_mod.CALIBRATION_FILE.write_text(
            json.dumps(
                {
                    "generated_by": "benchmarks/lineage.py",
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "note": "small CPU-trained Llamas and the test fixtures; large models may score differently",
                    "pairs": [
                        {k: r[k] for k in ("a", "b", "related", "kind", "signals", "awm_alignment")} for r in rows
                    ],
                },
                indent=1,
            )
            + "\n"
        )
    _print(rows, summary)
    return 0


def judge(models: dict[str, str], pairs: list, opts: Options, budget_for) -> tuple[list[dict], dict]:
    """Probes (with ``budget_for(name)``), their σ-curves, every signal of every pair, and each pair's verdict
    judged leave-one-out (against a calibration made from the other pairs)."""
    probes, fps = {}, {}
    for name in sorted({m for p in pairs for m in p[:2]}):
        probe, _ = get_probe(models[name], opts, budget=budget_for(name))
        fps[name] = probe_fingerprint(probe, models[name], opts)
        probes[name] = dataclasses.replace(probe, model=name)
    rows = []
    for a, b, related, kind in pairs:
        t = time.perf_counter()
        sig = all_signals(probes[a], probes[b], sigma_between(fps[a], fps[b]))
        rows.append(
            {
                "a": a,
                "b": b,
                "related": related,
                "kind": kind,
                "signals": {n: s.value for n, s in sig.items() if s.available},
                "awm_alignment": awm_alignment(sig["awm"]),
                "candidates": width_agnostic_candidates(probes[a], probes[b]),
                "seconds": round(time.perf_counter() - t, 3),
                "_signals": sig,
            }
        )
    for i, row in enumerate(rows):
        row.update(_decide(row, probes, _calibration([r for j, r in enumerate(rows) if j != i])))
    return rows, probes


SPECTRUM_ROLES = ("q", "k", "v", "o", "gate", "up", "down")


def _spectrum(probe, role: str, layer: int) -> np.ndarray | None:
    """The singular values of the rows a probe read of one matrix, as a share of their sum."""
    s = probe.matrices.get(role, {}).get(layer)
    if s is None:
        return None
    sv = np.linalg.svd(s.data.astype(np.float64), compute_uv=False)
    return sv / sv.sum() if sv.sum() > 0 else None


def width_agnostic_candidates(pa, pb) -> dict[str, float | None]:
    """Issue 14's candidates for a signal that any two models have, whatever their widths, measured for the record
    (they decide nothing): per-layer singular-value spectra of every matrix - invariant to permutations and
    rotations of the hidden space - compared as the r of their log spectra and as 1 - half the L1 distance of the
    spectra (each resampled to the shorter one, layers mapped in proportion)."""
    r_log, l1 = [], []
    n = min(pa.n_layers, pb.n_layers)
    for role in SPECTRUM_ROLES:
        for layer in range(n):
            la = round(layer * (pa.n_layers - 1) / max(n - 1, 1))
            lb = round(layer * (pb.n_layers - 1) / max(n - 1, 1))
            x, y = _spectrum(pa, role, la), _spectrum(pb, role, lb)
            if x is None or y is None:
                continue
            k = min(len(x), len(y))
            x, y = (np.interp(np.linspace(0, 1, k), np.linspace(0, 1, len(v)), v) for v in (x, y))
            r_log.append(float(np.corrcoef(np.log(x), np.log(y))[0, 1]))
            l1.append(float(1 - np.abs(x - y).sum() / 2))
    return {
        "spectra: r of log singular values": float(np.median(r_log)) if r_log else None,
        "spectra: 1 - L1 / 2": float(np.median(l1)) if l1 else None,
    }


def awm_alignment(awm) -> str | None:
    """How AWM lined the hidden dims up, in short: shared tokens, a rotation fitted on them, or weight profiles."""
    if not awm.available:
        return None
    method = str(awm.detail.get("alignment", ""))
    return (
        "weight profiles"
        if method.startswith("weight profiles")
        else "rotation on shared tokens"
        if method.startswith("rotation")
        else "shared tokens"
    )


def _decide(row: dict, probes: dict, cal: cal_mod.Calibration) -> dict:
    pa, pb = probes[row["a"]], probes[row["b"]]
    v = decide(
        row["a"],
        row["b"],
        row["_signals"],
        cal,
        formats=(pa.format, pb.format),
        depths=(pa.n_layers, pb.n_layers),
        widths=(pa.config.get("hidden"), pb.config.get("hidden")),
        moe=(pa.is_moe, pb.is_moe),
    )
    return {
        "verdict": v.verdict,
        "qualifier": v.qualifier,
        "called_related": v.related,
        "strength": round(v.strength, 3),
    }


def _matrix_bytes(reads: dict) -> int:
    return sum(v for k, v in reads.items() if k.startswith("matrices_")) + reads.get("experts", 0)


def scaled_budget(full, fraction: float, every_token: bool = False) -> ProbeBudget:
    """A budget that reads ``fraction`` of a model's matrix bytes (``full``: its probe read whole), in slots
    of one row or rotary pair - but at least one slot per matrix - with the headers, the vectors and 64
    embedding rows (or all of them) on top."""
    parts = full.reads
    windows = EVERY_WINDOW if every_token else SCALED_WINDOWS
    kept = full.embedding_rows.kept if full.embedding_rows is not None else None
    embed = (
        0
        if kept is None
        else parts["embedding"]
        if every_token
        else windows * SCALED_WINDOW_IDS * kept.nbytes // max(kept.shape[0], 1)
    )
    samples = [
        *(s for layers in full.matrices.values() for s in layers.values()),
        *(s for items in full.experts.values() for s in items.values()),
    ]
    floor = sum(
        s.kept.nbytes // max(len(s.rows), 1) * (2 if kind in ("q", "k") else 1)
        for kind, layers in full.matrices.items()
        for s in layers.values()
    )  # one slot per matrix, at least
    floor += sum(s.kept.nbytes // max(len(s.rows), 1) for items in full.experts.values() for s in items.values())
    matrices = max(int(fraction * _matrix_bytes(parts)), floor) if samples else 0
    return ProbeBudget(
        bytes=parts["headers_and_tokenizer"] + parts["vectors"] + embed + matrices,
        requests=10**6,
        slot_elements=1,
        embed_windows=windows,
        window_ids=SCALED_WINDOW_IDS,
    )


def _tradeoff_row(
    fraction: float, every_token: bool, rows: list[dict], probes: dict, full: dict, seconds: float
) -> dict:
    shipped = cal_mod.load()
    with_shipped = [_decide(r, probes, shipped) for r in rows]
    read = [_matrix_bytes(p.reads) / max(_matrix_bytes(full[n].reads), 1) for n, p in probes.items()]
    for r in rows:
        r.pop("_signals")
    summary = _summarise(rows)
    return {
        "fraction": fraction,
        "every_token": every_token,
        "matrix_fraction_read": {"median": float(sorted(read)[len(read) // 2]), "min": min(read), "max": max(read)},
        "tokens": {
            "min": min(len(p.tokens) for p in probes.values()),
            "max": max(len(p.tokens) for p in probes.values()),
        },
        "verdict": summary["verdict"],
        "signals": summary["signals"],
        "shipped_calibration": {
            "false_positives": sum(d["called_related"] for d, r in zip(with_shipped, rows) if not r["related"]),
            "related_found": sum(d["called_related"] for d, r in zip(with_shipped, rows) if r["related"]),
        },
        "pairs": [
            {k: r[k] for k in ("a", "b", "related", "signals", "awm_alignment", "verdict", "called_related")}
            for r in rows
        ],
        "seconds": round(seconds, 1),
    }


def _drift(rows: list[dict]) -> dict:
    """How far this run's signal values are from those in calibration.json (before it is rewritten)."""
    try:
        shipped = json.loads(cal_mod.CALIBRATION_FILE.read_text())["pairs"]
    except (OSError, ValueError, KeyError):
        return {"pairs": 0}
    old = {(p["a"], p["b"]): p["signals"] for p in shipped}
    worst = {"pairs": 0, "max": 0.0, "signal": None, "pair": None}
    for r in rows:
        before = old.get((r["a"], r["b"]))
        if before is None:
            continue
        worst["pairs"] += 1
        for name, value in r["signals"].items():
            if name in before and abs(value - before[name]) > worst["max"]:
                worst.update(max=abs(value - before[name]), signal=name, pair=f"{r['a']} vs {r['b']}")
    return worst


def _calibration(rows: list[dict]) -> cal_mod.Calibration:
    unrelated: dict[str, list[float]] = {}
    related: dict[str, list[float]] = {}
    for r in rows:
        for n, v in r["signals"].items():
            (related if r["related"] else unrelated).setdefault(n, []).append(v)
    return cal_mod.Calibration(unrelated, related, {"leave_one_out": True})


def _summarise(rows: list[dict]) -> dict:
    per_signal = {}
    for n in SIGNAL_ORDER:
        pos = [r["signals"][n] for r in rows if r["related"] and n in r["signals"]]
        neg = [r["signals"][n] for r in rows if not r["related"] and n in r["signals"]]
        tpr0 = sum(p > max(neg) for p in pos) / len(pos) if pos and neg else None
        per_signal[n] = {
            "auroc": auroc(pos, neg),
            "tpr_at_zero_fp": tpr0,
            "n_related": len(pos),
            "n_unrelated": len(neg),
            "unrelated_max": max(neg) if neg else None,
            "related_min": min(pos) if pos else None,
        }
    pos = [r for r in rows if r["related"]]
    neg = [r for r in rows if not r["related"]]
    verdict = {
        "auroc": auroc(
            [r["strength"] if r["called_related"] else 1 - r["strength"] for r in pos],
            [r["strength"] if r["called_related"] else 1 - r["strength"] for r in neg],
        ),
        "true_positive_rate": sum(r["called_related"] for r in pos) / len(pos) if pos else None,
        "false_positives": sum(r["called_related"] for r in neg),
        "n_related": len(pos),
        "n_unrelated": len(neg),
        "misses": [f"{r['a']} vs {r['b']} ({r['kind']}): {r['verdict']}" for r in pos if not r["called_related"]],
        "false_positive_pairs": [f"{r['a']} vs {r['b']}" for r in neg if r["called_related"]],
        "unrelated_insufficient_data": sum(r["verdict"] == "insufficient_data" for r in neg),
    }
    by_alignment = {}
    for method in sorted({r["awm_alignment"] for r in rows if r.get("awm_alignment")}):
        pos_m = [r["signals"]["awm"] for r in pos if r.get("awm_alignment") == method]
        neg_m = [r["signals"]["awm"] for r in neg if r.get("awm_alignment") == method]
        by_alignment[method] = {
            "n_related": len(pos_m),
            "n_unrelated": len(neg_m),
            "unrelated_max": max(neg_m) if neg_m else None,
            "related_min": min(pos_m) if pos_m else None,
        }
    candidates = {}
    for name in sorted({k for r in rows for k in r.get("candidates", {})}):
        pos_c = [v for r in pos if (v := r["candidates"].get(name)) is not None]
        neg_c = [v for r in neg if (v := r["candidates"].get(name)) is not None]
        candidates[name] = {
            "auroc": auroc(pos_c, neg_c),
            "n_related": len(pos_c),
            "n_unrelated": len(neg_c),
            "unrelated_max": max(neg_c) if neg_c else None,
            "related_min": min(pos_c) if pos_c else None,
        }
    candidates["AWM by weight profiles"] = by_alignment.get("weight profiles", {})
    return {
        "signals": per_signal,
        "verdict": verdict,
        "awm_by_alignment": by_alignment,
        "width_agnostic_candidates": candidates,
    }


def _print(rows: list[dict], summary: dict) -> None:
    for r in rows:
        vals = "  ".join(f"{n}={r['signals'][n]:+.3f}" for n in SIGNAL_ORDER if n in r["signals"])
        by = f" [AWM by {r['awm_alignment']}]" if r.get("awm_alignment") else ""
        print(f"{'REL' if r['related'] else 'unr'}  {r['a']} vs {r['b']}: {r['verdict']} ({r['strength']}){by}  {vals}")
    for n, s in summary["signals"].items():
        print(n, s)
    print("verdict", summary["verdict"])
    print("AWM by alignment", summary["awm_by_alignment"])


if __name__ == "__main__":
    sys.exit(main())

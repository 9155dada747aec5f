"""Lineage benchmark: every signal and the verdict on pairs of real trained models whose relation is known.

    python benchmarks/lineage.py [--models DIR] [--no-calibration]

Models: the test fixtures and the tiny Llamas of benchmarks/train_tiny.py (trained on CPU:
independent seeds, a fine-tune, continued pre-training, a pruned copy, MoE upcycles,
quantized copies), plus function-preserving manipulations of one of them
(fingerprint/lineage/transforms.py). Pairs are labelled related / unrelated by how they
were made, never by what the signals say.

Writes fingerprint/lineage/calibration.json (the unrelated background the verdict is placed
against) and benchmarks/data/results/lineage.json (AUROC per signal, the verdict's true- and
false-positive rates, with the verdict judged leave-one-out: each pair is decided with a
calibration that does not contain it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl  # noqa: E402

from fingerprint.compute import Options, compute  # noqa: E402
from fingerprint.lineage import calibration as cal_mod  # noqa: E402
from fingerprint.lineage.evidence import get_probe, sigma_between  # noqa: E402
from fingerprint.lineage.signals import SIGNAL_ORDER, all_signals  # noqa: E402
from fingerprint.lineage.stress import load_small_model, write_model  # noqa: E402
from fingerprint.lineage.transforms import TRANSFORMS  # noqa: E402
from fingerprint.lineage.verdict import decide  # noqa: E402

FIXTURES = bl.ROOT / "tests" / "fixtures"
DEFAULT_MODELS = bl.DATA / "lineage"
SKIPPED = 3  # exit code: no trained models here (run_all.py keeps the last results)
MANIPULATIONS = ("permute_heads", "scale_qk", "permute_mlp", "rotate_hidden")


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
    for name in MANIPULATIONS:
        add("base-s0", f"s0-{name}", True, f"function-preserving manipulation: {TRANSFORMS[name].label}")
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
    return models


LARGE_PROBE_SCRIPT = """
import json, resource, sys, time
from fingerprint.compute import Options, open_model
from fingerprint.lineage.probe import build_probe
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

    from bytes import BIG, GGUF  # noqa: PLC0415 - the specs live with the bytes benchmark

    out = {}
    for spec, path in ((BIG, bl.DATA / BIG.name), (GGUF, bl.DATA / GGUF.name / f"{GGUF.name}.gguf")):
        if not path.exists():
            print(f"(skipping {spec.name}: generate it with benchmarks/bytes.py)")
            continue
        proc = subprocess.run([sys.executable, "-c", LARGE_PROBE_SCRIPT, str(path)], capture_output=True, text=True, cwd=bl.ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"probe of {spec.name} failed: {proc.stderr[-2000:]}")
        out[spec.name] = {"label": spec.name, **json.loads(proc.stdout.strip().splitlines()[-1])}
    return out


def auroc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="folder of benchmarks/train_tiny.py")
    ap.add_argument("--no-calibration", action="store_true", help="do not rewrite fingerprint/lineage/calibration.json")
    args = ap.parse_args(argv)
    if not args.models.is_dir():
        print(f"{args.models} not found: train the models first - `pip install -e '.[train]'` (CPU PyTorch), then "
              "`python benchmarks/train_tiny.py` (about 10 minutes on 2 cores)", file=sys.stderr)
        return SKIPPED
    t0 = time.perf_counter()
    opts = Options(use_cache=False)
    with tempfile.TemporaryDirectory(prefix="lineage-bench-") as tmp:
        models = discover(args.models, Path(tmp))
        pairs = pairs_for(models)
        probes, fps, probe_info = {}, {}, {}
        for name in sorted({m for p in pairs for m in p[:2]}):
            out = compute(models[name], opts)
            if out.error:
                raise SystemExit(f"{name}: {out.error}")
            fps[name] = out.fingerprint
            probe, _ = get_probe(models[name], opts)
            probe.model = name
            probes[name] = probe
            probe_info[name] = {"bytes_read": probe.bytes_read, "mode": probe.mode, "layers": probe.n_layers,
                                "hidden": probe.config.get("hidden"), "experts": probe.config.get("experts")}
        rows = []
        for a, b, related, kind in pairs:
            t = time.perf_counter()
            sig = all_signals(probes[a], probes[b], sigma_between(fps[a], fps[b]))
            rows.append({"a": a, "b": b, "related": related, "kind": kind,
                         "signals": {n: s.value for n, s in sig.items() if s.available},
                         "seconds": round(time.perf_counter() - t, 3), "_signals": sig})
    # the verdict, leave-one-out: each pair judged against a calibration without it
    for i, row in enumerate(rows):
        others = [r for j, r in enumerate(rows) if j != i]
        cal = _calibration(others)
        pa, pb = probes[row["a"]], probes[row["b"]]
        v = decide(row["a"], row["b"], row["_signals"], cal, formats=(pa.format, pb.format),
                   depths=(pa.n_layers, pb.n_layers), widths=(pa.config.get("hidden"), pb.config.get("hidden")),
                   moe=(pa.is_moe, pb.is_moe))
        row.update(verdict=v.verdict, called_related=v.related, strength=round(v.strength, 3))
    for row in rows:
        row.pop("_signals")
    summary = _summarise(rows)
    manifest = args.models / "manifest.json"
    trained = json.loads(manifest.read_text()).get("models", []) if manifest.is_file() else []
    payload = {"trained": [{k: m.get(k) for k in ("name", "kind", "parent", "seed", "steps", "data", "train_loss", "eval_loss", "seconds")}
                           for m in trained],
               "machine": bl.machine(), "seconds": round(time.perf_counter() - t0, 1), "pairs": rows,
               "summary": summary, "probes": probe_info, "probes_large": probe_large_models()}
    bl.save_result("lineage", payload)
    if not args.no_calibration:
        cal_mod.CALIBRATION_FILE.write_text(json.dumps({
            "generated_by": "benchmarks/lineage.py",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "note": "small CPU-trained Llamas and the test fixtures; large models may score differently",
            "pairs": [{k: r[k] for k in ("a", "b", "related", "kind", "signals")} for r in rows],
        }, indent=1) + "\n")
    _print(rows, summary)
    return 0


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
        per_signal[n] = {"auroc": auroc(pos, neg), "tpr_at_zero_fp": tpr0, "n_related": len(pos), "n_unrelated": len(neg),
                         "unrelated_max": max(neg) if neg else None, "related_min": min(pos) if pos else None}
    pos = [r for r in rows if r["related"]]
    neg = [r for r in rows if not r["related"]]
    verdict = {
        "auroc": auroc([r["strength"] if r["called_related"] else 1 - r["strength"] for r in pos],
                       [r["strength"] if r["called_related"] else 1 - r["strength"] for r in neg]),
        "true_positive_rate": sum(r["called_related"] for r in pos) / len(pos) if pos else None,
        "false_positives": sum(r["called_related"] for r in neg),
        "n_related": len(pos),
        "n_unrelated": len(neg),
        "misses": [f"{r['a']} vs {r['b']} ({r['kind']}): {r['verdict']}" for r in pos if not r["called_related"]],
        "false_positive_pairs": [f"{r['a']} vs {r['b']}" for r in neg if r["called_related"]],
    }
    return {"signals": per_signal, "verdict": verdict}


def _print(rows: list[dict], summary: dict) -> None:
    for r in rows:
        vals = "  ".join(f"{n}={r['signals'][n]:+.3f}" for n in SIGNAL_ORDER if n in r["signals"])
        print(f"{'REL' if r['related'] else 'unr'}  {r['a']} vs {r['b']}: {r['verdict']} ({r['strength']})  {vals}")
    for n, s in summary["signals"].items():
        print(n, s)
    print("verdict", summary["verdict"])


if __name__ == "__main__":
    sys.exit(main())

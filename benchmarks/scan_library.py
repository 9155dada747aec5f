"""Scanning one model against a 150-entry reference library: how long ``scan`` takes (target: <= 10 s).

    python benchmarks/scan_library.py [--no-7b]

The library (benchmarks/data/scan-library/, git-ignored, generated once and reused) is made from real probes: the
four demo models as they are, and 146 entries made from their probes under other names, as a catalog holds them -
copies with noise (other fine-tunes of a known model) and copies whose rows are all redrawn at random with each row's
own spread (unrelated models of the same shapes). 30 of them have the width of stories260k and its vocabulary, as a
family sharing a tokenizer does; the other 116 have the babyllamas' width and one of ten generated vocabularies of
32,000 tokens, of which each keeps 2,000 tokens with their embedding rows, the size a real model's manifest entry has.

Scenario "tiny": the model scanned is a fine-tune of stories260k (its weights plus noise, a real folder), its probe
already in the probe cache; the scan opens it, ranks the 150 entries by their facts, weighs the 16 it picks (of 32
that could be linked) and checks the base its model card declares. Three runs; the target is on the slowest.

Scenario "7B" (skipped with --no-7b): a 7B-shaped bf16 fine-tune (the sparse models of benchmarks/probe_7b.py), its
probe in the cache, against the same library plus 16 7B-shaped entries (88 MB probes): its parent and 15 unrelated
models of its shapes, as many as a scan weighs - the worst case of a popular width, where the verdicts set the time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl
import lineage
import probe_7b

from fingerprint.fingerprinting import Options
from fingerprint.library.build import build_library, read_model
from fingerprint.library.scan import MAX_CANDIDATES, ScanResult, scan
from fingerprint.library.store import MANIFEST, Library
from fingerprint.lineage import rowcodec, sigma
from fingerprint.lineage.evidence import get_probe
from fingerprint.lineage.probe import Probe, RowSample
from fingerprint.lineage.vocab import pick_tokens
from fingerprint.store import Store

ROOT = bl.DATA / "scan-library"
GENERATOR_VERSION = 2  # 2: probes of PROBE_VERSION 4
ENTRIES = 150
SAME_WIDTH = 30  # generated entries with stories260k's width and vocabulary
FAMILIES = 10  # generated vocabularies of the other entries
VOCAB, KEPT_TOKENS = 32_000, 2_000
TARGET_S = 10.0
RUNS = 3
SAME_SHAPE_7B = (
    MAX_CANDIDATES  # 7B-shaped entries: the parent and unrelated models of its shapes, as many as a scan weighs
)
DECLARED = "karpathy/stories260K"


# ----------------------------------------------------------------------------- generated entries


def _redrawn(x: np.ndarray, rng: np.random.Generator, noise: float | None) -> np.ndarray:
    """``x`` plus ``noise`` times each row's spread in noise (a fine-tune), or (None) new values with each row's
    spread and mean (an unrelated model of the same shapes)."""
    x = x.astype(np.float32)
    spread = x.std(axis=-1, keepdims=True) + 1e-8
    if noise is not None:
        return x + noise * spread * rng.standard_normal(x.shape, dtype=np.float32)
    return x.mean(axis=-1, keepdims=True) + spread * rng.standard_normal(x.shape, dtype=np.float32)


def _sample(s: RowSample, rng: np.random.Generator, noise: float | None) -> RowSample:
    x = _redrawn(s.data, rng, noise)
    return replace(s, kept=rowcodec.encode(x, s.encoding), encoding=s.encoding)


def variant(probe: Probe, name: str, seed: int, noise: float | None) -> Probe:
    """A probe of another model made from ``probe`` (plain encodings only): every row and vector redrawn."""
    rng = np.random.default_rng(seed)
    matrices = {r: {i: _sample(s, rng, noise) for i, s in layers.items()} for r, layers in probe.matrices.items()}
    vectors = {
        r: {i: _redrawn(v[None, :], rng, noise)[0] if noise is not None else v.copy() for i, v in layers.items()}
        for r, layers in probe.vectors.items()
    }
    if noise is None:  # an unrelated model's norms: its own values around the same level
        vectors = {
            r: {
                i: v + 0.1 * np.abs(v).mean() * rng.standard_normal(v.shape, dtype=np.float32)
                for i, v in layers.items()
            }
            for r, layers in vectors.items()
        }
    emb = _sample(probe.embedding_rows, rng, noise) if probe.embedding_rows is not None else None
    revision = hashlib.sha1(name.encode()).hexdigest()
    return replace(
        probe, model=name, revision=revision, matrices=matrices, vectors=vectors, embedding_rows=emb, notes=[]
    )


def with_vocabulary(probe: Probe, family: int, seed: int) -> Probe:
    """The probe with a generated vocabulary of VOCAB tokens, of which it kept KEPT_TOKENS (picked as a real probe
    picks them) with embedding rows of its width."""
    texts = [f"f{family}·{j}" for j in range(VOCAB)]
    ids = np.array(pick_tokens(texts, KEPT_TOKENS, VOCAB), dtype=np.int64)
    hidden = probe.embedding_rows.shape[1] if probe.embedding_rows is not None else int(probe.config["hidden"])
    rows = np.random.default_rng(seed).standard_normal((len(ids), hidden), dtype=np.float32) * 0.02
    emb = RowSample(ids, rowcodec.encode(rows, "F32"), "F32", (VOCAB, hidden))
    return replace(
        probe,
        tokens=[texts[i] for i in ids],
        embedding_rows=emb,
        vocab_size=VOCAB,
        vocab_source="tokenizer.json",
    )


def _add(lib: Library, probe: Probe, family: str, declared: tuple[str, ...] = ()) -> None:
    fp = sigma.fingerprint_of(probe, source="hub", repo_id=probe.model)
    assert fp is not None
    lib.add(probe, fp, family=family, declared_base=declared)


def write_finetune(source: Path, out: Path, card: str) -> Path:
    """A real folder: ``source``'s weights plus 10 % of each tensor's spread in noise, its config, a model card."""
    from safetensors.numpy import load_file, save_file

    out.mkdir(parents=True)
    rng = np.random.default_rng(7)
    weights = load_file(str(source / "model.safetensors"))
    noisy = {k: (v + 0.1 * v.std() * rng.standard_normal(v.shape)).astype(v.dtype) for k, v in weights.items()}
    save_file(noisy, str(out / "model.safetensors"))
    shutil.copy(source / "config.json", out / "config.json")
    (out / "README.md").write_text(f"---\nbase_model: {card}\n---\n")
    return out


def ensure_library(log=print) -> Path:
    folder = ROOT / "library"
    stamp = ROOT / "generator.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("version") == GENERATOR_VERSION:
        return folder
    shutil.rmtree(ROOT, ignore_errors=True)
    t = time.perf_counter()
    lib = Library.open(folder, create=True)
    opts = Options(use_cache=False)
    real = {
        name: read_model(str(bl.FIXTURES / name), opts)
        for name in ("stories260k", "babyllama-tok361", "babyllama-tok105")
    }
    for read in real.values():
        lib.add(read.probe, read.fingerprint, family="demo")
    gguf = read_model(str(bl.FIXTURES / "stories260k-q8_0.gguf"), opts)
    lib.add(gguf.probe, gguf.fingerprint, family="demo", declared_base=(DECLARED,))
    stories, others = real["stories260k"].probe, [real["babyllama-tok361"].probe, real["babyllama-tok105"].probe]
    for i in range(SAME_WIDTH):
        related = i % 3 == 0
        p = variant(stories, f"tinystories-org/tiny-{i}", seed=i, noise=0.1 if related else None)
        _add(lib, p, "tinystories", (DECLARED,) if related else ())
    for i in range(ENTRIES - 4 - SAME_WIDTH):
        family = i % FAMILIES
        p = variant(others[i % 2], f"family-{family}/model-{i}", seed=1000 + i, noise=0.1 if i % 4 == 0 else None)
        _add(lib, with_vocabulary(p, family, seed=2000 + i), f"family-{family}")
    write_finetune(bl.FIXTURES / "stories260k", ROOT / "stories-finetune", DECLARED)
    stamp.write_text(json.dumps({"version": GENERATOR_VERSION}))
    log(f"generated a library of {len(lib)} entries in {time.perf_counter() - t:.1f} s")
    return folder


# ----------------------------------------------------------------------------- measuring


def _summary(result: ScanResult, runs: list[float], open_s: float) -> dict:
    closest = result.closest
    return {
        "runs_s": runs,
        "median_s": statistics.median(runs),
        "max_s": max(runs),
        "open_library_s": open_s,
        "stages_s": result.seconds,
        "weighed": len(result.matches),
        "set_aside": dict(result.set_aside_counts),
        "related": len(result.related),
        "closest": closest.entry.model if closest else None,
        "closest_verdict": closest.verdict.verdict if closest and closest.verdict else None,
        "declared": result.declared.outcome,
    }


def measure_tiny(folder: Path, cache: Path, log=print) -> dict:
    model = str(ROOT / "stories-finetune")
    opts = Options(store=Store(cache / "fingerprints.sqlite"))
    get_probe(model, opts)  # the probe is in the cache before the scans are timed
    runs, result, open_s = [], None, 0.0
    for _ in range(RUNS):
        t = time.perf_counter()
        lib = Library.open(folder)
        open_s = time.perf_counter() - t
        t = time.perf_counter()
        result = scan(model, lib, opts, resolve_declared=lambda name: str(bl.FIXTURES / "stories260k"))
        runs.append(time.perf_counter() - t)
    assert result is not None
    out = _summary(result, runs, open_s)
    log(f"tiny: {', '.join(f'{r:.2f}' for r in runs)} s; weighed {out['weighed']}, closest {out['closest']}")
    return out


def measure_7b(folder: Path, cache: Path, log=print) -> dict:
    root = ROOT / "7b"
    parent, child = root / "llama-7b-parent", root / "llama-7b-finetune"
    if not (child / "model.safetensors").exists():
        shutil.rmtree(root, ignore_errors=True)
        ranges = None
        for f in (parent, child):
            path = probe_7b.write_sparse_model(f)
            ranges = ranges or probe_7b.ranges_read(f)
            probe_7b.fill(path, ranges, seed=1, base=None if f == parent else parent / "model.safetensors")
    opts = Options(store=Store(cache / "fingerprints.sqlite"))
    lib_folder = root / "library"
    if not (lib_folder / MANIFEST).is_file():
        shutil.copytree(folder, lib_folder)
        lib = Library.open(lib_folder)
        read = read_model(str(parent), opts)
        base = replace(read.probe, model="bench-7b/llama-7b-parent")
        _add(lib, base, "bench-7b")
        for i in range(SAME_SHAPE_7B - 1):
            _add(lib, variant(base, f"bench-7b/unrelated-{i}", seed=3000 + i, noise=None), "bench-7b")
    t = time.perf_counter()
    get_probe(str(child), opts)
    log(f"7B: probe of the model scanned in the cache ({time.perf_counter() - t:.0f} s)")
    t = time.perf_counter()
    lib = Library.open(lib_folder)
    open_s = time.perf_counter() - t
    t = time.perf_counter()
    result = scan(str(child), lib, opts)
    runs = [time.perf_counter() - t]
    out = _summary(result, runs, open_s)
    large = [m for m in result.matches if m.entry.facts.hidden == probe_7b.HIDDEN]
    out["same_shape_candidates"] = len(large)
    out["per_candidate_s"] = result.seconds["verdicts"] / max(1, len(result.matches))
    log(f"7B: {runs[0]:.1f} s; weighed {out['weighed']} ({len(large)} of 7B shape), closest {out['closest']}")
    return out


# what each derivative of the lineage benchmark's models is derived from, as benchmarks/train_tiny.py made it
LINEAGE_PARENTS = {
    "s0-finetune": "base-s0",
    "s0-continued": "base-s0",
    "s0-pruned": "base-s0",
    "s0-moe": "base-s0",
    "s0-f16": "base-s0",
    "s0-q8_0.gguf": "base-s0",
    "s0-q4_0.gguf": "base-s0",
    "s1-finetune": "base-s1",
    "s1-moe": "base-s1",
    "stories260k-q8_0.gguf": "stories260k",
    **{f"s0-{name}": "base-s0" for name in lineage.MANIPULATIONS},
}
LINEAGE_ORIGINALS = (
    *(f"base-s{i}" for i in range(6)),
    "wide-s0",
    "wide-s1",
    "stories260k",
    "babyllama-tok361",
    "babyllama-tok105",
)


def measure_lineage(log=print) -> dict | None:
    """Every model of the lineage benchmark trained from scratch (and the fixtures) in a library; every derivative
    scanned against it (its parent must come first, called related), every original too (no entry may be called
    related: the original itself is in the library and is not compared with itself). None without the models."""
    if not (lineage.DEFAULT_MODELS / "base-s0" / "config.json").is_file():
        log(f"lineage: no models in {lineage.DEFAULT_MODELS} (benchmarks/train_tiny.py makes them): skipped")
        return None
    opts = Options(use_cache=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = lineage.discover(lineage.DEFAULT_MODELS, Path(tmp))
        lib = Library.open(Path(tmp) / "library", create=True)
        report = build_library(lib, [(models[n], "lineage") for n in LINEAGE_ORIGINALS if n in models], opts)
        assert not report.failed, report.failed
        size = len(lib)
        names = {e.model: n for n in LINEAGE_ORIGINALS if n in models for e in [lib.find(Path(models[n]).name)] if e}
        for name in [*LINEAGE_PARENTS, *LINEAGE_ORIGINALS]:
            if name not in models:
                continue
            t = time.perf_counter()
            result = scan(models[name], Library.open(lib.path), opts, top=3)
            first = result.matches[0] if result.matches else None
            parent = LINEAGE_PARENTS.get(name)
            got = names.get(first.entry.model, first.entry.model) if first else None
            related = [names.get(m.entry.model, m.entry.model) for m in result.related]
            ok = (got == parent and bool(first and first.related)) if parent else not related
            rows.append(
                {
                    "model": name,
                    "parent": parent,
                    "first": got,
                    "first_verdict": first.verdict.verdict if first and first.verdict else None,
                    "first_strength": round(first.verdict.strength, 4) if first and first.verdict else None,
                    "related": related,
                    "weighed": len(result.matches),
                    "seconds": round(time.perf_counter() - t, 3),
                    "pass": ok,
                }
            )
            log(f"lineage: {name}: first {got} ({rows[-1]['first_verdict']}), related {related}: {ok}")
    return {"library": size, "rows": rows}


def library_facts(folder: Path) -> dict:
    manifest = json.loads((folder / MANIFEST).read_text())
    tokens = [len(e["facts"]["tokens"]) for e in manifest["entries"]]
    probes = sum((folder / e["probe"]).stat().st_size for e in manifest["entries"])
    return {
        "entries": len(manifest["entries"]),
        "manifest_bytes": (folder / MANIFEST).stat().st_size,
        "tokens_per_entry_median": statistics.median(tokens),
        "probe_bytes": probes,
    }


def target_rows(s: dict) -> list[tuple[str, str, str, bool]]:
    """(what, target, measured, passed) for BENCHMARKS.md."""
    t = s["tiny"]
    rows = [
        (
            f"scan against {s['library']['entries']} entries (tiny models)",
            f"≤ {TARGET_S:g} s, probe in the cache",
            f"{t['max_s']:.2f} s (slowest of {len(t['runs_s'])}; {t['weighed']} weighed)",
            t["max_s"] <= TARGET_S,
        ),
        (
            "scan of a stories260k fine-tune",
            "its parent first, related",
            f"{t['closest']} ({t['closest_verdict']})",
            t["closest"] == "stories260k",
        ),
    ]
    if lin := s.get("lineage"):
        derived = [r for r in lin["rows"] if r["parent"]]
        originals = [r for r in lin["rows"] if not r["parent"]]
        rows += [
            (
                "scan of each derivative of the lineage benchmark",
                "its parent first, related",
                f"{sum(r['pass'] for r in derived)} of {len(derived)}",
                all(r["pass"] for r in derived),
            ),
            (
                "scan of each model trained from scratch",
                "no entry called related",
                f"{sum(r['pass'] for r in originals)} of {len(originals)}",
                all(r["pass"] for r in originals),
            ),
        ]
    if big := s.get("7b"):
        rows.append(
            (
                f"scan of a 7B-shaped model ({big['same_shape_candidates']} same-shape entries)",
                f"≤ {TARGET_S:g} s, probe in the cache",
                f"{big['max_s']:.1f} s ({big['per_candidate_s']:.1f} s per entry weighed)",
                big["max_s"] <= TARGET_S,
            )
        )
    return rows


def render(s: dict) -> list[str]:
    """The BENCHMARKS.md section (used by run_all.py)."""
    lib, t = s["library"], s["tiny"]
    L = ["## 5. Scanning a model against the reference library (`benchmarks/scan_library.py`)", ""]
    L += [
        f"A generated library of {lib['entries']} entries made from the demo models' real probes (noisy copies and",
        f"redrawn unrelated models; the median entry keeps {lib['tokens_per_entry_median']:,.0f} token texts: manifest",
        f"{lib['manifest_bytes'] / 1e6:.1f} MB, probes {lib['probe_bytes'] / 1e6:.0f} MB). The model scanned has its",
        f"probe in the cache. At most {MAX_CANDIDATES} entries are weighed (verdicts); the others are set aside by their facts.",
        "",
        "| model scanned | runs | facts (stage 1) | verdicts (stage 2) | weighed | set aside | closest |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in (("stories260k fine-tune (tiny)", t), ("7B-shaped bf16 fine-tune", s.get("7b"))):
        if not r:
            continue
        aside = ", ".join(f"{n} {k}" for k, n in r["set_aside"].items()) or "none"
        L.append(
            f"| {label} | {', '.join(f'{x:.2f} s' for x in r['runs_s'])} | {r['stages_s']['facts'] * 1000:.0f} ms | "
            f"{r['stages_s']['verdicts']:.2f} s | {r['weighed']} | {aside} | {r['closest']} ({r['closest_verdict']}) |"
        )
    if big := s.get("7b"):
        L += [
            "",
            f"The 7B-shaped model is scanned against the same library plus {big['same_shape_candidates']} entries of its",
            "shapes (its parent and unrelated models): as many as a scan weighs, the worst case of a popular width. There",
            f"the verdicts, not the library, set the time: {big['per_candidate_s']:.1f} s per entry weighed (its probe",
            "loaded, every signal computed), two entries at a time. Most of it is matching 4,096 hidden dimensions of",
            "two unrelated models one to one (the Hungarian assignment, cubic in the width; a related pair skips it,",
            "its best matches being distinct). `scan --max-candidates N` weighs fewer entries: the set-aside ones are",
            "listed with their facts.",
        ]
    if lin := s.get("lineage"):
        L += [
            "",
            "The lineage benchmark's models (section 3: really trained, independent seeds, a fine-tune, continued",
            "pre-training, a pruned copy, MoE upcycles, quantized copies, function-preserving manipulations) against a",
            f"library of the {lin['library']} models among them and the fixtures that were trained from scratch. The",
            "verdicts are placed against the calibration that these same pairs helped make (section 3 judges them",
            "leave-one-out), so this checks the scan - candidates, ranking, words - more than the signals.",
            "",
            "| model scanned | made from | first in the list | its verdict | related entries | weighed | time | result |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in lin["rows"]:
            L.append(
                f"| {r['model']} | {r['parent'] or 'trained from scratch'} | {r['first'] or '-'} | "
                f"{r['first_verdict'] or '-'} | {', '.join(r['related']) or 'none'} | {r['weighed']} | "
                f"{r['seconds']:.2f} s | {'**PASS**' if r['pass'] else '**FAIL**'} |"
            )
    return [*L, ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-7b", action="store_true", help="leave out the 7B-shaped scan (a few minutes, 1.5 GB of disk)")
    args = ap.parse_args(argv)
    folder = ensure_library()
    cache = ROOT / "cache"
    results = {
        "machine": bl.machine(),
        "library": library_facts(folder),
        "tiny": measure_tiny(folder, cache),
    }
    if not args.no_7b:
        results["7b"] = measure_7b(folder, cache)
    if (found := measure_lineage()) is not None:
        results["lineage"] = found
    results["targets"] = [{"what": w, "target": t, "measured": m, "pass": ok} for w, t, m, ok in target_rows(results)]
    path = bl.save_result("scan_library", results)
    print(f"wrote {path}")
    for w, t, m, ok in target_rows(results):
        print(f"  {'PASS' if ok else 'FAIL'}  {w}: {t}: {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Local throughput and peak memory: the tool's exact mode against the naive way, on a generated 2.15 GB bf16 model.

naive   `import ml_dtypes` (safetensors.numpy cannot make bf16 arrays without it), then
        safetensors.numpy.load_file() of each weight file and numpy.std(t.astype(float32)) of each
        attention tensor (q/k/v/o projections and input_layernorm, the same tensors the tool reads)
tool    fingerprint.compute(folder, Options(mode="exact", use_cache=False, store=Store(...))):
          - "fresh cache": a new, empty SQLite store, so the sha256 of the weight file is computed
            (the tool identifies local files by sha256; README "Local files")
          - "hash cached": the store already holds that sha256 (keyed by path, size, mtime)

Every run is a fresh subprocess (peak RSS = ru_maxrss of that child; VmHWM agrees). Time is the
wall time of the work inside the child, after imports; import time and the RSS after imports
are reported separately.

Page cache: "cold" = the model file evicted before each run (os.sync, then
/proc/sys/vm/drop_caches when writable, plus posix_fadvise(DONTNEED) on the model file; the
resident size is checked with fincore when it is installed). "warm" = the whole model file read
into the page cache just before, for every variant alike. Targets: tool >= 2x faster than naive,
tool peak RSS < 300 MB.

Usage: python benchmarks/local.py [--repeat N]
Writes benchmarks/data/results/local.json; run_all.py turns it into BENCHMARKS.md.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402

MODEL = bl.LlamaSpec("llama-20L-h2048-bf16", layers=20, max_shard_bytes=5_000_000_000, seed=1)  # 2.15 GB, one file
SPEEDUP_MIN = 2.0
RSS_MAX = 300 * 2**20
ROLE_OF = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o"}


# ----------------------------------------------------------------------------- child side


def _rss() -> dict:
    hwm = rss = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
            elif line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "vmhwm": hwm, "vmrss": rss}


def child(variant: str, folder: Path, store_path: str | None) -> dict:
    import numpy as np

    if variant == "naive":
        import ml_dtypes  # noqa: F401  - registers bfloat16 with numpy; load_file fails on BF16 without it
        from safetensors.numpy import load_file

        t_import = time.perf_counter() - _T_START
        after_import = _rss()
        t0 = time.perf_counter()
        curves: dict[str, dict[int, float]] = {}
        for f in sorted(folder.glob("*.safetensors")):
            sd = load_file(str(f))
            for name, t in sd.items():
                m = bl._LAYER_RX.match(name)
                if m:
                    role = ROLE_OF[m.group(2)] if m.group(2) else "attn_norm"
                    curves.setdefault(role, {})[int(m.group(1))] = float(np.std(t.astype(np.float32)))
            del sd
        work = time.perf_counter() - t0
        return {
            "variant": variant,
            "work_s": work,
            "import_s": t_import,
            "rss_after_import": after_import["vmrss"],
            **_rss(),
            "curves": {r: [v[i] for i in sorted(v)] for r, v in curves.items()},
            "bytes_read": None,
        }

    from fingerprint import Options, Store, compute

    t_import = time.perf_counter() - _T_START
    after_import = _rss()
    store = Store(store_path) if store_path else None
    t0 = time.perf_counter()
    out = compute(str(folder), Options(mode="exact", use_cache=False, store=store))
    work = time.perf_counter() - t0
    if out.error is not None:
        raise SystemExit(f"compute failed: {out.error!r}")
    fp = out.fingerprint
    return {
        "variant": variant,
        "work_s": work,
        "import_s": t_import,
        "rss_after_import": after_import["vmrss"],
        **_rss(),
        "curves": fp.curves,
        "bytes_read": fp.bytes_read,
    }


# ----------------------------------------------------------------------------- parent side


def evict(files: list[Path]) -> dict:
    """Drop the model files from the page cache; say how, and how much stayed resident."""
    how = []
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        how.append("drop_caches")
    except OSError:
        pass
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    how.append("fadvise")
    return {"method": "+".join(how), "resident_bytes": resident(files)}


def resident(files: list[Path]) -> int | None:
    if not shutil.which("fincore"):
        return None
    try:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES", *map(str, files)],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        return sum(int(x) for x in out.split())
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def run_child(variant: str, folder: Path, store: Path | None) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--model", str(folder)]
    if store:
        cmd += ["--store", str(store)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{variant} child failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_s"] = wall
    return res


def kernel(folder: Path) -> dict:
    """Where the tool's exact time goes: the moments kernel per element, the reads alone, threads."""
    import numpy as np

    from fingerprint.checkpoint import open_checkpoint
    from fingerprint.formats.dtypes import decode_rows
    from fingerprint.reference import parse_reference
    from fingerprint.roles import assign_roles
    from fingerprint.stats import Moments, compute_stats, make_plan, span_moments

    ckpt = open_checkpoint(parse_reference(str(folder)), file_hash=lambda p: "not-hashed")
    try:
        rmap = assign_roles(ckpt.tensors, ckpt.config)
        plan = make_plan(rmap, "exact")
        elements = sum(p.item.tensor.cols * (p.r1 - p.r0) for j in plan.jobs for p in j.spans)
        bl.warm(sorted(folder.glob("*.safetensors")))
        t0 = time.perf_counter()
        for j in plan.jobs:
            j.source.read(j.offset, j.length)
        pread_s = time.perf_counter() - t0
        threads = {}
        for par in (1, 2):
            best = math.inf
            for _ in range(2):
                t0 = time.perf_counter()
                compute_stats(rmap, plan, parallel=par)
                best = min(best, time.perf_counter() - t0)
            threads[par] = best
        job = max(plan.jobs, key=lambda j: j.length)
        raw = job.source.read(job.offset, job.length)
        piece = job.spans[0]
        t = piece.item.tensor
        n = (piece.r1 - piece.r0) * t.cols
        x = decode_rows(raw[: piece.length], t.dtype, t.format, piece.r1 - piece.r0, t.cols)

        def per_element(fn, k: int = 10) -> float:
            fn()
            best = math.inf
            for _ in range(k):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            return best / n * 1e9

        def alternative() -> tuple[int, float, float]:
            u = np.frombuffer(raw[: piece.length], dtype="<u2")
            n_, s1, s2 = 0, 0.0, 0.0
            for i in range(0, u.size, 1 << 20):
                x64 = (u[i : i + (1 << 20)].astype(np.uint32) << 16).view(np.float32).astype(np.float64)
                n_, s1, s2 = n_ + x64.size, s1 + float(x64.sum()), s2 + float(np.dot(x64, x64))
            return n_, s1, s2

        buf = np.empty(1 << 20, dtype=np.uint32)

        def alternative32() -> tuple[int, float, float]:
            u = np.frombuffer(raw[: piece.length], dtype="<u2")
            n_, s1, s2 = 0, 0.0, 0.0
            for i in range(0, u.size, 1 << 20):
                part = u[i : i + (1 << 20)]
                b = buf[: part.size]
                np.left_shift(part, 16, out=b, dtype=np.uint32)
                x32 = b.view(np.float32)
                n_, s1, s2 = n_ + x32.size, s1 + float(x32.sum(dtype=np.float64)), s2 + float(np.dot(x32, x32))
            return n_, s1, s2

        ns = {
            "current _piece_moments": per_element(lambda: span_moments(piece, raw[: piece.length], None)),
            "decode_rows (bf16 -> f32)": per_element(
                lambda: decode_rows(raw[: piece.length], t.dtype, t.format, piece.r1 - piece.r0, t.cols)
            ),
            "sum in f64 (finiteness check)": per_element(lambda: float(x.sum(dtype=np.float64))),
            "Moments.of (f64 copy, mean, subtract, dot)": per_element(lambda: Moments.of(x)),
            "alternative: f64 sum + dot": per_element(alternative),
            "alternative: f32 in a reused buffer, f64 sum, f32 dot": per_element(alternative32),
        }
        ref = Moments.of(x).std
        rel = {}
        for key, fn in (("f64", alternative), ("f32", alternative32)):
            n_, s1, s2 = fn()
            rel[key] = abs(math.sqrt(s2 / n_ - (s1 / n_) ** 2) - ref) / ref
    finally:
        ckpt.close()
    return {
        "elements": elements,
        "pread_s": pread_s,
        "compute_stats_s": threads,
        "ns_per_element": ns,
        "alternative_rel_diff": rel,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child")
    ap.add_argument("--model")
    ap.add_argument("--store")
    ap.add_argument("--repeat", type=int, default=5, help="cold and warm runs per variant (median reported)")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, Path(args.model), args.store)))
        return {}

    folder, manifest = bl.ensure_model(MODEL)
    files = sorted(folder.glob("*.safetensors"))
    lay = bl.layout_bytes(folder)
    stores = bl.DATA / "local-stores"
    shutil.rmtree(stores, ignore_errors=True)
    stores.mkdir(parents=True)
    cached_store = stores / "hash-cached.sqlite"
    counter = iter(range(10**6))

    def fresh_store() -> Path:
        return stores / f"fresh-{next(counter)}.sqlite"

    # prime the hash-cached store (and check the hash the tool computes against ours)
    prime = run_child("tool", folder, cached_store)
    variants = {
        "naive": lambda: None,
        "tool, fresh cache (sha256 computed)": fresh_store,
        "tool, hash cached": lambda: cached_store,
    }
    kind = {"naive": "naive", "tool, fresh cache (sha256 computed)": "tool", "tool, hash cached": "tool"}

    # sha256 of the model file alone, for reference (what the fresh-cache runs pay on top)
    from fingerprint.checkpoint import sha256_file

    bl.warm(files)
    t0 = time.perf_counter()
    for p in files:
        sha = sha256_file(p)
        assert sha == manifest["files"][p.name]["sha256"], "sha256 mismatch"
    hash_warm_s = time.perf_counter() - t0

    # how fast is a cold read of the whole file on this machine?
    evict(files)
    t0 = time.perf_counter()
    bl.warm(files)
    cold_read_s = time.perf_counter() - t0

    results: dict = {"cold": {}, "warm": {}}
    evictions = []
    # cold: evict before every run; N runs per variant, interleaved
    for _ in range(args.repeat):
        for name, store in variants.items():
            evictions.append(evict(files))
            results["cold"].setdefault(name, []).append(run_child(kind[name], folder, store()))
    for name in variants:
        c = results["cold"][name]
        print(
            f"cold  {name}: median {statistics.median(r['work_s'] for r in c):.2f} s of {[round(r['work_s'], 2) for r in c]}, "
            f"peak RSS {max(r['ru_maxrss'] for r in c) / 2**20:.0f} MiB",
            flush=True,
        )
    # warm: whole file in cache before each run; one unmeasured run per variant first, then N interleaved
    bl.warm(files)
    for name, store in variants.items():
        run_child(kind[name], folder, store())
    for _ in range(args.repeat):
        for name, store in variants.items():
            bl.warm(files)
            results["warm"].setdefault(name, []).append(run_child(kind[name], folder, store()))
    for name in variants:
        w = results["warm"][name]
        print(
            f"warm  {name}: median {statistics.median(r['work_s'] for r in w):.2f} s of {[round(r['work_s'], 2) for r in w]}, "
            f"peak RSS {max(r['ru_maxrss'] for r in w) / 2**20:.0f} MiB",
            flush=True,
        )

    # agreement of the tool's exact σ with numpy's
    naive_curves = results["warm"]["naive"][0]["curves"]
    tool_curves = results["warm"]["tool, hash cached"][0]["curves"]
    max_diff = max(abs(t - n) / n for r in naive_curves for t, n in zip(tool_curves[r], naive_curves[r]))

    summary = {}
    for cache in ("cold", "warm"):
        summary[cache] = {}
        for name, runs in results[cache].items():
            summary[cache][name] = {
                "work_s": statistics.median(r["work_s"] for r in runs),
                "runs_s": [r["work_s"] for r in runs],
                "process_s": statistics.median(r["process_s"] for r in runs),
                "import_s": statistics.median(r["import_s"] for r in runs),
                "peak_rss": max(r["ru_maxrss"] for r in runs),
                "vmhwm": max(r["vmhwm"] for r in runs),
                "rss_after_import": max(r["rss_after_import"] for r in runs),
                "bytes_read": runs[0]["bytes_read"],
            }
    targets = {}
    for cache in ("cold", "warm"):
        naive = summary[cache]["naive"]["work_s"]
        for name in list(variants)[1:]:
            sp = naive / summary[cache][name]["work_s"]
            summary[cache][name]["speedup"] = sp
            nr, tr = summary[cache]["naive"]["runs_s"], summary[cache][name]["runs_s"]
            summary[cache][name]["speedup_range"] = [min(nr) / max(tr), max(nr) / min(tr)]
            if "hash cached" in name:  # the first sight of a file is bounded by sha256 speed: no speed target there
                targets[f"speed, {cache}, {name}"] = {
                    "limit": SPEEDUP_MIN,
                    "value": sp,
                    "pass": sp >= SPEEDUP_MIN,
                    "range": summary[cache][name]["speedup_range"],
                }
    for name in list(variants)[1:]:
        rss = max(summary[c][name]["peak_rss"] for c in ("cold", "warm"))
        targets[f"peak RSS, {name}"] = {"limit": RSS_MAX, "value": rss, "pass": rss < RSS_MAX}
    try:  # uses the core's internals: if those change, report and go on
        k = kernel(folder)
        print(f"kernel: {json.dumps(k)}")
    except Exception as exc:
        print(f"kernel breakdown skipped: {type(exc).__name__}: {exc}")
        k = None
    payload = {
        "benchmark": "local",
        "kernel": k,
        "machine": bl.machine(),
        "model": {"name": MODEL.name, "files": [p.name for p in files], **lay, "layers": MODEL.layers},
        "eviction": evictions,
        "hash_only_warm_s": hash_warm_s,
        "cold_read_s": cold_read_s,
        "tool_vs_numpy_max_rel_diff": max_diff,
        "prime_run": {k: v for k, v in prime.items() if k != "curves"},
        "summary": summary,
        "targets": targets,
    }
    path = bl.save_result("local", payload)
    print(f"sha256 of the model file alone (warm): {hash_warm_s:.2f} s; tool vs numpy σ: max rel diff {max_diff:.1e}")
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()

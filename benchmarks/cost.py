"""Cost of a verdict, and of σ fingerprints, read from a local server that behaves like the Hub.

    python benchmarks/cost.py [--sizes 135M 1.1B 7B]

The server (tests/hub_server.FakeHub in its own process) answers /resolve/ of a weight file with a
302 to a second origin carrying a signed URL, and enforces the Hub's published limits for an
anonymous IP (500 API calls and 3,000 resolver calls per 5 minutes). Each run is a fresh
`python -m fingerprint` process (nothing cached in memory or on disk), so its peak RSS is the
process's own, and the figures are what a new user pays: bytes read, HTTP requests (to the Hub and
to the storage host), resolver calls, peak RSS, bytes written to the cache folder and wall time.

Models: the Llama-shaped bf16 checkpoints of benchmarks/cost_models.py (135M, 1.1B and 7B shapes,
two seeds each; a verdict compares the two seeds of one size).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl  # noqa: E402
import cost_models  # noqa: E402

HUB_LIMITS = {"api": 500, "resolvers": 3000, "window": 300.0}
TARGETS = {"bytes": 128e6, "requests": 1000, "verdict_rss_7b": 600 * 2**20}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measured(args: list[str], env: dict, cwd: Path) -> dict:
    """Run the CLI under a tiny wrapper process so that ru_maxrss belongs to this run alone."""
    wrapper = (
        "import resource, subprocess, sys, time, json;"
        "t=time.perf_counter();"
        "p=subprocess.run([sys.executable,'-m','fingerprint',*sys.argv[1:]],capture_output=True,text=True);"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
        "print(json.dumps({'exit':p.returncode,'seconds':round(time.perf_counter()-t,2),'rss':r.ru_maxrss*1024,"
        "'stdout':p.stdout[-3000:],'stderr':p.stderr[-2000:]}))"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *args], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def per_repo(stats: dict, repo: str, blob_shas: set[str]) -> dict:
    hub = cdn = resolves = api = 0
    for _method, path, _range in stats["requests"]:
        if path.startswith("/lfs/"):
            if path.split("?")[0].split("/")[-1] in blob_shas:
                cdn += 1
        elif path.startswith(f"/api/models/{repo}"):
            api += 1
            hub += 1
        elif path.startswith(f"/{repo}/resolve/"):
            resolves += 1
            hub += 1
    return {"bytes": stats["bytes_served"], "requests": hub + cdn, "hub_requests": hub, "storage_requests": cdn,
            "resolver_calls": resolves, "api_calls": api}


def bench_size(hub: bl.HubProcess, size: str, folders: dict, log=print) -> dict:
    repos, shas = {}, {}
    for seed in (0, 1):
        folder = folders[(size, seed)]
        manifest = json.loads((folder / "manifest.json").read_text())
        lfs = {n: f["sha256"] for n, f in manifest["files"].items()}
        repo = f"bench/cost-{size}-s{seed}"
        hub.add_repo(repo, bl.repo_files(folder), lfs=lfs)
        repos[seed], shas[seed] = repo, set(lfs.values())
    total = sum(f.stat().st_size for f in bl.repo_files(folders[(size, 0)]).values())
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_TOKEN", None)
    out: dict = {"size": size, "model_bytes": total}
    runs = {
        "verdict": ["verdict", repos[0], repos[1]],
        "sigma_exact": ["compute", repos[0], "--mode", "exact"],
        "sigma_sampled": ["compute", repos[0], "--mode", "sampled"],
    }
    for name, args in runs.items():
        with tempfile.TemporaryDirectory(prefix="cost-") as tmp:
            tmpdir = Path(tmp)
            hub.reset()
            run = measured([*args, "--cache", str(tmpdir / "cache" / "cache.sqlite"), "-q"],
                           {**env, "HF_HOME": str(tmpdir / "hf_home")}, bl.ROOT)
            stats = {seed: hub.stats(repos[seed]) for seed in (0, 1)}
            written = folder_bytes(tmpdir / "cache") if (tmpdir / "cache").exists() else 0
        if run["exit"] != 0:
            log(f"  {size} {name}: FAILED (exit {run['exit']}): {run['stderr'][-500:]}")
        models = [per_repo(stats[seed], repos[seed], shas[seed]) for seed in ((0, 1) if name == "verdict" else (0,))]
        rate_limited = stats[0]["rate_limited"]
        entry = {
            "exit": run["exit"], "seconds": run["seconds"], "peak_rss": run["rss"], "disk_written": written,
            "per_model": models, "rate_limited": rate_limited, "stderr": run["stderr"][-800:] if run["exit"] else "",
        }
        if name == "verdict":
            entry["verdict"] = next((ln for ln in run["stdout"].splitlines() if ln.startswith("Verdict:")), "")
        out[name] = entry
        worst = max(models, key=lambda m: m["bytes"])
        log(f"  {size} {name}: {worst['bytes'] / 1e6:.1f} MB, {worst['requests']} requests "
            f"({worst['resolver_calls']} resolver calls), RSS {run['rss'] / 2**20:.0f} MiB, "
            f"disk {written / 1e6:.1f} MB, {run['seconds']:.1f} s")
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(cost_models.SIZES))
    args = ap.parse_args(argv)
    folders = cost_models.ensure_all(tuple(args.sizes))
    hub = bl.HubProcess()
    try:
        hub.configure(redirect_lfs=True, rate_limits=HUB_LIMITS)
        results = {"machine": bl.machine(), "hub_limits": HUB_LIMITS, "targets": TARGETS,
                   "sizes": [bench_size(hub, s, folders) for s in args.sizes]}
    finally:
        hub.stop()
    bl.save_result("cost", results)
    return results


if __name__ == "__main__":
    main()

"""Bytes read per fingerprint, against the model's size, through a local server speaking the Hub's protocol.

Models: a generated 3.3 GB bf16 Llama-like checkpoint in the real HF layout (2 shards + index +
config.json) and the real trained fixtures in fingerprint/demo_models, each served as a Hub repo by
tests/hub_server.py (files are served from disk, never loaded whole). For each model, exact and
sampled mode are run through the public API, compute("org/name@<sha>", Options(...)).

Targets (from the issue):
  exact    bytes read <= 1.02 x (attention tensor bytes + headers), both computed here from the headers
  sampled  bytes read <= 32 MB (32,000,000 bytes) whatever the model size; the stated standard error is
           honest (the exact value within 2 stated SE for >= 95 % of the sampled per-layer values) and each
           curve keeps its shape (per-role Pearson r vs exact >= 0.97) - the targets decided in issue 8,
           which replaced "every per-layer σ within 1 %" and "r > 0.99"

Usage: python benchmarks/bytes.py [--quick]   (--quick: fixtures only)
Writes benchmarks/data/results/bytes.json; run_all.py turns it into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl

bl.hub_env()

import numpy as np  # noqa: E402

from fingerprint import Options, compute, inspect  # noqa: E402

BIG = bl.LlamaSpec("llama-32L-h2048-bf16")  # 3.28 GB, 2 shards
# Llama-3.2-1B-shaped Q8_0 GGUF with a Llama-3-sized tokenizer (an 8.3 MB header)
GGUF = bl.LlamaSpec(
    "llama-16L-h2048-q8_0-gguf", layers=16, heads=32, kv_heads=8, intermediate=8192, vocab=128256, seed=2
)
SAMPLED_LIMIT = 32_000_000
EXACT_SLACK = 1.02
COVERAGE_MIN = 0.95  # share of sampled per-layer values whose exact value lies within 2 stated SE
R_MIN = 0.97


def pearson(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def run_mode(hub: bl.HubProcess, repo: str, sha: str, mode: str) -> dict:
    hub.reset()
    t0 = time.perf_counter()
    out = compute(f"{repo}@{sha}", Options(mode=mode, endpoint=hub.url, use_cache=False))
    wall = time.perf_counter() - t0
    if out.error is not None:
        raise SystemExit(f"{repo} ({mode}) failed: {out.error!r}")
    fp = out.fingerprint
    st = hub.stats(repo)
    reqs = st["requests"]
    return {
        "fp": fp,
        "bytes_read": fp.bytes_read,
        "bytes_served": st["bytes_served"],
        "requests": len(reqs),
        "range_requests": sum(1 for r in reqs if r[2] is not None),
        "api_requests": sum(1 for r in reqs if "/api/" in r[1]),
        "connections": st["connections"],
        "wall_s": wall,
    }


def compare(exact, sampled) -> dict:
    """Per role: max relative σ error, Pearson r, and how often |sampled - exact| <= 2 stated std errors."""
    roles = {}
    all_err, covered, n_stated = [], 0, 0
    for role, ex in exact.curves.items():
        sa = sampled.curves[role]
        se = sampled.stats[role]["std_err"]
        pairs = [(e, s, u) for e, s, u in zip(ex, sa, se) if e is not None and s is not None]
        errs = [abs(s - e) / e if e else 0.0 for e, s, _ in pairs]
        stated = [(e, s, u) for e, s, u in pairs if u]  # values that were sampled (std_err > 0)
        cov = sum(1 for e, s, u in stated if abs(s - e) <= 2 * u)
        roles[role] = {
            "layers": len(pairs),
            "max_rel_err": max(errs) if errs else 0.0,
            "mean_rel_err": float(np.mean(errs)) if errs else 0.0,
            "r": pearson([p[0] for p in pairs], [p[1] for p in pairs]),
            "sampled_values": len(stated),
            "within_2se": cov,
            "median_rel_se": float(np.median([u / s for _, s, u in stated])) if stated else 0.0,
        }
        all_err += errs
        covered += cov
        n_stated += len(stated)
    rs = [v["r"] for v in roles.values() if not math.isnan(v["r"])]
    return {
        "roles": roles,
        "max_rel_err": max(all_err) if all_err else 0.0,
        "min_r": min(rs) if rs else float("nan"),
        "min_r_role": min((v["r"], k) for k, v in roles.items() if not math.isnan(v["r"]))[1] if rs else None,
        "sampled_values": n_stated,
        "within_2se": covered,
    }


def bench_model(hub: bl.HubProcess, label: str, repo: str, sha: str, local: Path, log=print) -> dict:
    lay = bl.layout_bytes(local)
    bl.warm([local] if local.is_file() else sorted(local.glob("*.safetensors")))  # timings without disk reads
    ins = inspect(f"{repo}@{sha}", Options(endpoint=hub.url, use_cache=False))
    ex = run_mode(hub, repo, sha, "exact")
    sa = run_mode(hub, repo, sha, "sampled")
    cmp = compare(ex["fp"], sa["fp"])
    allowed = EXACT_SLACK * (lay["attention_bytes"] + lay["header_bytes"])
    res = {
        "label": label,
        "repo": repo,
        **lay,
        "layers": ex["fp"].layers,
        "roles": list(ex["fp"].curves),
        "inspect_exact_bytes": ins.bytes_needed_exact,
        "inspect_sampled_bytes": ins.bytes_needed_sampled,
        "exact": {k: v for k, v in ex.items() if k != "fp"},
        "sampled": {k: v for k, v in sa.items() if k != "fp"},
        "exact_overhead": ex["bytes_read"] / (lay["attention_bytes"] + lay["header_bytes"]) - 1,
        "compare": cmp,
        "targets": {
            "exact_bytes": {"limit": allowed, "value": ex["bytes_read"], "pass": ex["bytes_read"] <= allowed},
            "sampled_bytes": {
                "limit": SAMPLED_LIMIT,
                "value": sa["bytes_read"],
                "pass": sa["bytes_read"] <= SAMPLED_LIMIT,
            },
            "sampled_honest": {
                "limit": COVERAGE_MIN,
                "value": cmp["within_2se"] / cmp["sampled_values"] if cmp["sampled_values"] else 1.0,
                "pass": not cmp["sampled_values"] or cmp["within_2se"] >= COVERAGE_MIN * cmp["sampled_values"],
            },
            "sampled_r": {
                "limit": R_MIN,
                "value": cmp["min_r"],
                # a role whose curve is flat or has < 3 layers has no r; it cannot fail the target
                "pass": math.isnan(cmp["min_r"]) or cmp["min_r"] >= R_MIN,
            },
        },
    }
    log(
        f"{label}: file {bl.mb(lay['file_bytes'])}, attention {bl.mb(lay['attention_bytes'])}, headers {bl.mb(lay['header_bytes'])}; "
        f"exact {bl.mb(ex['bytes_read'])} ({res['exact_overhead']:+.3%}, {ex['requests']} req, {ex['wall_s']:.1f} s); "
        f"sampled {bl.mb(sa['bytes_read'])} ({sa['requests']} req, {sa['wall_s']:.1f} s); "
        f"max σ err {cmp['max_rel_err']:.3%}, min r {cmp['min_r']:.4f}, within 2 SE {cmp['within_2se']}/{cmp['sampled_values']}"
    )
    if ex["bytes_served"] != ex["bytes_read"] or sa["bytes_served"] != sa["bytes_read"]:
        log(f"  note: the server counted {ex['bytes_served']} / {sa['bytes_served']} bytes served")
    res["_fp"] = (ex["fp"], sa["fp"])
    return res


def tool_plan(folder: Path, budget: int | None = None) -> tuple[dict, dict]:
    """The tool's own sampled plan (no tensor data read): row blocks per (role, layer) of q/k/v/o,
    and the budget in rows each of those tensors was given."""
    from fingerprint import stats
    from fingerprint.checkpoint import open_checkpoint
    from fingerprint.reference import parse_reference
    from fingerprint.roles import assign_roles

    ckpt = open_checkpoint(parse_reference(str(folder)), file_hash=lambda p: "not-hashed")
    try:
        rmap = assign_roles(ckpt.tensors, ckpt.config)
        plan = stats.make_plan(rmap, "sampled", sample_budget=budget)
        budget_rows = {}
        try:  # how many rows each tensor was budgeted (the planner's share), when the planner exposes it
            weights = [getattr(stats, "ROLE_SAMPLE_WEIGHT", {}).get(t.role, 1.0) for t in rmap.tensors]
            sizes = [t.tensor.nbytes for t in rmap.tensors]
            total = stats.SAMPLE_BUDGET if budget is None else budget
            try:
                shares = stats.water_fill(sizes, total, weights)
            except TypeError:
                shares = stats.water_fill(sizes, total)
            budget_rows = {(t.role, t.layer): b // max(t.tensor.row_bytes, 1) for t, b in zip(rmap.tensors, shares)}
        except Exception:
            budget_rows = {}
    finally:
        ckpt.close()
    out: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for job in plan.jobs:
        for p in job.spans:
            out.setdefault((p.item.role, p.item.layer), []).append((p.r0, p.r1))
    keep = ("q", "k", "v", "o")
    return (
        {k: sorted(v) for k, v in out.items() if k[0] in keep},
        {k: v for k, v in budget_rows.items() if k[0] in keep},
    )


def _jittered_blocks(rows: int, take: int, blocks: int, seed: int) -> list[tuple[int, int]]:
    """`blocks` strata, one block each at a pseudo-random offset, using all `take` rows
    (block sizes differ by at most one row)."""
    take = min(take, rows)
    blocks = max(1, min(blocks, take))
    base, extra = divmod(take, blocks)
    stride = rows / blocks
    rng = np.random.default_rng(seed)
    out = []
    for i in range(blocks):
        size = base + (1 if i < extra else 0)
        start = min(max(int(i * stride + rng.random() * max(stride - size, 0)), 0), rows - size)
        out.append((start, start + size))
    return out


def _head_spread_blocks(rows: int, take: int, blocks: int, head_dim: int, seed: int) -> list[tuple[int, int]]:
    """Like _jittered_blocks, but block i starts at in-head offset (i + u) x head_dim / blocks (u one random
    phase per tensor), so the blocks cover the positions inside a head (the RoPE frequencies) evenly."""
    take = min(take, rows)
    blocks = max(1, min(blocks, take))
    base, extra = divmod(take, blocks)
    stride = rows / blocks
    u = np.random.default_rng(seed).random()
    out = []
    for i in range(blocks):
        size = base + (1 if i < extra else 0)
        want = int((i + u) * head_dim / blocks) % head_dim
        lo = int(i * stride)
        start = lo - lo % head_dim + want
        if start < lo:
            start += head_dim
        if start + size > rows:
            start = max(0, start - head_dim * math.ceil((start + size - rows) / head_dim))
        start = min(max(start, 0), rows - size)
        out.append((start, start + size))
    return out


def _random_rows(rows: int, take: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(r), int(r) + 1) for r in np.sort(rng.choice(rows, size=min(take, rows), replace=False))]


def sampling_diagnosis(folder: Path, spec: bl.LlamaSpec, exact, sampled) -> dict:
    """Why sampled σ differs from exact on the generated model: replay sampling plans on the known row scales.

    Row i of a generated matrix has std s_i (benchlib.row_scales), so the σ of a set of rows is
    sqrt(mean s_i^2) up to the noise of the normal draws (~1/sqrt(2 x elements)). The error of a
    plan can therefore be predicted from its row blocks alone: for the tool's plan (checked
    against the measured error), with parts of the row structure switched off, for the tool's
    planner with larger budgets, and for other ways of spending the same bytes.
    """
    from fingerprint import stats

    roles = ("q", "k", "v", "o")
    rows_of = {
        "q": spec.heads * spec.head_dim,
        "k": spec.kv_heads * spec.head_dim,
        "v": spec.kv_heads * spec.head_dim,
        "o": spec.hidden,
    }
    row_bytes = spec.hidden * 2
    structures = {
        "as generated": bl.ROW_STRUCTURE,
        "without the within-head profile": {r: {**v, "pos": 0.0} for r, v in bl.ROW_STRUCTURE.items()},
        "independent rows only": {r: {"pos": 0.0, "head": 0.0, "row": v["row"]} for r, v in bl.ROW_STRUCTURE.items()},
    }
    scales = {
        (st, r, l): bl.row_scales(spec, r, l, rows_of[r], structures[st]) ** 2
        for st in structures
        for r in roles
        for l in range(spec.layers)
    }

    def evaluate(structure: str, plan_of) -> dict:
        per_role = {}
        for role in roles:
            pred, ex = [], []
            for layer in range(spec.layers):
                s2 = scales[(structure, role, layer)]
                sel = np.concatenate([np.arange(a, b) for a, b in plan_of(role, layer)])
                pred.append(math.sqrt(s2[sel].mean()))
                ex.append(math.sqrt(s2.mean()))
            err = [abs(p - e) / e for p, e in zip(pred, ex)]
            per_role[role] = {"max_rel_err": max(err), "r": pearson(ex, pred)}
        return {
            "max_rel_err": max(v["max_rel_err"] for v in per_role.values()),
            "min_r": min(v["r"] for v in per_role.values()),
            "roles": per_role,
        }

    blocks, budget_rows = tool_plan(folder)
    taken = {k: sum(b - a for a, b in v) for k, v in blocks.items()}
    out: dict = {
        "sample_budget": stats.SAMPLE_BUDGET,
        "per_role": {},
    }
    for r in roles:
        ks = [(r, l) for l in range(spec.layers)]
        same = sum(1 for k in ks if len(blocks[k]) > 1 and len({a % spec.head_dim for a, _ in blocks[k]}) == 1)
        out["per_role"][r] = {
            "blocks": sorted({len(blocks[k]) for k in ks}),
            "rows_taken": sorted({taken[k] for k in ks}),
            "rows_budgeted": sorted({budget_rows[k] for k in ks}) if budget_rows else None,
            "rows": rows_of[r],
            "same_offset_in_head": same,
        }
    out["layers"] = spec.layers
    out["planned_bytes_qkvo"] = sum(taken.values()) * row_bytes
    out["budgeted_bytes_qkvo"] = sum(budget_rows.values()) * row_bytes if budget_rows else None
    # 1) the model of the error: predicted from the plan vs measured
    pred = evaluate("as generated", lambda r, l: blocks[(r, l)])
    out["check"] = {
        r: {
            "predicted": pred["roles"][r]["max_rel_err"],
            "measured": max(abs(s - e) / e for s, e in zip(sampled.curves[r], exact.curves[r])),
        }
        for r in roles
    }
    # 2) which part of the row structure causes it (the tool's plan)
    out["structure"] = {name: evaluate(name, lambda r, l: blocks[(r, l)]) for name in structures}
    # 3) the tool's planner with larger budgets, and other ways of spending the same rows
    plans = {}
    seed = lambda r, l: l * 4 + "qkvo".index(r)  # noqa: E731
    for mult in (1, 4, 16):
        blk, brows = (blocks, budget_rows) if mult == 1 else tool_plan(folder, stats.SAMPLE_BUDGET * mult)
        take = {k: sum(b - a for a, b in v) for k, v in blk.items()}
        nblk = max(len(v) for v in blk.values())
        tag = f"budget {mult}x" if mult > 1 else "budget as shipped"
        plans[f"tool's planner, {tag}"] = {
            "bytes": sum(take.values()) * row_bytes,
            "requests_per_tensor": nblk,
            **evaluate("as generated", lambda r, l, blk=blk: blk[(r, l)]),
        }
        if brows:
            plans[f"{nblk} jittered blocks using every budgeted row, {tag}"] = {
                "bytes": sum(min(v, rows_of[k[0]]) for k, v in brows.items()) * row_bytes,
                "requests_per_tensor": nblk,
                **evaluate(
                    "as generated",
                    lambda r, l, brows=brows, nblk=nblk: _jittered_blocks(rows_of[r], brows[(r, l)], nblk, seed(r, l)),
                ),
            }
            plans[f"{nblk} blocks spread over the positions in a head, every budgeted row, {tag}"] = {
                "bytes": sum(min(v, rows_of[k[0]]) for k, v in brows.items()) * row_bytes,
                "requests_per_tensor": nblk,
                **evaluate(
                    "as generated",
                    lambda r, l, brows=brows, nblk=nblk: _head_spread_blocks(
                        rows_of[r], brows[(r, l)], nblk, spec.head_dim, seed(r, l)
                    ),
                ),
            }
        plans[f"independent random rows, same rows as the tool, {tag}"] = {
            "bytes": sum(take.values()) * row_bytes,
            "requests_per_tensor": f"up to {max(take.values())}",
            **evaluate("as generated", lambda r, l, take=take: _random_rows(rows_of[r], take[(r, l)], seed(r, l))),
        }
    out["plans"] = plans
    return out


def core_facts() -> dict:
    """Constants of the core the findings refer to, as they are in the code that was measured."""
    from fingerprint import stats
    from fingerprint.formats import gguf as gguf_format

    first_chunk = getattr(gguf_format, "FIRST_CHUNK", None)
    return {
        "SAMPLE_BUDGET": getattr(stats, "SAMPLE_BUDGET", None),
        "SAMPLE_BLOCKS": getattr(stats, "SAMPLE_BLOCKS", None),
        "ROLE_SAMPLE_WEIGHT": getattr(stats, "ROLE_SAMPLE_WEIGHT", None),
        "gguf_first_chunk": first_chunk if isinstance(first_chunk, int) else None,
        "options_default_store_is_none": Options().store is None,
    }


def calibration() -> dict:
    """Row structure of the real trained fixtures: sd of log row-RMS split into within-head position,
    head and residual parts (the residual with the noise of a finite row, 1/sqrt(2 cols), taken out)."""
    from safetensors.numpy import load_file

    out = {}
    for name in ("stories260k", "babyllama-tok361", "babyllama-tok105"):
        sd = load_file(str(bl.FIXTURES / name / "model.safetensors"))
        import json as _json

        cfg = _json.loads((bl.FIXTURES / name / "config.json").read_text())
        hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        layers = cfg["num_hidden_layers"]
        noise = 1 / math.sqrt(2 * cfg["hidden_size"])
        roles = {}
        for r, tn in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("o", "o_proj")):
            parts = []
            for i in range(layers):
                w = sd[f"model.layers.{i}.self_attn.{tn}.weight"].astype(np.float64)
                lr = np.log(np.sqrt((w**2).mean(1)))
                if r == "o":
                    parts.append((0.0, 0.0, math.sqrt(max(lr.var() - noise**2, 0.0))))
                    continue
                L = lr.reshape(-1, hd)
                L = L - L.mean()
                pos, head = L.mean(0), L.mean(1)
                res = L - pos[None, :] - head[:, None]
                parts.append((pos.std(), head.std(), math.sqrt(max(res.var() - noise**2, 0.0))))
            m = np.mean(parts, axis=0)
            roles[r] = {"pos": float(m[0]), "head": float(m[1]), "row": float(m[2])}
        out[name] = {"hidden": cfg["hidden_size"], "head_dim": hd, "roles": roles}
    return out


def thread_check(hub: bl.HubProcess, repo: str, sha: str) -> dict:
    """Sampled plan run with 2 worker threads instead of the Hub default (8), same process, same plan."""
    from fingerprint.checkpoint import open_checkpoint
    from fingerprint.reference import parse_reference
    from fingerprint.roles import assign_roles
    from fingerprint.stats import compute_stats, make_plan

    ckpt = open_checkpoint(parse_reference(f"{repo}@{sha}"), endpoint=hub.url)
    try:
        rmap = assign_roles(ckpt.tensors, ckpt.config)
        plan = make_plan(rmap, "sampled")
        out = {"jobs": len(plan.jobs), "default_threads": max(j.source.max_parallel for j in plan.jobs)}
        for par in (2, out["default_threads"]):
            t0 = time.perf_counter()
            compute_stats(rmap, plan, parallel=par)
            out[f"stats_s_{par}_threads"] = time.perf_counter() - t0
        # the alternative: the same fetches on 8 threads, the moments computed in this one thread
        from concurrent.futures import ThreadPoolExecutor

        from fingerprint.stats import span_moments

        t0 = time.perf_counter()
        with ThreadPoolExecutor(out["default_threads"]) as pool:
            for job, raw in zip(plan.jobs, pool.map(lambda j: j.source.read(j.offset, j.length), plan.jobs)):
                for p in job.spans:
                    start = p.offset - job.offset
                    span_moments(p, raw[start : start + p.length], None)
        out["fetch_threads_compute_main_s"] = time.perf_counter() - t0
    finally:
        ckpt.close()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fixtures only (no multi-GB model)")
    args = ap.parse_args(argv)

    models: list[tuple] = []  # (label, repo, files, local path, lfs sha256s, generator spec)
    if not args.quick:
        folder, manifest = bl.ensure_model(BIG)
        files = bl.repo_files(folder)
        lfs = {n: f["sha256"] for n, f in manifest["files"].items()}
        models.append((f"generated {BIG.name} (bf16, {len(lfs)} shards)", f"bench/{BIG.name}", files, folder, lfs, BIG))
    for name in ("stories260k", "babyllama-tok361", "babyllama-tok105"):
        d = bl.FIXTURES / name
        models.append((f"fixture {name} (fp32)", f"fixtures/{name}", bl.repo_files(d), d, None, None))
    if not args.quick:
        gpath, _gman = bl.ensure_gguf(GGUF)
        models.append(
            (
                f"generated {gpath.name} (Q8_0, 8.3 MB header)",
                f"bench/{GGUF.name}",
                {gpath.name: gpath},
                gpath,
                None,
                None,
            )
        )
    g = bl.FIXTURES / "stories260k-q8_0.gguf"
    models.append(
        ("fixture stories260k-q8_0.gguf (GGUF Q8_0)", "fixtures/stories260k-q8_0-gguf", {g.name: g}, g, None, None)
    )

    results = []
    hub = bl.HubProcess()
    try:
        for label, repo, files, local, lfs, spec in models:
            sha = hub.add_repo(repo, files, lfs)
            res = bench_model(hub, label, repo, sha, local)
            ex_fp, sa_fp = res.pop("_fp")
            if spec is not None:
                # diagnostics use the core's planner internals: if those change, report and go on
                t0 = time.perf_counter()
                try:
                    res["diagnosis"] = sampling_diagnosis(local, spec, ex_fp, sa_fp)
                    print(
                        f"  sampling diagnosis ({time.perf_counter() - t0:.1f} s): "
                        + ", ".join(
                            f"{k}: max err {v['max_rel_err']:.2%}" for k, v in res["diagnosis"]["plans"].items()
                        )
                    )
                except Exception as exc:
                    print(f"  sampling diagnosis skipped: {type(exc).__name__}: {exc}")
                try:
                    res["threads"] = thread_check(hub, repo, sha)
                    print(f"  sampled statistics, threads: {res['threads']}")
                except Exception as exc:
                    print(f"  thread check skipped: {type(exc).__name__}: {exc}")
            results.append(res)
    finally:
        hub.stop()
    payload = {
        "benchmark": "bytes",
        "machine": bl.machine(),
        "models": results,
        "calibration": calibration(),
        "row_structure": bl.ROW_STRUCTURE,
        "core": core_facts(),
    }
    path = bl.save_result("bytes", payload)
    print(f"wrote {path}")
    return payload


if __name__ == "__main__":
    main()

"""Bytes read for a PyTorch .bin repo (torch.save's zip, read without unpickling), against the attention floor.

Model: a generated Llama-shaped checkpoint (8 layers, hidden 1024, 16/4 heads, MLP 2816, vocabulary 32000, f16)
in transformers' sharded pickle layout: pytorch_model-0000{1,2}-of-00002.bin + pytorch_model.bin.index.json +
config.json, each shard written in torch.save's exact layout by tests/layouts/torch_files.py (its data.pkl is
byte for byte torch's). Served by the local Hub server (benchmarks/hub_process.py); exact mode through the
public API, compute("org/name@<sha>").

Floor: the attention tensors (q, k, v, o, attention norms) a σ-curve reads. The rest of what is read is each
shard's zip tail (end record and central directory, one 64 KiB read that is kept and reused when it also holds
weights) and one window around data.pkl. Target: bytes read <= 1.02 x (attention + zip tails + data.pkl windows),
the same allowance as the safetensors rows (attention + headers).

Usage: python benchmarks/bytes_bin.py   (writes benchmarks/data/results/bytes_bin.json)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl

bl.hub_env()

import numpy as np  # noqa: E402
from layouts.torch_files import write_torch_dir  # noqa: E402

from fingerprint import Options, compute  # noqa: E402
from fingerprint.fingerprinting import open_model  # noqa: E402

NAME = "llama-8L-h1024-f16-bin"
LAYERS, HIDDEN, HEADS, KV_HEADS, INTER, VOCAB = 8, 1024, 16, 4, 2816, 32000
SLACK = 1.02
ATTENTION = (".self_attn.", ".input_layernorm.")


def state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    kv = HIDDEN // HEADS * KV_HEADS

    def mat(rows: int, cols: int, sigma: float) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * sigma).astype(np.float16)

    sd = {"model.embed_tokens.weight": mat(VOCAB, HIDDEN, 0.02)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        s = 0.02 * (1 + i / LAYERS)
        sd[p + "self_attn.q_proj.weight"] = mat(HIDDEN, HIDDEN, s)
        sd[p + "self_attn.k_proj.weight"] = mat(kv, HIDDEN, s)
        sd[p + "self_attn.v_proj.weight"] = mat(kv, HIDDEN, s)
        sd[p + "self_attn.o_proj.weight"] = mat(HIDDEN, HIDDEN, s)
        sd[p + "mlp.gate_proj.weight"] = mat(INTER, HIDDEN, s)
        sd[p + "mlp.up_proj.weight"] = mat(INTER, HIDDEN, s)
        sd[p + "mlp.down_proj.weight"] = mat(HIDDEN, INTER, s)
        sd[p + "input_layernorm.weight"] = (1 + rng.standard_normal(HIDDEN) * 0.01).astype(np.float16)
        sd[p + "post_attention_layernorm.weight"] = (1 + rng.standard_normal(HIDDEN) * 0.01).astype(np.float16)
    sd["model.norm.weight"] = np.ones(HIDDEN, np.float16)
    sd["lm_head.weight"] = mat(VOCAB, HIDDEN, 0.02)
    return sd


def config() -> dict:
    return bl.hf_llama_config(LAYERS, HIDDEN, HEADS, KV_HEADS, INTER, VOCAB)


def ensure_model() -> Path:
    folder = bl.DATA / NAME
    if not (folder / "pytorch_model.bin.index.json").is_file():
        print(f"writing {folder} ...", flush=True)
        write_torch_dir(state(), folder, config(), shards=2)
    return folder


def main() -> int:
    folder = ensure_model()
    files = bl.repo_files(folder)
    size = sum(p.stat().st_size for n, p in files.items() if n.endswith(".bin"))
    ckpt = open_model(str(folder), Options(use_cache=False))
    try:
        attention = sum(t.nbytes for n, t in ckpt.tensors.items() if any(a in n for a in ATTENTION))
        headers = ckpt.header_bytes  # the zip tails and data.pkl windows of every shard
        n_files = len(ckpt.files)
    finally:
        ckpt.close()
    hub = bl.HubProcess()
    try:
        sha = hub.add_repo("bench/llama-bin", files)
        hub.reset()
        t0 = time.perf_counter()
        out = compute(f"bench/llama-bin@{sha}", Options(mode="exact", endpoint=hub.url, use_cache=False))
        wall = time.perf_counter() - t0
        if out.error is not None:
            raise SystemExit(f"bench/llama-bin failed: {out.error!r}")
        stats = hub.stats("bench/llama-bin")
    finally:
        hub.stop()
    fp = out.fingerprint
    reqs = stats["requests"]
    result = {
        "machine": bl.machine(),
        "model": {"name": NAME, "files": n_files, "size": size, "format": fp.format},
        "attention_bytes": attention,
        "header_bytes": headers,
        "bytes_read": fp.bytes_read,
        "bytes_served": stats["bytes_served"],
        "requests": len(reqs),
        "range_requests": sum(1 for r in reqs if r[2] is not None),
        "wall_s": wall,
        "limit": int(SLACK * (attention + headers)),
    }
    result["pass"] = result["bytes_read"] <= result["limit"]
    bl.save_result("bytes_bin", result)
    print(f"{NAME}: read {bl.mb(fp.bytes_read)} of {bl.mb(size)} (attention {bl.mb(attention)}, headers {headers:,} B)")
    return 0


def target_rows(r: dict) -> list[tuple[str, str, str, bool]]:
    m = r["model"]
    return [
        (
            f".bin repo: generated {m['name']} (f16, {m['files']} shards, pickle read without unpickling)",
            "exact: bytes read <= 1.02 x (attention + zip directories + data.pkl)",
            f"{r['bytes_read'] / 1e6:.1f} MB of {r['limit'] / 1e6:.1f} MB allowed",
            r["pass"],
        )
    ]


def render(r: dict) -> list[str]:
    """The BENCHMARKS.md section (used by run_all.py)."""
    m = r["model"]
    return [
        "## 6. Bytes read for a PyTorch .bin repo (`benchmarks/bytes_bin.py`)",
        "",
        f"A generated Llama-shaped checkpoint ({LAYERS} layers, hidden {HIDDEN}, {HEADS}/{KV_HEADS} heads, vocabulary",
        f"{VOCAB:,}, f16) saved as transformers saves a pickle checkpoint: {m['files']} `.bin` shards in torch.save's",
        "zip layout and `pytorch_model.bin.index.json`, served by the local Hub server. Exact mode. The floor is the",
        "attention tensors a σ-curve needs; the rest is each shard's zip tail (one 64 KiB read: end record and central",
        "directory) and one window around `data.pkl` (read by the restricted unpickler, which runs nothing).",
        "",
        "| model | size | attention (floor) | zip tails + data.pkl | bytes read | read / floor | requests | time |",
        "|---|---|---|---|---|---|---|---|",
        f"| {m['name']} | {r['model']['size'] / 1e6:.1f} MB | {r['attention_bytes'] / 1e6:.2f} MB | "
        f"{r['header_bytes'] / 1e3:.1f} kB | {r['bytes_read'] / 1e6:.2f} MB | "
        f"{r['bytes_read'] / r['attention_bytes']:.3f} | {r['requests']} ({r['range_requests']} Range) | "
        f"{r['wall_s']:.2f} s |",
        "",
    ]


if __name__ == "__main__":
    sys.exit(main())

"""The generated models the "cost of a verdict" benchmark reads: 135M-, 1.1B- and 7B-shaped Llamas, two seeds each."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib as bl

SIZES = {
    # SmolLM2-135M's shape (its head is tied on the Hub; here it is a tensor of its own)
    "135M": dict(hidden=576, layers=30, heads=9, kv_heads=3, intermediate=1536, vocab=49152),
    # TinyLlama-1.1B's shape
    "1.1B": dict(hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632, vocab=32000),
    # Llama-2-7B's shape, in 5 GB shards
    "7B": dict(
        hidden=4096, layers=32, heads=32, kv_heads=32, intermediate=11008, vocab=32000, max_shard_bytes=5_000_000_000
    ),
}


def spec(size: str, seed: int) -> bl.LlamaSpec:
    return bl.LlamaSpec(f"cost-{size}-s{seed}", seed=100 + seed, **SIZES[size])


def ensure_all(sizes=tuple(SIZES), log=print) -> dict[tuple[str, int], Path]:
    return {(size, seed): bl.ensure_model(spec(size, seed), log)[0] for size in sizes for seed in (0, 1)}


if __name__ == "__main__":
    ensure_all(tuple(sys.argv[1:]) or tuple(SIZES))

"""A whole lineage verdict between two 7B-shaped bf16 models: bytes, requests, peak memory, probe files.

    python benchmarks/probe_7b.py

The models are sparse files: the safetensors header of a Llama-2-7B layout (32 layers, hidden 4096,
MLP 11008, vocab 32000, bf16, 13.5 GB), config.json and a tokenizer.json of 32000 tokens. Random
bf16 values are written only where a probe reads (found by reading once and recording the ranges);
the rest of each file is a hole of zeros, so a model costs about 100 MB of disk. The second model
is the first plus noise (a fine-tune). The verdict runs in its own process (peak RSS), with a probe
cache, so the probe files on disk can be weighed against the bytes read.

Run by the lineage benchmark (its figures go to BENCHMARKS.md section 3); alone it prints them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib as bl

LAYERS, HIDDEN, INTER, VOCAB, HEADS = 32, 4096, 11008, 32000, 32

VERDICT_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from fingerprint.fingerprinting import Options
from fingerprint.lineage import evidence
from fingerprint.store import Store
a, b, cache = sys.argv[1:4]
t = time.perf_counter()
v = evidence.verdict(a, b, Options(store=Store(Path(cache) / "fingerprints.sqlite")))
print(json.dumps({"verdict": v.verdict, "related": v.related, "reads": v.reads, "seconds": time.perf_counter() - t,
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "signals": {n: s.value for n, s in v.signals.items()}}))
"""


def _tensors() -> list[tuple[str, tuple[int, ...]]]:
    out = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (HIDDEN,)), (p + "post_attention_layernorm.weight", (HIDDEN,))]
        out += [(p + f"self_attn.{n}_proj.weight", (HIDDEN, HIDDEN)) for n in "qkvo"]
        out += [
            (p + "mlp.gate_proj.weight", (INTER, HIDDEN)),
            (p + "mlp.up_proj.weight", (INTER, HIDDEN)),
            (p + "mlp.down_proj.weight", (HIDDEN, INTER)),
        ]
    return [*out, ("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]


def write_sparse_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    header, offset = {}, 0
    for name, shape in _tensors():
        n = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path = folder / "model.safetensors"
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        f.truncate(8 + len(raw) + offset)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_size": HIDDEN,
                "intermediate_size": INTER,
                "num_hidden_layers": LAYERS,
                "num_attention_heads": HEADS,
                "num_key_value_heads": HEADS,
                "vocab_size": VOCAB,
                "torch_dtype": "bfloat16",
            }
        )
    )
    vocab = {f"w{i}": i for i in range(VOCAB)}
    (folder / "tokenizer.json").write_text(
        json.dumps({"model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w0"}})
    )
    return path


def ranges_read(folder: Path) -> list[tuple[int, int]]:
    """(offset, length) of every data read a probe of this model makes."""
    from fingerprint.fingerprinting import Options, open_model
    from fingerprint.lineage.reading import build_probe
    from fingerprint.sources import local

    seen: list[tuple[int, int]] = []
    fetch = local.LocalFile.fetch

    def recording(self, offset, length):
        if self.name.endswith(".safetensors"):
            seen.append((offset, length))
        return fetch(self, offset, length)

    local.LocalFile.fetch = recording
    try:
        ckpt = open_model(str(folder), Options(use_cache=False))
        start = len(seen)
        build_probe(ckpt, str(folder))
        ckpt.close()
    finally:
        local.LocalFile.fetch = fetch
    return seen[start:]


def fill(path: Path, ranges: list[tuple[int, int]], seed: int, base: Path | None = None) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "r+b") as f:
        src = open(base, "rb") if base else None
        for offset, length in ranges:
            if src is not None:
                src.seek(offset)
                x = (np.frombuffer(src.read(length), "<u2").astype(np.uint32) << 16).view(np.float32)
                x = x + 0.002 * rng.standard_normal(x.size, dtype=np.float32)
            else:
                x = 0.02 * rng.standard_normal(length // 2, dtype=np.float32)
                if x.size == HIDDEN:
                    x += 1.0  # a norm vector (a single matrix row is never read alone here)
            f.seek(offset)
            f.write((x.view(np.uint32) >> 16).astype("<u2").tobytes())
        if src is not None:
            src.close()


def measure() -> dict:
    root = bl.DATA / "probe-7b"
    a, b = root / "llama-7b-a", root / "llama-7b-b"
    if not (a / "model.safetensors").exists():
        ranges = None
        for folder in (a, b):
            path = write_sparse_model(folder)
            ranges = ranges or ranges_read(folder)
            fill(path, ranges, seed=1 if folder == a else 2, base=None if folder == a else a / "model.safetensors")
    cache = root / "cache"
    for old in cache.glob("probes/*.npz"):
        old.unlink()
    proc = subprocess.run(
        [sys.executable, "-c", VERDICT_SCRIPT, str(a), str(b), str(cache)], capture_output=True, text=True, cwd=bl.ROOT
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["probe_files"] = sorted(p.stat().st_size for p in cache.glob("probes/*.npz"))
    out["model_bytes"] = (a / "model.safetensors").stat().st_size
    return out


def main() -> int:
    out = measure()
    print(json.dumps({k: v for k, v in out.items() if k != "signals"}, indent=1))
    print(out["signals"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

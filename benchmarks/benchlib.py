"""Shared helpers for the benchmarks: generated Llama-like checkpoints, header arithmetic, machine facts.

The generated models are written streaming, tensor by tensor and row block by row block, so
memory stays at a few tens of MB whatever their size. They live in benchmarks/data/ (git-ignored)
and are reused while their manifest matches the spec and generator version.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "data"
RESULTS = DATA / "results"
FIXTURES = ROOT / "fingerprint" / "demo_models"  # the real trained models: the demo models, which the tests use too

GENERATOR_VERSION = 1

# ----------------------------------------------------------------------------- generated checkpoints


@dataclass(frozen=True)
class LlamaSpec:
    """A Llama-shaped checkpoint in the real Hugging Face layout (bf16, sharded like transformers does)."""

    name: str
    hidden: int = 2048
    layers: int = 32
    heads: int = 16
    kv_heads: int = 8
    intermediate: int = 5632
    vocab: int = 32000
    max_shard_bytes: int = 2_000_000_000  # transformers' "2GB" (decimal), as older checkpoints used
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) in module order, the order transformers shards a state dict in."""
        h, hd, i = self.hidden, self.head_dim, self.intermediate
        out = [("model.embed_tokens.weight", (self.vocab, h))]
        for l in range(self.layers):
            p = f"model.layers.{l}."
            out += [
                (p + "self_attn.q_proj.weight", (self.heads * hd, h)),
                (p + "self_attn.k_proj.weight", (self.kv_heads * hd, h)),
                (p + "self_attn.v_proj.weight", (self.kv_heads * hd, h)),
                (p + "self_attn.o_proj.weight", (h, self.heads * hd)),
                (p + "mlp.gate_proj.weight", (i, h)),
                (p + "mlp.up_proj.weight", (i, h)),
                (p + "mlp.down_proj.weight", (h, i)),
                (p + "input_layernorm.weight", (h,)),
                (p + "post_attention_layernorm.weight", (h,)),
            ]
        out += [("model.norm.weight", (h,)), ("lm_head.weight", (self.vocab, h))]
        return out

    def config(self) -> dict:
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden,
            "intermediate_size": self.intermediate,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-05,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "hidden_act": "silu",
        }


# Per-layer σ of each attention role: smooth in the layer index x in [0, 1], so a σ-curve has a shape.
def base_sigma(role: str, x: float) -> float:
    if role == "q":
        return 0.024 * (1.0 + 0.45 * math.sin(math.pi * x) - 0.2 * x)
    if role == "k":
        return 0.030 * (0.75 + 0.55 * x) * (1.0 + 0.12 * math.cos(3.0 * math.pi * x))
    if role == "v":
        return 0.011 * (0.7 + 0.6 * x + 0.15 * math.sin(2.0 * math.pi * x))
    if role == "o":
        return 0.009 * (0.6 + 0.9 * x**1.5)
    raise KeyError(role)


# Row-scale heterogeneity (standard deviations of log row-RMS), calibrated on the real trained
# fixtures in fingerprint/demo_models (see BENCHMARKS.md, "How the generated model is made"):
#   pos  - a profile over the position inside a head, shared by all heads (RoPE frequency bands:
#          in HF rotate-half order rows j and j + head_dim/2 share a frequency)
#   head - one factor per head
#   row  - independent per row
ROW_STRUCTURE = {
    "q": {"pos": 0.15, "head": 0.08, "row": 0.18},
    "k": {"pos": 0.12, "head": 0.04, "row": 0.18},
    "v": {"pos": 0.02, "head": 0.03, "row": 0.03},
    "o": {"pos": 0.0, "head": 0.0, "row": 0.05},
}

_ROLE_OF = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o"}
_LAYER_RX = re.compile(
    r"^model\.layers\.(\d+)\.(?:self_attn\.(q_proj|k_proj|v_proj|o_proj)|(input_layernorm))\.weight$"
)


def row_scales(spec: LlamaSpec, role: str, layer: int, rows: int, structure: dict | None = None) -> np.ndarray:
    """Per-row std of one attention matrix (float64), whose mean square is base_sigma(role, layer)^2."""
    st = (structure or ROW_STRUCTURE)[role]
    rng = np.random.default_rng([spec.seed, layer, "qkvo".index(role), 7])
    hd = spec.head_dim
    log_s = np.zeros(rows)
    if st["pos"] and rows % hd == 0:
        half = hd // 2
        u = (np.arange(hd) % half) / max(half - 1, 1)
        phi = rng.uniform(0.0, 2.0)
        prof = np.sin(math.pi * (1.2 * u + phi))
        prof = (prof - prof.mean()) / (prof.std() or 1.0)
        log_s += st["pos"] * np.tile(prof, rows // hd)
    else:
        rng.uniform(0.0, 2.0)
    if st["head"] and rows % hd == 0:
        log_s += st["head"] * np.repeat(rng.standard_normal(rows // hd), hd)
    else:
        rng.standard_normal(max(rows // hd, 1))
    log_s += st["row"] * rng.standard_normal(rows)
    s = np.exp(log_s)
    x = layer / max(spec.layers - 1, 1)
    return s * (base_sigma(role, x) / math.sqrt(np.mean(s * s)))


def _norm_params(layer: int, layers: int) -> tuple[float, float]:
    x = layer / max(layers - 1, 1)
    return 0.08 + 0.45 * x, 0.015 * (1.0 + 1.5 * x**2)  # mean, std of input_layernorm weights


def _bf16(x: np.ndarray) -> bytes:
    import ml_dtypes

    return x.astype(ml_dtypes.bfloat16).tobytes()


def shard_plan(spec: LlamaSpec) -> list[list[tuple[str, tuple[int, ...]]]]:
    """transformers' rule: fill shards in module order, start a new one when the next tensor would overflow."""
    shards: list[list] = [[]]
    size = 0
    for name, shape in spec.tensors():
        nb = math.prod(shape) * 2
        if shards[-1] and size + nb > spec.max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += nb
    return shards


def _write_tensor(f, h, spec: LlamaSpec, index: int, name: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng([spec.seed, index])
    m = _LAYER_RX.match(name)
    rows = shape[0] if len(shape) > 1 else 1
    cols = shape[-1]
    if len(shape) == 1:
        if m and m.group(3):
            mean, sd = _norm_params(int(m.group(1)), spec.layers)
        else:
            mean, sd = 1.0, 0.05
        data = _bf16((mean + sd * rng.standard_normal(cols)).astype(np.float32))
        f.write(data)
        h.update(data)
        return
    if m and m.group(2):
        scales = row_scales(spec, _ROLE_OF[m.group(2)], int(m.group(1)), rows).astype(np.float32)
    else:
        scales = None  # MLP, embeddings, lm_head: plain N(0, 0.02)
    step = max(1, (8 << 20) // cols)
    buf = np.empty((step, cols), dtype=np.float32)
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        z = buf[: r1 - r0]
        rng.standard_normal(dtype=np.float32, out=z)
        if scales is not None:
            z *= scales[r0:r1, None]
        else:
            z *= np.float32(0.02)
        data = _bf16(z)
        f.write(data)
        h.update(data)


def _write_shard(path: Path, spec: LlamaSpec, items: list[tuple[int, str, tuple[int, ...]]]) -> tuple[int, str]:
    # safetensors (the library) sorts a file's tensors by dtype, then by name: do the same
    items = sorted(items, key=lambda t: t[1])
    header: dict = {"__metadata__": {"format": "pt"}}
    off = 0
    for _, name, shape in items:
        nb = math.prod(shape) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nb]}
        off += nb
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        head = struct.pack("<Q", len(raw)) + raw
        f.write(head)
        h.update(head)
        for index, name, shape in items:
            _write_tensor(f, h, spec, index, name, shape)
    return path.stat().st_size, h.hexdigest()


def ensure_model(spec: LlamaSpec, log=print) -> tuple[Path, dict]:
    """Return (folder, manifest), generating the checkpoint unless a matching one is already there."""
    folder = DATA / spec.name
    want = {"generator_version": GENERATOR_VERSION, "spec": asdict(spec), "row_structure": ROW_STRUCTURE}
    mf = folder / "manifest.json"
    if mf.is_file():
        try:
            manifest = json.loads(mf.read_text())
            same = all(manifest.get(k) == v for k, v in want.items())
            files_ok = all(
                (folder / n).is_file() and (folder / n).stat().st_size == f["size"]
                for n, f in manifest["files"].items()
            )
            if same and files_ok:
                return folder, manifest
        except (ValueError, KeyError, OSError):
            pass
    shards = shard_plan(spec)
    total = sum(math.prod(s) * 2 for _, s in spec.tensors())
    need = total * 1.05 + (1 << 30)
    free = shutil.disk_usage(DATA if DATA.exists() else BENCH).free
    if free < need:
        raise SystemExit(f"not enough disk for {spec.name}: need {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free")
    log(f"generating {spec.name} ({total / 1e9:.2f} GB, {len(shards)} shard(s)) in {folder} ...")
    t0 = time.perf_counter()
    tmp = DATA / (spec.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    index_of = {name: i for i, (name, _) in enumerate(spec.tensors())}
    files: dict[str, dict] = {}
    weight_map: dict[str, str] = {}
    n = len(shards)
    for k, shard in enumerate(shards, 1):
        fname = "model.safetensors" if n == 1 else f"model-{k:05d}-of-{n:05d}.safetensors"
        size, sha = _write_shard(tmp / fname, spec, [(index_of[nm], nm, sh) for nm, sh in shard])
        files[fname] = {"size": size, "sha256": sha}
        for nm, _ in shard:
            weight_map[nm] = fname
        log(f"  {fname}: {size / 1e9:.2f} GB")
    (tmp / "config.json").write_text(json.dumps(spec.config(), indent=2) + "\n")
    if n > 1:
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    manifest = {**want, "files": files, "generation_seconds": round(time.perf_counter() - t0, 1)}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log(f"  done in {manifest['generation_seconds']} s")
    return folder, manifest


def repo_files(folder: Path) -> dict[str, Path]:
    """What a Hub repo of this folder holds (everything but our manifest)."""
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "manifest.json"}


# ----------------------------------------------------------------------------- header arithmetic (independent of the tool)

ATTN_ST = re.compile(
    r"(^|\.)layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|o_proj|q_norm|k_norm)\.(weight|bias)|input_layernorm\.weight)$"
)
ATTN_GGUF = re.compile(r"^blk\.\d+\.attn_(q|k|v|output|norm|q_norm|k_norm)\.(weight|bias)$")


def safetensors_header(path: Path) -> tuple[int, dict]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return 8 + n, header


def layout_bytes(folder_or_file: Path) -> dict:
    """File size, attention tensor bytes and header bytes, computed from the headers directly.

    headers = safetensors headers (8-byte length + JSON) + config.json + index json; for GGUF the
    header up to the aligned start of the tensor data.
    """
    p = Path(folder_or_file)
    if p.suffix == ".gguf":
        from gguf import GGUFReader

        r = GGUFReader(str(p))
        attn = sum(int(t.n_bytes) for t in r.tensors if ATTN_GGUF.match(t.name))
        n_attn = sum(1 for t in r.tensors if ATTN_GGUF.match(t.name))
        return {
            "file_bytes": p.stat().st_size,
            "attention_bytes": attn,
            "attention_tensors": n_attn,
            "header_bytes": int(r.data_offset),
        }
    shards = sorted(q for q in p.glob("*.safetensors"))
    file_bytes = header_bytes = attn = n_attn = 0
    for s in shards:
        hb, header = safetensors_header(s)
        header_bytes += hb
        file_bytes += s.stat().st_size
        for name, v in header.items():
            if ATTN_ST.search(name):
                attn += v["data_offsets"][1] - v["data_offsets"][0]
                n_attn += 1
    for small in ("config.json", "model.safetensors.index.json"):
        if (p / small).is_file():
            header_bytes += (p / small).stat().st_size
    return {
        "file_bytes": file_bytes,
        "attention_bytes": attn,
        "attention_tensors": n_attn,
        "header_bytes": header_bytes,
    }


# ----------------------------------------------------------------------------- machine, results


def hf_llama_config(
    layers: int, hidden: int, heads: int, kv_heads: int, inter: int, vocab: int, **extra: object
) -> dict:
    """A Hugging Face config.json of a Llama of these dimensions (fp16), plus ``extra`` keys."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "num_hidden_layers": layers,
        "vocab_size": vocab,
        "torch_dtype": "float16",
        **extra,
    }


def machine() -> dict:
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import huggingface_hub
    import safetensors

    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "huggingface_hub": huggingface_hub.__version__,
        "git": _git_rev(),
    }


def _git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "fingerprint"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        return rev + (" (fingerprint/ modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return path


def hub_env() -> None:
    """Never send a real token to the local server, never phone home."""
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
    os.environ.pop("HF_TOKEN", None)
    os.environ.setdefault("HF_HOME", str(DATA / "hf_home"))
    sys.path.insert(0, str(ROOT / "tests"))


def warm(files: list[Path]) -> None:
    """Read files through once so that they sit in the page cache."""
    buf = bytearray(16 << 20)
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n / 1e3:,.1f} kB"


# ----------------------------------------------------------------------------- a generated GGUF with a real-sized header

GGUF_GENERATOR_VERSION = 2


def _q8_0(x: np.ndarray) -> bytes:
    """GGML Q8_0: blocks of 32 values -> f16 scale (max|x| / 127) + 32 int8."""
    blocks = x.reshape(-1, 32).astype(np.float32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / 127.0
    q = np.round(blocks / np.where(d == 0, 1.0, d)).clip(-127, 127).astype(np.int8)
    out = np.empty((blocks.shape[0], 34), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def _llamacpp_permute(v: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute on a per-row vector (HF rotate-half -> Meta interleaved order)."""
    return v.reshape(n_head, 2, v.shape[0] // n_head // 2).swapaxes(1, 2).reshape(v.shape)


def _fake_vocab(n_tokens: int, n_merges: int, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic BPE-looking tokens and merges with the sizes of Llama 3's tokenizer (lengths ~ real ones)."""
    rng = np.random.default_rng([seed, 99])
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    lens = np.clip(rng.poisson(5.5, n_tokens), 1, 24)
    chars = alphabet[rng.integers(0, len(alphabet), int(lens.sum()))]
    tokens, pos = [], 0
    for i, n in enumerate(lens):
        tokens.append(("Ġ" if i % 3 == 0 else "") + "".join(chars[pos : pos + n]))
        pos += n
    a = rng.integers(0, n_tokens, n_merges)
    b = rng.integers(0, n_tokens, n_merges)
    merges = [f"{tokens[i]} {tokens[j]}" for i, j in zip(a, b)]
    return tokens, merges


def gguf_tensors(spec: LlamaSpec) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape, type) in the order llama.cpp's converter writes a Llama (as in the stories260k fixture)."""
    h, hd, i = spec.hidden, spec.head_dim, spec.intermediate
    out = [("token_embd.weight", (spec.vocab, h), "Q8_0"), ("output_norm.weight", (h,), "F32")]
    for l in range(spec.layers):
        p = f"blk.{l}."
        out += [
            (p + "attn_norm.weight", (h,), "F32"),
            (p + "ffn_norm.weight", (h,), "F32"),
            (p + "attn_q.weight", (spec.heads * hd, h), "Q8_0"),
            (p + "attn_k.weight", (spec.kv_heads * hd, h), "Q8_0"),
            (p + "attn_v.weight", (spec.kv_heads * hd, h), "Q8_0"),
            (p + "attn_output.weight", (h, spec.heads * hd), "Q8_0"),
            (p + "ffn_gate.weight", (i, h), "Q8_0"),
            (p + "ffn_down.weight", (h, i), "Q8_0"),
            (p + "ffn_up.weight", (i, h), "Q8_0"),
        ]
    return out


def _gguf_nbytes(shape: tuple[int, ...], qtype: str) -> int:
    n = math.prod(shape)
    return n * 4 if qtype == "F32" else n // 32 * 34


def ensure_gguf(spec: LlamaSpec, n_merges: int = 280147, log=print) -> tuple[Path, dict]:
    """A Llama-3.2-1B-shaped Q8_0 GGUF with a Llama-3-sized tokenizer in its header (~8 MB of metadata).

    Attention tensors (and attn_norm) hold Q8_0-quantized random normal values with the same row
    structure as the safetensors model (Q/K rows permuted as llama.cpp does). The FFN and embedding
    tensors are never read by a fingerprint; their data are left as holes of a sparse file (zeros),
    so the 1.3 GB file takes ~0.2 GB of disk and seconds to write.
    """
    import gguf

    folder = DATA / spec.name
    path = folder / f"{spec.name}.gguf"
    want = {
        "generator_version": GGUF_GENERATOR_VERSION,
        "spec": asdict(spec),
        "row_structure": ROW_STRUCTURE,
        "merges": n_merges,
    }
    mf = folder / "manifest.json"
    if mf.is_file() and path.is_file():
        try:
            manifest = json.loads(mf.read_text())
            if all(manifest.get(k) == v for k, v in want.items()) and path.stat().st_size == manifest["size"]:
                return path, manifest
        except (ValueError, KeyError, OSError):
            pass
    log(f"generating {path.name} ...")
    t0 = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tmp = folder / (path.name + ".partial")
    tokens, merges = _fake_vocab(spec.vocab, n_merges, spec.seed)
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name(spec.name)
    w.add_block_count(spec.layers)
    w.add_context_length(131072)
    w.add_embedding_length(spec.hidden)
    w.add_feed_forward_length(spec.intermediate)
    w.add_head_count(spec.heads)
    w.add_head_count_kv(spec.kv_heads)
    w.add_rope_dimension_count(spec.head_dim)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_vocab_size(spec.vocab)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types([1] * len(tokens))
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    items = gguf_tensors(spec)
    qt = {"Q8_0": gguf.GGMLQuantizationType.Q8_0, "F32": gguf.GGMLQuantizationType.F32}
    for name, shape, t in items:
        w.add_tensor_info(name, shape, np.dtype(np.float32), _gguf_nbytes(shape, t), raw_dtype=qt[t])
    w.write_header_to_file(tmp)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]
    align = w.data_alignment
    rx = re.compile(r"^blk\.(\d+)\.(attn_q|attn_k|attn_v|attn_output|attn_norm)\.weight$")
    role_of = {"attn_q": "q", "attn_k": "k", "attn_v": "v", "attn_output": "o"}
    pos = fout.tell()
    pos += -pos % align
    fout.seek(pos)
    data_offset = pos
    for index, (name, shape, t) in enumerate(items):
        nbytes = _gguf_nbytes(shape, t)
        m = rx.match(name)
        if m:
            layer = int(m.group(1))
            rng = np.random.default_rng([spec.seed, 1000 + index])
            if m.group(2) == "attn_norm":
                mean, sd = _norm_params(layer, spec.layers)
                fout.write((mean + sd * rng.standard_normal(shape[0])).astype("<f4").tobytes())
            else:
                role = role_of[m.group(2)]
                s = row_scales(spec, role, layer, shape[0])
                if role in ("q", "k"):
                    s = _llamacpp_permute(s, spec.heads if role == "q" else spec.kv_heads)
                step = max(1, (8 << 20) // shape[1])
                for r0 in range(0, shape[0], step):
                    r1 = min(shape[0], r0 + step)
                    z = rng.standard_normal((r1 - r0, shape[1]), dtype=np.float32) * s[r0:r1, None].astype(np.float32)
                    fout.write(_q8_0(z))
        else:
            fout.seek(nbytes, os.SEEK_CUR)  # a hole: never read by a fingerprint
        pos = fout.tell()
        pad = -pos % align
        if pad:
            fout.seek(pad, os.SEEK_CUR)
    fout.truncate()
    fout.close()
    w.fout = None
    tmp.rename(path)
    manifest = {
        **want,
        "size": path.stat().st_size,
        "data_offset": data_offset,
        "generation_seconds": round(time.perf_counter() - t0, 1),
    }
    mf.write_text(json.dumps(manifest, indent=2) + "\n")
    log(
        f"  {path.stat().st_size / 1e9:.2f} GB (header {data_offset / 1e6:.1f} MB) in {manifest['generation_seconds']} s"
    )
    return path, manifest


class HubProcess:
    """Client of benchmarks/hub_process.py: the local Hub server in a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "hub_process.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = self._answer()["url"]

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the hub process ended unexpectedly")
        return json.loads(line)

    def _call(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def add_repo(self, repo: str, files: dict[str, Path], lfs: dict[str, str] | None = None) -> str:
        return self._call(cmd="add", repo=repo, files={k: str(v) for k, v in files.items()}, lfs=lfs)["sha"]

    def configure(self, **settings) -> None:
        self._call(cmd="configure", **settings)

    def reset(self) -> None:
        self._call(cmd="reset")

    def stats(self, repo: str) -> dict:
        return self._call(cmd="stats", repo=repo)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self._call(cmd="stop")
                self.proc.wait(timeout=10)
            except (OSError, RuntimeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

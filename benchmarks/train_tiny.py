"""Really train tiny Llama models on CPU, plus derivatives, for a lineage benchmark with genuine pairs.

Synthetic weights cannot tell whether the fingerprint survives what people actually do to a model
(fine-tuning, heavy continued pre-training, pruning, MoE upcycling, quantization), nor whether
independently trained models of one architecture look alike. This script makes both kinds of pair
from real training runs, small enough for a 2-core machine (about 10 minutes for everything):

  base-s0 .. base-s5   trained from scratch on stdlib prose, seeds 0..5 (unrelated to each other)
  wide-s0, wide-s1     trained from scratch, hidden 192 (unrelated, and of another shape)
  s0-finetune          base-s0 + a short low-LR fine-tune on code            (derived from base-s0)
  s1-finetune          base-s1 + the very same fine-tune                     (NOT derived from base-s0)
  s0-continued         base-s0 + heavy high-LR pre-training on code          (derived from base-s0)
  s0-pruned            base-s0 without layers 2 and 4, healed on prose       (derived from base-s0)
  s0-moe, s1-moe       Mixtral-layout 4-expert upcycles of base-s0 / base-s1, trained top-2
  s0-f16               base-s0 in float16 safetensors
  s0-q8_0.gguf, s0-q4_0.gguf   base-s0 as llama.cpp GGUF (Q/K rows permuted as convert_hf_to_gguf does)

Models are written in Hugging Face layouts (config.json, model.safetensors, tokenizer.json) under
benchmarks/data/lineage/ with a manifest.json (kind, parent, seed, steps, train and held-out loss,
seconds). Data are offline and deterministic: docstrings ("prose") and docstring-free source ("code")
of this Python's standard library, with one character-level vocabulary for every model. The model
is plain torch with HF LlamaForCausalLM's math and tensor names; `transformers` is not needed.

Usage: python benchmarks/train_tiny.py [--out DIR] [--only NAME ...] [--force] [--quick]
Existing models are skipped unless --force; --quick trains a few steps each into lineage-quick/.
Needs the `train` extra (torch).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import os
import re
import shutil
import sys
import sysconfig
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import gguf
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
CTX, BATCH, N_CHARS, CORPUS_CAP, EVAL_WINDOWS = 128, 32, 255, 2_000_000, 128
UNK = "<unk>"


# ----------------------------------------------------------------------------- data


def stdlib_corpora() -> tuple[str, str]:
    """(prose, code): every docstring of the stdlib, and its source with docstrings and comments removed."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idle_test"}
    prose, code, n_code = [], [], 0
    for path in sorted(p for p in root.rglob("*.py") if not skip & set(p.relative_to(root).parts)):
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    prose.append(doc + "\n\n")
                    if node.body and isinstance(node.body[0], ast.Expr):
                        node.body[0] = ast.Pass()  # so the code corpus holds no docstring text
        if n_code < CORPUS_CAP:
            code.append(ast.unparse(tree) + "\n\n")
            n_code += len(code[-1])
    return "".join(prose)[:CORPUS_CAP], "".join(code)[:CORPUS_CAP]


def char_vocab(*texts: str) -> list[str]:
    """`<unk>` then the N_CHARS most frequent characters, most frequent first (ties by code point)."""
    counts = Counter()
    for t in texts:
        counts.update(t)
    return [UNK, *sorted(counts, key=lambda c: (-counts[c], c))[:N_CHARS]]


def encode(text: str, vocab: list[str]) -> torch.Tensor:
    ids = {c: i for i, c in enumerate(vocab)}
    return torch.tensor([ids.get(c, 0) for c in text], dtype=torch.long)


def tokenizer_json(vocab: list[str]) -> dict:
    """A minimal Hugging Face tokenizers file: one token per character, WordLevel model."""
    unk = {
        "id": 0,
        "content": UNK,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": True,
    }
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [unk],
        "normalizer": None,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\s\\S]"}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": {t: i for i, t in enumerate(vocab)}, "unk_token": UNK},
    }


class Sampler:
    """Random CTX+1 windows of one or more token streams (a batch is split evenly between them)."""

    def __init__(self, *streams: torch.Tensor, seed: int) -> None:
        self.streams, self.gen = streams, torch.Generator().manual_seed(seed)

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        parts = []
        for s in self.streams:
            starts = torch.randint(0, len(s) - CTX - 1, (BATCH // len(self.streams),), generator=self.gen)
            parts.append(s[starts[:, None] + torch.arange(CTX + 1)])
        w = torch.cat(parts)
        return w[:, :-1], w[:, 1:]


# ----------------------------------------------------------------------------- model (HF Llama / Mixtral math and names)


@dataclass(frozen=True)
class Cfg:
    vocab: int
    hidden: int = 128
    layers: int = 6
    heads: int = 8
    kv_heads: int = 4
    inter: int = 344
    experts: int = 0  # 0 = dense Llama MLP; else Mixtral block_sparse_moe with top_k routing
    top_k: int = 2
    eps: float = 1e-5
    theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float) -> None:
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    def __init__(self, c: Cfg) -> None:
        super().__init__()
        self.c, d = c, c.head_dim
        self.q_proj = nn.Linear(c.hidden, c.heads * d, bias=False)
        self.k_proj = nn.Linear(c.hidden, c.kv_heads * d, bias=False)
        self.v_proj = nn.Linear(c.hidden, c.kv_heads * d, bias=False)
        self.o_proj = nn.Linear(c.heads * d, c.hidden, bias=False)

    def forward(self, x, cos, sin):
        (b, t, _), c = x.shape, self.c
        q = self.q_proj(x).view(b, t, c.heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, c.kv_heads, c.head_dim).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        rep = c.heads // c.kv_heads  # HF repeat_kv: query head h reads kv head h // rep
        y = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=True)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)), named gate_proj/up_proj/down_proj (Llama) or w1/w3/w2 (Mixtral experts)."""

    def __init__(self, c: Cfg, names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> None:
        super().__init__()
        self.names = names
        for n, shape in zip(names, [(c.hidden, c.inter), (c.hidden, c.inter), (c.inter, c.hidden)]):
            self.add_module(n, nn.Linear(*shape, bias=False))

    def forward(self, x):
        gate, up, down = (getattr(self, n) for n in self.names)
        return down(F.silu(gate(x)) * up(x))


class SparseMoE(nn.Module):
    """Mixtral's block: softmax router, top-k experts, weights renormalised; keeps its load-balancing loss."""

    def __init__(self, c: Cfg) -> None:
        super().__init__()
        self.top_k = c.top_k
        self.gate = nn.Linear(c.hidden, c.experts, bias=False)
        self.experts = nn.ModuleList(SwiGLU(c, ("w1", "w3", "w2")) for _ in range(c.experts))
        self.aux = torch.zeros(())

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        probs = F.softmax(self.gate(flat), dim=-1)
        w, idx = probs.topk(self.top_k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            tok, slot = (idx == e).nonzero(as_tuple=True)
            if len(tok):
                out = out.index_add(0, tok, expert(flat[tok]) * w[tok, slot, None])
        share = F.one_hot(idx, len(self.experts)).float().mean(0)  # [top_k, experts], as HF's load_balancing_loss_func
        self.aux = len(self.experts) * (share * probs.mean(0)).sum()
        return out.view_as(x)


class Block(nn.Module):
    def __init__(self, c: Cfg) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden, c.eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden, c.eps)
        if c.experts:
            self.block_sparse_moe = SparseMoE(c)
        else:
            self.mlp = SwiGLU(c)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        ffn = self.block_sparse_moe if hasattr(self, "block_sparse_moe") else self.mlp
        return x + ffn(self.post_attention_layernorm(x))


class Backbone(nn.Module):
    def __init__(self, c: Cfg) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab, c.hidden)
        self.layers = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.hidden, c.eps)
        inv_freq = 1.0 / c.theta ** (torch.arange(0, c.head_dim, 2).float() / c.head_dim)
        emb = torch.outer(torch.arange(CTX).float(), inv_freq).repeat(1, 2)  # HF: cat((freqs, freqs), -1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)


class CausalLM(nn.Module):
    def __init__(self, c: Cfg, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.c, self.model, self.lm_head = c, Backbone(c), nn.Linear(c.hidden, c.vocab, bias=False)
        for m in self.modules():  # HF _init_weights: normal(0, initializer_range=0.02), norms at 1
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids):
        t = ids.shape[1]
        x, cos, sin = self.model.embed_tokens(ids), self.model.cos[:t], self.model.sin[:t]
        for block in self.model.layers:
            x = block(x, cos, sin)
        return self.lm_head(self.model.norm(x))

    def aux_loss(self):
        return sum(
            (b.block_sparse_moe.aux for b in self.model.layers if hasattr(b, "block_sparse_moe")), torch.zeros(())
        )


def with_weights(c: Cfg, state: dict[str, torch.Tensor], seed: int = 0) -> CausalLM:
    model = CausalLM(c, seed)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model


# ----------------------------------------------------------------------------- training


def train(model: CausalLM, sample: Sampler, steps: int, lr: float, log: str) -> float:
    """AdamW (wd 0.1 on matrices), 5 % warm-up then cosine to lr/10, clip 1.0. Returns the mean loss of the last 10 steps."""
    params = list(model.parameters())
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() > 1], "weight_decay": 0.1},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.95),
    )
    warm, losses, t0 = max(1, steps // 20), [], time.perf_counter()
    model.train()
    for step in range(steps):
        frac = (step - warm) / max(1, steps - warm)
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = lr * (
            (step + 1) / warm if step < warm else 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
        )
        x, y = sample()
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        (loss + 0.02 * model.aux_loss()).backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        if step % max(1, steps // 6) == 0 or step == steps - 1:
            print(
                f"  {log} step {step + 1:4d}/{steps}  loss {loss.item():.3f}  ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    model.eval()
    return float(np.mean(losses[-10:]))


@torch.no_grad()
def eval_loss(model: CausalLM, held_out: torch.Tensor) -> float:
    """Mean next-character cross-entropy (nats) over EVAL_WINDOWS evenly spaced windows."""
    starts = torch.linspace(0, len(held_out) - CTX - 1, EVAL_WINDOWS).long()
    batches = held_out[starts[:, None] + torch.arange(CTX + 1)].split(BATCH)
    return float(np.mean([F.cross_entropy(model(b[:, :-1]).flatten(0, 1), b[:, 1:].flatten()).item() for b in batches]))


# ----------------------------------------------------------------------------- derivatives


def pruned(model: CausalLM, drop: set[int]) -> CausalLM:
    keep = [i for i in range(model.c.layers) if i not in drop]
    state = {}
    for k, v in model.state_dict().items():
        m = re.match(r"model\.layers\.(\d+)\.(.+)", k)
        if not m:
            state[k] = v
        elif int(m.group(1)) in keep:
            state[f"model.layers.{keep.index(int(m.group(1)))}.{m.group(2)}"] = v
    return with_weights(replace(model.c, layers=len(keep)), state)


def upcycled(model: CausalLM, experts: int, seed: int) -> CausalLM:
    """Every expert a copy of the dense MLP plus noise of 1 % of its weights' std; the router stays random."""
    moe = CausalLM(replace(model.c, experts=experts), seed)
    state, gen = moe.state_dict(), torch.Generator().manual_seed(seed)
    w_of = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}
    for k, v in model.state_dict().items():
        m = re.match(r"model\.layers\.(\d+)\.mlp\.(\w+)\.weight", k)
        if not m:
            state[k] = v
            continue
        for e in range(experts):
            noise = torch.randn(v.shape, generator=gen) * (0.01 * v.std())
            state[f"model.layers.{m.group(1)}.block_sparse_moe.experts.{e}.{w_of[m.group(2)]}.weight"] = v + noise
    moe.load_state_dict(state, strict=True)
    return moe


# ----------------------------------------------------------------------------- files: HF folders and GGUF


def hf_config(c: Cfg, dtype: torch.dtype) -> dict:
    cfg = {
        "architectures": ["MixtralForCausalLM" if c.experts else "LlamaForCausalLM"],
        "model_type": "mixtral" if c.experts else "llama",
        "vocab_size": c.vocab,
        "hidden_size": c.hidden,
        "intermediate_size": c.inter,
        "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": CTX,
        "rms_norm_eps": c.eps,
        "rope_theta": c.theta,
        "initializer_range": 0.02,
        "attention_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }
    if c.experts:
        cfg.update(
            num_local_experts=c.experts, num_experts_per_tok=c.top_k, router_aux_loss_coef=0.02, sliding_window=None
        )
    return cfg


def cfg_from_hf(cfg: dict) -> Cfg:
    return Cfg(
        cfg["vocab_size"],
        cfg["hidden_size"],
        cfg["num_hidden_layers"],
        cfg["num_attention_heads"],
        cfg["num_key_value_heads"],
        cfg["intermediate_size"],
        cfg.get("num_local_experts", 0),
        cfg.get("num_experts_per_tok", 2),
        cfg["rms_norm_eps"],
        cfg["rope_theta"],
    )


def publish(tmp: Path, final: Path) -> None:
    """Replace `final` by the finished `tmp` (file or folder) with a rename: readers never see half a model."""
    if final.is_dir():
        shutil.rmtree(final)
    os.replace(tmp, final)


def save_hf(model: CausalLM, folder: Path, vocab: list[str], dtype: torch.dtype = torch.float32) -> None:
    tmp = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(
        {k: v.to(dtype).contiguous() for k, v in model.state_dict().items()},
        tmp / "model.safetensors",
        metadata={"format": "pt"},
    )
    (tmp / "config.json").write_text(json.dumps(hf_config(model.c, dtype), indent=2) + "\n")
    (tmp / "tokenizer.json").write_text(json.dumps(tokenizer_json(vocab), ensure_ascii=False) + "\n")
    publish(tmp, folder)


def load_hf(folder: Path) -> CausalLM:
    return with_weights(
        cfg_from_hf(json.loads((folder / "config.json").read_text())), load_file(folder / "model.safetensors")
    )


def llamacpp_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute: HF rotate-half row order -> llama.cpp's interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llamacpp_unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_names(c: Cfg) -> dict[str, str]:
    """HF tensor name -> llama.cpp tensor name."""
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    parts = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    for i in range(c.layers):
        names.update({f"model.layers.{i}.{hf}.weight": f"blk.{i}.{gg}.weight" for hf, gg in parts.items()})
    return names


def save_gguf(model: CausalLM, path: Path, vocab: list[str], qtype: gguf.GGMLQuantizationType) -> list[str]:
    """llama.cpp layout; like convert_hf_to_gguf, a matrix whose rows are no whole number of blocks falls back to F16.

    Returns the names of the tensors that fell back."""
    c, tmp, fallback = model.c, path.with_name(f".{path.name}.partial"), []
    w = gguf.GGUFWriter(tmp, "llama")
    for add, value in [
        (w.add_name, path.stem),
        (w.add_block_count, c.layers),
        (w.add_context_length, CTX),
        (w.add_embedding_length, c.hidden),
        (w.add_feed_forward_length, c.inter),
        (w.add_head_count, c.heads),
        (w.add_head_count_kv, c.kv_heads),
        (w.add_rope_dimension_count, c.head_dim),
        (w.add_layer_norm_rms_eps, c.eps),
        (w.add_rope_freq_base, c.theta),
        (w.add_file_type, gguf.LlamaFileType[f"MOSTLY_{qtype.name}"]),
        (w.add_vocab_size, c.vocab),
        (w.add_tokenizer_model, "llama"),
        (w.add_token_list, vocab),
        (w.add_token_scores, [-float(i) for i in range(len(vocab))]),
        (w.add_token_types, [gguf.TokenType.UNKNOWN] + [gguf.TokenType.NORMAL] * (len(vocab) - 1)),
        (w.add_unk_token_id, 0),
    ]:
        add(value)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    for hf, name in gguf_names(c).items():
        a = state[hf].astype(np.float32)
        if hf.endswith(("q_proj.weight", "k_proj.weight")):
            a = llamacpp_permute(a, c.heads if "q_proj" in hf else c.kv_heads)
        if a.ndim == 1:
            w.add_tensor(name, a)  # norms stay F32
            continue
        try:
            w.add_tensor(name, gguf.quants.quantize(a, qtype), raw_dtype=qtype)
        except gguf.QuantError:
            w.add_tensor(name, a.astype(np.float16))
            fallback.append(name)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    publish(tmp, path)
    return fallback


def load_gguf(path: Path) -> CausalLM:
    """Read a GGUF written by save_gguf back into HF layout: dequantize, un-permute Q/K rows."""
    r = gguf.GGUFReader(path)
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.")}
    c = Cfg(
        int(meta["llama.vocab_size"]),
        int(meta["llama.embedding_length"]),
        int(meta["llama.block_count"]),
        int(meta["llama.attention.head_count"]),
        int(meta["llama.attention.head_count_kv"]),
        int(meta["llama.feed_forward_length"]),
        eps=float(meta["llama.attention.layer_norm_rms_epsilon"]),
        theta=float(meta["llama.rope.freq_base"]),
    )
    tensors = {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape(tuple(reversed(t.shape.tolist())))
        for t in r.tensors
    }
    state = {}
    for hf, name in gguf_names(c).items():
        a = tensors[name]
        if hf.endswith(("q_proj.weight", "k_proj.weight")):
            a = llamacpp_unpermute(a, c.heads if "q_proj" in hf else c.kv_heads)
        state[hf] = torch.from_numpy(np.array(a, dtype=np.float32))
    return with_weights(c, state)


def min_qk_correlation(a: CausalLM, b: CausalLM) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    keys = [k for k in sa if k.endswith(("q_proj.weight", "k_proj.weight"))]
    return min(float(np.corrcoef(sa[k].flatten().numpy(), sb[k].flatten().numpy())[0, 1]) for k in keys)


# ----------------------------------------------------------------------------- the jobs


@dataclass(frozen=True)
class Job:
    kind: str
    parent: str | None
    seed: int  # of the weights' initialisation and of the batches


JOBS = {
    **{f"base-s{s}": Job("base", None, s) for s in range(6)},
    **{f"wide-s{s}": Job("base-wide", None, s) for s in range(2)},
    "s0-finetune": Job("finetune", "base-s0", 1000),
    "s1-finetune": Job("finetune", "base-s1", 1000),
    "s0-continued": Job("continued-pretraining", "base-s0", 2000),
    "s0-pruned": Job("pruned", "base-s0", 3000),
    "s0-moe": Job("moe-upcycle", "base-s0", 4000),
    "s1-moe": Job("moe-upcycle", "base-s1", 4000),
    "s0-f16": Job("quantized", "base-s0", 0),
    "s0-q8_0": Job("quantized", "base-s0", 0),
    "s0-q4_0": Job("quantized", "base-s0", 0),
}
# kind: (training data, steps, peak learning rate). Continued pre-training runs as long as base training, at a higher LR.
RECIPES = {
    "base": ("prose", 160, 3e-3),
    "base-wide": ("prose", 100, 2e-3),
    "finetune": ("code", 200, 3e-4),
    "continued-pretraining": ("code", 160, 5e-3),
    "pruned": ("prose", 100, 1e-3),
    "moe-upcycle": ("prose+code", 120, 1e-3),
}
DROPPED_LAYERS = {2, 4}


class Runner:
    """Makes models on demand (parents first), keeps them in memory, and collects the manifest entries."""

    def __init__(self, out: Path, quick: bool, force: set[str]) -> None:
        self.out, self.quick, self.force, self.models = out, quick, force, {}
        t0 = time.perf_counter()
        prose, code = stdlib_corpora()
        self.vocab, split = char_vocab(prose, code), int(len(prose) * 0.95)
        self.streams = {"prose": encode(prose[:split], self.vocab), "code": encode(code, self.vocab)}
        self.held_out = encode(prose[split:], self.vocab)
        self.corpus = {
            "python": sys.version.split()[0],
            "prose_chars": split,
            "held_out_prose_chars": len(prose) - split,
            "code_chars": len(code),
            "sha256": hashlib.sha256((prose + "\0" + code).encode()).hexdigest()[:16],
            "vocab_size": len(self.vocab),
        }
        print(
            f"corpora: {len(prose):,} prose + {len(code):,} code chars, vocab {len(self.vocab)} ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        mf = out / "manifest.json"
        self.entries = {e["name"]: e for e in json.loads(mf.read_text())["models"]} if mf.is_file() else {}

    def path(self, name: str) -> Path:
        return self.out / (name + ".gguf" if name.endswith(("q8_0", "q4_0")) else name)

    def get(self, name: str) -> CausalLM:
        """The model `name`: made now if forced or missing on disk, else loaded."""
        if name not in self.models:
            p = self.path(name)
            if p.exists() and name not in self.force:
                self.models[name] = load_gguf(p) if p.suffix == ".gguf" else load_hf(p)
                print(f"{name}: exists, skipped", flush=True)
            else:
                self.make(name)
        return self.models[name]

    def start(self, job: Job, parent: CausalLM | None) -> CausalLM:
        """The weights a training run starts from."""
        if job.kind == "base":
            return CausalLM(Cfg(len(self.vocab)), job.seed)
        if job.kind == "base-wide":
            return CausalLM(Cfg(len(self.vocab), hidden=192, heads=12, inter=512), job.seed)
        if job.kind == "pruned":
            return pruned(parent, DROPPED_LAYERS)
        if job.kind == "moe-upcycle":
            return upcycled(parent, 4, job.seed)
        return with_weights(parent.c, parent.state_dict())

    def make(self, name: str) -> None:
        job = JOBS[name]
        parent = self.get(job.parent) if job.parent else None
        print(f"{name}: {job.kind}" + (f" of {job.parent}" if parent else "") + f", seed {job.seed}", flush=True)
        t0, steps, lr, loss, extra = time.perf_counter(), 0, None, None, {}
        if job.kind in RECIPES:
            data, steps, lr = RECIPES[job.kind]
            steps = max(3, steps // 40) if self.quick else steps
            model = self.start(job, parent)
            if job.kind == "pruned":
                extra = {
                    "dropped_layers": sorted(DROPPED_LAYERS),
                    "eval_loss_before_healing": round(eval_loss(model, self.held_out), 4),
                }
            loss = train(model, Sampler(*(self.streams[d] for d in data.split("+")), seed=job.seed), steps, lr, name)
            extra["data"] = data
            save_hf(model, self.path(name), self.vocab)
        elif name.endswith("f16"):
            model = with_weights(parent.c, {k: v.half() for k, v in parent.state_dict().items()})
            save_hf(model, self.path(name), self.vocab, torch.float16)
        else:
            qtype = gguf.GGMLQuantizationType[name.split("-")[1].upper()]
            extra["f16_fallback_tensors"] = save_gguf(parent, self.path(name), self.vocab, qtype)
            model = load_gguf(self.path(name))
            r = extra["qk_min_correlation_with_parent"] = round(min_qk_correlation(model, parent), 6)
            print(
                f"  read back, Q/K rows un-permuted, vs {job.parent}: min r = {r:.6f}; F16 fallback: {len(extra['f16_fallback_tensors'])} tensors"
            )
            if qtype == gguf.GGMLQuantizationType.Q8_0 and r <= 0.999:
                raise SystemExit(f"{name}: Q/K read back from the GGUF do not match {job.parent} (r = {r} <= 0.999)")
        self.models[name] = model
        e = self.entries[name] = {
            "name": name,
            "path": self.path(name).name,
            "kind": job.kind,
            "parent": job.parent,
            "seed": job.seed,
            "steps": steps,
            "lr": lr,
            "train_loss": None if loss is None else round(loss, 4),
            "seconds": round(time.perf_counter() - t0, 1),
            "eval_loss": round(eval_loss(model, self.held_out), 4),
            "params": sum(p.numel() for p in model.parameters()),
            **extra,
        }
        print(
            f"  -> {name}: {e['seconds']} s, train loss {e['train_loss']}, held-out prose loss {e['eval_loss']}",
            flush=True,
        )

    def write_manifest(self) -> list[dict]:
        for name, j in JOBS.items():  # on disk, but neither made now nor in the old manifest
            if name not in self.entries and self.path(name).exists():
                self.entries[name] = {
                    "name": name,
                    "path": self.path(name).name,
                    "kind": j.kind,
                    "parent": j.parent,
                    "seed": j.seed,
                    "eval_loss": round(eval_loss(self.get(name), self.held_out), 4),
                }
        models = [self.entries[n] for n in JOBS if n in self.entries]
        doc = {
            "generator": "benchmarks/train_tiny.py",
            "quick": self.quick,
            "context": CTX,
            "batch": BATCH,
            "corpus": self.corpus,
            "eval_loss": f"mean cross-entropy (nats/char) on {EVAL_WINDOWS} windows of {CTX} chars of held-out stdlib prose",
            "models": models,
        }
        tmp = self.out / ".manifest.json.partial"
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, self.out / "manifest.json")
        return models


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--out", type=Path, help="output folder (default benchmarks/data/lineage, or lineage-quick with --quick)"
    )
    ap.add_argument(
        "--only", nargs="+", metavar="NAME", help=f"models to make (their parents too when missing): {', '.join(JOBS)}"
    )
    ap.add_argument("--force", action="store_true", help="remake the selected models even if they exist")
    ap.add_argument("--quick", action="store_true", help="a few steps per model: a smoke run")
    args = ap.parse_args(argv)
    names = [n.removesuffix(".gguf") for n in (args.only or JOBS)]
    if unknown := [n for n in names if n not in JOBS]:
        ap.error(f"unknown model(s) {unknown}; known: {', '.join(JOBS)}")
    out = args.out or HERE / "data" / ("lineage-quick" if args.quick else "lineage")
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    t0 = time.perf_counter()
    runner = Runner(out, args.quick, set(names) if args.force else set())
    for name in names:
        runner.get(name)
    models = runner.write_manifest()
    print(f"\n{'model':14s} {'kind':22s} {'steps':>5s} {'train':>6s} {'eval':>6s} {'sec':>6s}")
    for e in models:
        train_loss = e.get("train_loss") or float("nan")
        print(
            f"{e['name']:14s} {e['kind']:22s} {e.get('steps') or 0:5d} {train_loss:6.3f} {e['eval_loss']:6.3f} {e.get('seconds') or 0:6.1f}"
        )
    print(f"total {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

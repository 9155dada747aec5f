"""One model with separate q/k/v (a Qwen2 layout: q_proj, k_proj, v_proj with biases), fused the way another
architecture stores it: GPT-NeoX (``query_key_value`` interleaved per head), Falcon (grouped per KV group, or
multi-query [Q | K | V]) and GPT-2 (Conv1D: every linear weight stored (in, out), ``c_attn`` = [Q | K | V]
columns). The fused model computes what the unfused one does, so a tool that splits the fused tensor must find
the unfused Q, K and V.

Layouts as transformers' modeling files read them: gpt_neox ``view(..., heads, 3 * head_size).chunk(3)``; falcon
``view(..., kv_heads, heads // kv_heads + 2, head_dim)`` (query heads, then one K, then one V) with
``new_decoder_architecture``, ``view(..., heads + 2, head_dim)`` with ``multi_query``; gpt2 Conv1D ``x @ W + b``
with ``W`` (in, out) and ``c_attn(x).split(n_embd, dim=2)``.
"""

from __future__ import annotations

import numpy as np

from .base import Layout


def _unfused(src: Layout, i: int) -> dict[str, np.ndarray]:
    p = f"model.layers.{i}."
    names = {
        "q": "self_attn.q_proj.weight",
        "k": "self_attn.k_proj.weight",
        "v": "self_attn.v_proj.weight",
        "q_bias": "self_attn.q_proj.bias",
        "k_bias": "self_attn.k_proj.bias",
        "v_bias": "self_attn.v_proj.bias",
        "o": "self_attn.o_proj.weight",
        "up": "mlp.up_proj.weight",
        "down": "mlp.down_proj.weight",
        "attn_norm": "input_layernorm.weight",
        "ffn_norm": "post_attention_layernorm.weight",
    }
    return {role: src.tensors[p + name] for role, name in names.items() if p + name in src.tensors}


def _shape(src: Layout) -> tuple[int, int, int, int, int]:
    c = src.config
    heads, kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
    return c["num_hidden_layers"], c["hidden_size"], heads, kv, c["hidden_size"] // heads


def _fused(name: str, config: dict, tensors: dict[str, np.ndarray], truth: dict[int, dict[str, np.ndarray]]) -> Layout:
    attention = {i: {r: np.asarray(a, np.float64) for r, a in roles.items()} for i, roles in truth.items()}
    return Layout(name=name, config=config, tensors=tensors, attention=attention)


def fuse_as_gpt_neox(src: Layout) -> Layout:
    """``gpt_neox.layers.N.attention.query_key_value`` (3 * hidden, hidden): rows [q_h, k_h, v_h] for each head h."""
    layers, hidden, heads, kv, hd = _shape(src)
    if kv != heads:
        raise ValueError("GPT-NeoX has as many K/V heads as Q heads")
    t: dict[str, np.ndarray] = {"gpt_neox.embed_in.weight": src.tensors["model.embed_tokens.weight"]}
    truth = {}
    for i in range(layers):
        u, p = _unfused(src, i), f"gpt_neox.layers.{i}."
        heads_of = [u[r].reshape(heads, hd, hidden) for r in "qkv"]
        t[p + "input_layernorm.weight"] = u["attn_norm"]
        t[p + "input_layernorm.bias"] = np.zeros(hidden, np.float32)
        t[p + "post_attention_layernorm.weight"] = u["ffn_norm"]
        t[p + "post_attention_layernorm.bias"] = np.zeros(hidden, np.float32)
        t[p + "attention.query_key_value.weight"] = np.stack(heads_of, axis=1).reshape(3 * hidden, hidden)
        biases = [u[f"{r}_bias"].reshape(heads, hd) for r in "qkv"]
        t[p + "attention.query_key_value.bias"] = np.stack(biases, axis=1).reshape(3 * hidden)
        t[p + "attention.dense.weight"] = u["o"]
        t[p + "mlp.dense_h_to_4h.weight"] = u["up"]
        t[p + "mlp.dense_4h_to_h.weight"] = u["down"]
        truth[i] = {r: u[r] for r in ("q", "k", "v", "o")}
    t["gpt_neox.final_layer_norm.weight"] = src.tensors["model.norm.weight"]
    t["embed_out.weight"] = src.tensors["lm_head.weight"]
    config = {
        "architectures": ["GPTNeoXForCausalLM"],
        "model_type": "gpt_neox",
        "hidden_size": hidden,
        "intermediate_size": u["up"].shape[0],
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "rotary_pct": 0.25,
        "use_parallel_residual": True,
        "tie_word_embeddings": False,
        "vocab_size": t["embed_out.weight"].shape[0],
    }
    return _fused("gpt_neox", config, t, truth)


def fuse_as_falcon(src: Layout) -> Layout:
    """``transformer.h.N.self_attention.query_key_value`` (no bias): with several K/V heads Falcon's new decoder
    architecture (per KV group: its heads // kv_heads query heads, one K head, one V head); with one, falcon-7b's
    multi-query [Q | K | V]."""
    layers, hidden, heads, kv, hd = _shape(src)
    new_arch = kv > 1
    t: dict[str, np.ndarray] = {"transformer.word_embeddings.weight": src.tensors["model.embed_tokens.weight"]}
    truth = {}
    for i in range(layers):
        u, p = _unfused(src, i), f"transformer.h.{i}."
        if new_arch:
            q = u["q"].reshape(kv, heads // kv, hd, hidden)
            k, v = (u[r].reshape(kv, 1, hd, hidden) for r in "kv")
            w = np.concatenate([q, k, v], axis=1).reshape(-1, hidden)
            t[p + "ln_attn.weight"] = u["attn_norm"]
            t[p + "ln_attn.bias"] = np.zeros(hidden, np.float32)
            t[p + "ln_mlp.weight"] = u["ffn_norm"]
            t[p + "ln_mlp.bias"] = np.zeros(hidden, np.float32)
        else:
            w = np.concatenate([u["q"], u["k"], u["v"]], axis=0)
            t[p + "input_layernorm.weight"] = u["attn_norm"]
            t[p + "input_layernorm.bias"] = np.zeros(hidden, np.float32)
        t[p + "self_attention.query_key_value.weight"] = w
        t[p + "self_attention.dense.weight"] = u["o"]
        t[p + "mlp.dense_h_to_4h.weight"] = u["up"]
        t[p + "mlp.dense_4h_to_h.weight"] = u["down"]
        truth[i] = {r: u[r] for r in ("q", "k", "v", "o")}
    t["transformer.ln_f.weight"] = src.tensors["model.norm.weight"]
    t["transformer.ln_f.bias"] = np.zeros(hidden, np.float32)
    config = {
        "architectures": ["FalconForCausalLM"],
        "model_type": "falcon",
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "new_decoder_architecture": new_arch,
        "parallel_attn": True,
        "bias": False,
        "vocab_size": src.tensors["model.embed_tokens.weight"].shape[0],
    }
    if new_arch:
        config["num_kv_heads"] = kv
    else:
        config["multi_query"] = True
    return _fused("falcon_new_arch" if new_arch else "falcon_7b", config, t, truth)


def fuse_as_gpt2(src: Layout) -> Layout:
    """openai-community/gpt2's names (no ``transformer.`` prefix): Conv1D weights stored (in, out) - ``attn.c_attn``
    (hidden, 3 * hidden) = [Q | K | V] columns with its bias, ``attn.c_proj``, ``mlp.c_fc``, ``mlp.c_proj`` - each
    the transpose of the unfused (out, in) weight. ``attention`` holds the unfused (out, in) truth."""
    layers, hidden, heads, kv, _ = _shape(src)
    if kv != heads:
        raise ValueError("GPT-2 has as many K/V heads as Q heads")
    t: dict[str, np.ndarray] = {"wte.weight": src.tensors["model.embed_tokens.weight"]}
    t["wpe.weight"] = np.zeros((32, hidden), np.float32)
    truth = {}
    for i in range(layers):
        u, p = _unfused(src, i), f"h.{i}."
        t[p + "ln_1.weight"] = u["attn_norm"]
        t[p + "ln_1.bias"] = np.zeros(hidden, np.float32)
        t[p + "attn.c_attn.weight"] = np.ascontiguousarray(np.concatenate([u["q"], u["k"], u["v"]], axis=0).T)
        t[p + "attn.c_attn.bias"] = np.concatenate([u["q_bias"], u["k_bias"], u["v_bias"]])
        t[p + "attn.c_proj.weight"] = np.ascontiguousarray(u["o"].T)
        t[p + "ln_2.weight"] = u["ffn_norm"]
        t[p + "ln_2.bias"] = np.zeros(hidden, np.float32)
        t[p + "mlp.c_fc.weight"] = np.ascontiguousarray(u["up"].T)
        t[p + "mlp.c_proj.weight"] = np.ascontiguousarray(u["down"].T)
        truth[i] = {r: u[r] for r in ("q", "k", "v", "o")}
    t["ln_f.weight"] = src.tensors["model.norm.weight"]
    t["ln_f.bias"] = np.zeros(hidden, np.float32)
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "n_embd": hidden,
        "n_head": heads,
        "n_layer": layers,
        "n_positions": 32,
        "vocab_size": t["wte.weight"].shape[0],
    }
    return _fused("gpt2", config, t, truth)


FUSERS = {
    "gpt_neox": fuse_as_gpt_neox,
    "falcon_grouped": fuse_as_falcon,
    "falcon_multi_query": fuse_as_falcon,
    "gpt2": fuse_as_gpt2,
}

"""An exact, small float64 forward pass of a Llama-family decoder, to prove a transform kept the outputs.

Covers RMSNorm, rotate_half RoPE (HF order), grouped-query causal attention, a SwiGLU MLP,
optional q/k/v biases (Qwen2) and a tied or separate lm_head. Not covered: rope_scaling,
partial rotary, sliding windows, o/MLP biases - this checks the stress test, it is no inference engine.
Weights are the HF-named dict {name: ndarray}; config is the HF config.json as a dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Weights = dict[str, np.ndarray]  # HF tensor name -> array
HFConfig = dict[str, Any]  # config.json, parsed


def dims(config: HFConfig) -> tuple[int, int, int, int]:
    """(hidden, n_heads, n_kv_heads, head_dim) from an HF config dict."""
    hidden = int(config["hidden_size"])
    n_heads = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_heads)
    head_dim = int(config.get("head_dim") or hidden // n_heads)
    return hidden, n_heads, n_kv, head_dim


def _rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    normed: np.ndarray = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w
    return normed


def _rope(x: np.ndarray, theta: float) -> np.ndarray:
    """x: (heads, seq, head_dim); dims i and i + head_dim/2 form a rotary pair (HF rotate_half)."""
    seq, d = x.shape[1], x.shape[2]
    inv_freq = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
    ang = np.arange(seq, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], -1)), np.sin(np.concatenate([ang, ang], -1))
    rotated = np.concatenate([-x[..., d // 2 :], x[..., : d // 2]], axis=-1)
    out: np.ndarray = x * cos + rotated * sin
    return out


def _linear(x: np.ndarray, weights: Weights, name: str) -> np.ndarray:
    y = x @ np.asarray(weights[name + ".weight"], dtype=np.float64).T
    bias = weights.get(name + ".bias")
    return y if bias is None else y + np.asarray(bias, dtype=np.float64)


def llama_logits(weights: Weights, config: HFConfig, token_ids: np.ndarray) -> np.ndarray:
    """Logits (seq, vocab) for one sequence of token ids, computed in float64."""
    _, n_heads, n_kv, hd = dims(config)
    eps = float(config.get("rms_norm_eps", 1e-6))
    theta = float(config.get("rope_theta", 10000.0))
    group = n_heads // n_kv
    ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
    seq = len(ids)
    embed = np.asarray(weights["model.embed_tokens.weight"], dtype=np.float64)
    x = embed[ids]
    causal = np.triu(np.full((seq, seq), -np.inf), k=1)
    for i in range(int(config["num_hidden_layers"])):
        p = f"model.layers.{i}."
        h = _rmsnorm(x, np.asarray(weights[p + "input_layernorm.weight"], dtype=np.float64), eps)
        q = _linear(h, weights, p + "self_attn.q_proj").reshape(seq, n_heads, hd).transpose(1, 0, 2)
        k = _linear(h, weights, p + "self_attn.k_proj").reshape(seq, n_kv, hd).transpose(1, 0, 2)
        v = _linear(h, weights, p + "self_attn.v_proj").reshape(seq, n_kv, hd).transpose(1, 0, 2)
        q, k = _rope(q, theta), _rope(k, theta)
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)  # query head j reads KV head j // group
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + causal
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attn = (scores / scores.sum(-1, keepdims=True)) @ v  # (heads, seq, hd)
        x = x + _linear(attn.transpose(1, 0, 2).reshape(seq, n_heads * hd), weights, p + "self_attn.o_proj")
        h = _rmsnorm(x, np.asarray(weights[p + "post_attention_layernorm.weight"], dtype=np.float64), eps)
        gate = _linear(h, weights, p + "mlp.gate_proj")
        act = gate / (1.0 + np.exp(-gate)) * _linear(h, weights, p + "mlp.up_proj")  # SiLU(gate) * up
        x = x + _linear(act, weights, p + "mlp.down_proj")
    x = _rmsnorm(x, np.asarray(weights["model.norm.weight"], dtype=np.float64), eps)
    head = weights.get("lm_head.weight")  # absent when tied: the embedding is the output matrix
    return x @ (embed if head is None else np.asarray(head, dtype=np.float64)).T


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    out: np.ndarray = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return out


def random_sequences(vocab_size: int, n_sequences: int = 4, length: int = 32, seed: int = 0) -> np.ndarray:
    """Deterministic uniform-random token ids (n_sequences, length) in [0, vocab_size)."""
    return np.random.default_rng(seed).integers(0, vocab_size, size=(n_sequences, length))


def output_change(
    weights_a: Weights, weights_b: Weights, config: HFConfig, n_sequences: int = 4, length: int = 32, seed: int = 0
) -> float:
    """How much model B's predictions differ from model A's: the largest absolute difference of
    log-probabilities (log-softmax of the logits, in nats), over every position, every vocabulary
    entry and `n_sequences` deterministic random token sequences of `length` tokens (seeded by `seed`).

    0 means identical next-token distributions; ~1e-12 is float64 round-off (an exact transform);
    values near 1 or more mean the model now predicts differently.
    """
    vocab = int(np.shape(weights_a["model.embed_tokens.weight"])[0])
    worst = 0.0
    for ids in random_sequences(vocab, n_sequences, length, seed):
        a = log_softmax(llama_logits(weights_a, config, ids))
        b = log_softmax(llama_logits(weights_b, config, ids))
        worst = max(worst, float(np.max(np.abs(a - b))))
    return worst

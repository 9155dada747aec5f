"""The stress test's transformations and the float64 forward pass that proves them, on the real tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import FIXTURES
from safetensors.numpy import load_file

import fingerprint.lineage.forward as fwd
from fingerprint.lineage.forward import llama_logits, log_softmax, output_change
from fingerprint.lineage.transforms import TRANSFORMS, apply, quantize, skipped_by_quantize

MODELS = ["stories260k", "babyllama-tok361"]
EXACT = [k for k, t in TRANSFORMS.items() if t.exact]
Q = "model.layers.{}.self_attn.q_proj.weight"


def _load(name: str) -> tuple[dict, dict]:
    weights = load_file(str(FIXTURES / name / "model.safetensors"))
    return weights, json.loads((FIXTURES / name / "config.json").read_text())


_CACHE = {name: _load(name) for name in MODELS}


@pytest.fixture(params=MODELS)
def model(request):
    return _CACHE[request.param]


def _layers(config):
    return range(config["num_hidden_layers"])


def _heads(w: np.ndarray, head_dim: int) -> np.ndarray:
    return w.reshape(-1, head_dim, w.shape[1])


# ---------------------------------------------------------------- the forward pass itself


def test_forward_is_causal(model):
    weights, config = model
    ids = np.random.default_rng(1).integers(0, weights["model.embed_tokens.weight"].shape[0], 20)
    full = llama_logits(weights, config, ids)
    assert full.shape == (20, weights["model.embed_tokens.weight"].shape[0])
    for n in (1, 7, 13):
        np.testing.assert_allclose(llama_logits(weights, config, ids[:n]), full[:n], rtol=0, atol=1e-10)
    changed = ids.copy()
    changed[12] = (changed[12] + 1) % weights["model.embed_tokens.weight"].shape[0]
    other = llama_logits(weights, config, changed)
    np.testing.assert_allclose(other[:12], full[:12], rtol=0, atol=1e-10)
    assert np.abs(other[12:] - full[12:]).max() > 1e-3


def test_rope_convention_matters(model, monkeypatch):
    """The trained model decodes confidently under HF rotate_half RoPE (the rows' order) and much
    less so under Meta's interleaved pairing: the forward pass uses the convention the weights need."""
    weights, config = model

    def greedy_nll(steps=40):
        ids = [1]
        for _ in range(steps):
            ids.append(int(llama_logits(weights, config, np.array(ids))[-1].argmax()))
        lp = log_softmax(llama_logits(weights, config, np.array(ids[:-1])))
        return -lp[np.arange(steps), ids[1:]].mean()

    right = greedy_nll()

    def interleaved(x, theta):
        d = x.shape[-1]
        ang = np.arange(x.shape[1])[:, None] * theta ** (-np.arange(0, d, 2) / d)
        cos, sin = np.repeat(np.cos(ang), 2, -1), np.repeat(np.sin(ang), 2, -1)
        return x * cos + np.stack([-x[..., 1::2], x[..., 0::2]], -1).reshape(x.shape) * sin

    monkeypatch.setattr(fwd, "_rope", interleaved)
    wrong = greedy_nll()
    assert right < 0.5 and wrong > right + 0.25, (right, wrong)


def test_moving_q_rows_without_o_columns_changes_outputs(model):
    """The proof can fail: swap query heads 0 and 1 in W_q only (o columns left) and outputs move."""
    weights, config = model
    hd = config["hidden_size"] // config["num_attention_heads"]
    broken = dict(weights)
    q = weights[Q.format(0)].copy()
    q[:hd], q[hd : 2 * hd] = weights[Q.format(0)][hd : 2 * hd], weights[Q.format(0)][:hd]
    broken[Q.format(0)] = q
    assert output_change(weights, broken, config) > 1e-2
    assert output_change(weights, dict(weights), config) == 0.0


def test_rotation_without_folding_the_norms_changes_outputs(model):
    """RMSNorm weights must be folded before rotating: rotating with the norms in place breaks the model."""
    weights, config = model
    rotated = apply("rotate_hidden", weights, config, seed=0)
    unfolded = dict(rotated)
    for name, arr in weights.items():
        if name.endswith("norm.weight"):
            unfolded[name] = arr  # put the original (non-unit) norm weights back
    assert output_change(weights, unfolded, config) > 1e-2


# ---------------------------------------------------------------- exact transforms


@pytest.mark.parametrize("key", EXACT)
def test_exact_transform_preserves_outputs(model, key):
    weights, config = model
    new = apply(key, weights, config, seed=3)
    assert output_change(weights, new, config) < 1e-6
    assert output_change(weights, new, config, n_sequences=2, length=48, seed=7) < 1e-6


def test_scale_qk_changes_weights(model):
    weights, config = model
    new = apply("scale_qk", weights, config)
    for i in _layers(config):
        for proj in "qk":
            name = f"model.layers.{i}.self_attn.{proj}_proj.weight"
            assert abs(new[name].std() / weights[name].std() - 1) > 1e-3
        # each query row is its original times a positive constant per head
        ratio = new[Q.format(i)] / weights[Q.format(i)]
        assert np.all(ratio > 0.25 - 1e-9) and np.all(ratio < 4 + 1e-9)


def test_scale_vo_changes_weights(model):
    weights, config = model
    new = apply("scale_vo", weights, config)
    for i in _layers(config):
        for proj in "vo":
            name = f"model.layers.{i}.self_attn.{proj}_proj.weight"
            assert abs(new[name].std() / weights[name].std() - 1) > 1e-3


def test_permute_heads_moves_whole_heads(model):
    weights, config = model
    hd = config["hidden_size"] // config["num_attention_heads"]
    group = config["num_attention_heads"] // config["num_key_value_heads"]
    new = apply("permute_heads", weights, config, seed=1)
    moved = 0
    for i in _layers(config):
        old_h, new_h = _heads(weights[Q.format(i)], hd), _heads(new[Q.format(i)], hd)
        # every new head is an old head, bit for bit, and the old heads are all used once
        src = [next(j for j in range(len(old_h)) if np.array_equal(h, old_h[j])) for h in new_h]
        assert sorted(src) == list(range(len(old_h)))
        moved += src != list(range(len(old_h)))
        # query heads stay with their KV group
        k_name = f"model.layers.{i}.self_attn.k_proj.weight"
        old_k, new_k = _heads(weights[k_name], hd), _heads(new[k_name], hd)
        ksrc = [next(j for j in range(len(old_k)) if np.array_equal(h, old_k[j])) for h in new_k]
        assert [s // group for s in src] == [ksrc[n // group] for n in range(len(src))]
    assert moved >= len(_layers(config)) - 1


def test_permute_mlp_reorders_neurons(model):
    weights, config = model
    new = apply("permute_mlp", weights, config)
    for i in _layers(config):
        old, now = weights[f"model.layers.{i}.mlp.gate_proj.weight"], new[f"model.layers.{i}.mlp.gate_proj.weight"]
        assert not np.array_equal(old, now)
        np.testing.assert_array_equal(np.sort(old, axis=0), np.sort(now, axis=0))


def test_rotate_hidden_hides_the_embedding(model):
    weights, config = model
    new = apply("rotate_hidden", weights, config)
    e0, e1 = weights["model.embed_tokens.weight"].astype(np.float64), new["model.embed_tokens.weight"]
    assert np.linalg.norm(e1 - e0) > 0.5 * np.linalg.norm(e0)
    assert abs(np.corrcoef(e0.ravel(), e1.ravel())[0, 1]) < 0.2
    np.testing.assert_allclose(e1 @ e1.T, e0 @ e0.T, atol=1e-9)  # a rotation: token geometry kept
    assert "lm_head.weight" in new  # the tied head was untied (it carries the folded final norm)
    for name, arr in new.items():
        if name.endswith("norm.weight"):
            np.testing.assert_array_equal(arr, 1.0)


# ---------------------------------------------------------------- approximate transforms


def test_quantize_changes_outputs_a_little(model):
    weights, config = model
    q8 = output_change(weights, apply("quantize_q8_0", weights, config), config)
    q4 = output_change(weights, apply("quantize_q4_0", weights, config), config)
    # a max over every vocabulary entry of random, off-distribution text: the tail moves most
    assert 1e-3 < q8 < 1.0
    assert q4 > 3 * q8


def test_quantize_skips_rows_not_a_multiple_of_32(model):
    weights, config = model
    new = quantize(weights, config, "Q4_0")
    skipped = skipped_by_quantize(weights)
    for name, arr in weights.items():
        if arr.ndim == 1 or name in skipped:
            np.testing.assert_array_equal(new[name], arr)
        else:
            assert not np.array_equal(new[name], arr)
    assert (config["intermediate_size"] % 32 != 0) == bool(skipped)


def test_q8_0_matches_llama_cpp_export():
    """Our Q8_0 round trip equals the values in llama.cpp's own Q8_0 export of stories260k."""
    import gguf
    from gguf.quants import dequantize

    weights, config = _CACHE["stories260k"]
    ours = quantize(weights, config, "Q8_0")
    names = {  # tensors whose rows llama.cpp does not reorder
        "token_embd.weight": "model.embed_tokens.weight",
        "blk.2.attn_v.weight": "model.layers.2.self_attn.v_proj.weight",
        "blk.2.attn_output.weight": "model.layers.2.self_attn.o_proj.weight",
        "blk.3.ffn_gate.weight": "model.layers.3.mlp.gate_proj.weight",
    }
    tensors = {t.name: t for t in gguf.GGUFReader(str(FIXTURES / "stories260k-q8_0.gguf")).tensors}
    for gname, hname in names.items():
        t = tensors[gname]
        assert t.tensor_type.name == "Q8_0"
        np.testing.assert_array_equal(dequantize(t.data, t.tensor_type).reshape(ours[hname].shape), ours[hname])


def test_noise_changes_outputs(model):
    weights, config = model
    new = apply("add_noise", weights, config, seed=0)
    change = output_change(weights, new, config)
    assert 1e-3 < change < 10
    name = Q.format(0)
    rel = (new[name] - weights[name]).std() / weights[name].std()
    assert 0.008 < rel < 0.012


# ---------------------------------------------------------------- contract


def test_registry_and_contract(model):
    weights, config = model
    snapshot = {k: v.copy() for k, v in weights.items()}
    for key, t in TRANSFORMS.items():
        assert t.key == key and t.label and t.description and callable(t.fn)
        a, b = apply(key, weights, config, seed=5), apply(key, weights, config, seed=5)
        assert set(a) >= set(weights)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])  # deterministic given the seed
            if name in weights:
                assert not np.shares_memory(a[name], weights[name])  # new arrays
    for k, v in weights.items():
        np.testing.assert_array_equal(v, snapshot[k])  # input untouched
    for key in ("scale_qk", "permute_heads", "rotate_hidden", "add_noise"):
        a, b = apply(key, weights, config, seed=1), apply(key, weights, config, seed=2)
        assert any(not np.array_equal(a[n], b[n]) for n in a)
    with pytest.raises(KeyError):
        apply("nope", weights, config)


@pytest.mark.parametrize("key", EXACT)
def test_exact_transforms_with_qkv_biases(key):
    """Qwen2-style q/k/v biases (added here at random to a real model) move and scale with their rows."""
    weights, config = _CACHE["babyllama-tok361"]
    rng = np.random.default_rng(0)
    biased = dict(weights)
    for i in _layers(config):
        for proj in "qkv":
            rows = weights[f"model.layers.{i}.self_attn.{proj}_proj.weight"].shape[0]
            biased[f"model.layers.{i}.self_attn.{proj}_proj.bias"] = rng.normal(0, 0.5, rows).astype(np.float32)
    assert output_change(weights, biased, config) > 1e-2  # the biases are live in the forward pass
    new = apply(key, biased, config, seed=4)
    assert output_change(biased, new, config) < 1e-6
    if key in ("scale_qk", "permute_heads"):
        bias = "model.layers.0.self_attn.q_proj.bias"
        assert not np.array_equal(new[bias], biased[bias])

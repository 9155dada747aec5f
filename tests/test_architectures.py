"""Every architecture, written in its real layout, gives σ-curves equal to numpy on its ground truth."""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from layouts import BUILDERS, GROUND_TRUTH_BUILDERS, write_gguf, write_safetensors_dir

from fingerprint import Options, compute, inspect
from fingerprint.errors import NoAttentionTensors


def expected_curves(attention: dict[int, dict[str, np.ndarray]]) -> dict[str, list[float]]:
    roles = sorted({r for per in attention.values() for r in per})
    layers = sorted(attention)
    return {
        r: [float(np.std(attention[i][r].astype(np.float64))) if r in attention[i] else None for i in layers]
        for r in roles
    }


def check(fp, attention, rtol=1e-6):
    want = expected_curves(attention)
    assert set(fp.curves) == set(want), f"roles found {sorted(fp.curves)} != {sorted(want)}"
    assert fp.layers == len(attention)
    for role, values in want.items():
        got = fp.curves[role]
        for layer, (g, w) in enumerate(zip(got, values)):
            if w is None:
                assert g is None
            else:
                assert g == pytest.approx(w, rel=rtol), f"{role} layer {layer}"


@pytest.mark.parametrize("name", sorted(GROUND_TRUTH_BUILDERS))
def test_architecture_exact_curves(name, tmp_path):
    layout = GROUND_TRUTH_BUILDERS[name](seed=1)
    path = write_safetensors_dir(layout, tmp_path / name)
    out = compute(str(path), Options(mode="exact", use_cache=False))
    assert out.error is None, out.error
    check(out.fingerprint, layout.attention_as("F32"))


@pytest.mark.parametrize("dtype", ["F16", "BF16"])
@pytest.mark.parametrize("name", ["llama", "qwen2", "phi3", "gpt_neox"])
def test_half_precision_and_shards(name, dtype, tmp_path):
    layout = GROUND_TRUTH_BUILDERS[name](seed=2)
    path = write_safetensors_dir(layout, tmp_path / name, dtype=dtype, shards=3)
    assert (path / "model.safetensors.index.json").exists()
    fp = compute(str(path), Options(mode="exact", use_cache=False)).fingerprint
    assert len(fp.files) == 3
    check(fp, layout.attention_as(dtype))


def test_mla_roles_are_named(tmp_path):
    layout = GROUND_TRUTH_BUILDERS["deepseek_v2"](seed=3)
    info = inspect(str(write_safetensors_dir(layout, tmp_path / "ds")))
    assert {"q_a", "q_b", "kv_a", "kv_b", "o", "q_a_norm", "kv_a_norm"} <= set(info.tensors_by_role)
    assert "q" not in info.tensors_by_role
    lite = inspect(str(write_safetensors_dir(GROUND_TRUTH_BUILDERS["deepseek_v2_lite"](seed=3), tmp_path / "lite")))
    assert "q" in lite.tensors_by_role and "q_a" not in lite.tensors_by_role


def test_deepseek_v3_fp8_mtp_layer_left_out_with_a_note(tmp_path):
    layout = GROUND_TRUTH_BUILDERS["deepseek_v3_fp8"](seed=4, mtp=True)
    fp = compute(str(write_safetensors_dir(layout, tmp_path / "v3")), Options(use_cache=False)).fingerprint
    check(fp, layout.attention, rtol=1e-5)
    assert any("beyond num_hidden_layers" in n for n in fp.notes)


def test_vision_language_model_uses_the_language_tower(tmp_path):
    for name in ("llava", "llava_new_naming", "qwen3_vl"):
        if name not in GROUND_TRUTH_BUILDERS:
            continue
        layout = GROUND_TRUTH_BUILDERS[name](seed=5)
        fp = compute(str(write_safetensors_dir(layout, tmp_path / name)), Options(use_cache=False)).fingerprint
        check(fp, layout.attention)
        if name.startswith("llava"):  # its CLIP tower uses names the map knows: say it was left out
            assert any("left out" in n and "vision" in n for n in fp.notes), fp.notes


@pytest.mark.parametrize("qtype", ["F32", "F16", "Q8_0", "Q4_0", "Q4_K"])
def test_gguf_quantized_types(qtype, tmp_path):
    layout = GROUND_TRUTH_BUILDERS["llama"](seed=6, hidden=256, layers=3)
    path = write_gguf(layout, tmp_path / f"m-{qtype}.gguf", qtype=getattr(gguf.GGMLQuantizationType, qtype))
    fp = compute(str(path), Options(use_cache=False)).fingerprint
    assert fp.format == "gguf" and fp.layers == 3
    want = expected_curves(layout.attention)
    # a σ-curve survives quantization: within 0.1% (F16), 1% (Q8_0), 5% (4-bit)
    tol = {"F32": 1e-6, "F16": 1e-3, "Q8_0": 1e-2, "Q4_0": 5e-2, "Q4_K": 5e-2}[qtype]
    for role in ("q", "k", "v", "o"):
        np.testing.assert_allclose(fp.curves[role], want[role], rtol=tol)
    if qtype in ("Q8_0", "Q4_0", "Q4_K"):
        from fingerprint.formats.gguf import read_header
        from fingerprint.sources.local import LocalFile

        tensors, _, _ = read_header(LocalFile(path))
        assert {t.dtype for t in tensors if ".attn_q." in t.name} == {qtype}, "the attention really is quantized"


@pytest.mark.parametrize("name, words", [("gptq_llama", "GPTQ 4-bit"), ("bnb4_llama", "bitsandbytes NF4")])
def test_packed_quantization_is_dequantized_and_named(name, words, tmp_path):
    path = write_safetensors_dir(BUILDERS[name](seed=7), tmp_path / name)
    out = compute(str(path), Options(use_cache=False))
    assert out.error is None, out.error
    assert any(n.startswith(words) and "dequantized from the packed weights" in n for n in out.fingerprint.notes)
    assert {"q", "k", "v", "o"} <= set(out.fingerprint.curves)


def test_gpt2_causal_mask_buffer_is_not_a_bias(tmp_path):
    layout = GROUND_TRUTH_BUILDERS["gpt2"](seed=8)
    fp = compute(str(write_safetensors_dir(layout, tmp_path / "g")), Options(use_cache=False)).fingerprint
    assert "qkv_bias" in fp.curves and "o_bias" in fp.curves
    assert set(fp.curves) == set(expected_curves(layout.attention))


def test_unknown_architecture_message_and_explicit_mapping(tmp_path):
    from layouts import write_safetensors_file

    rng = np.random.default_rng(0)
    tensors = {}
    for i in range(4):
        for r in ("wq", "wk", "wv", "wo"):
            tensors[f"blocks.{i}.attn.{r}.weight"] = (rng.normal(0, 0.02 * (i + 1), (32, 32))).astype(np.float32)
    path = write_safetensors_file(tensors, tmp_path / "custom.safetensors")
    out = compute(str(path), Options(use_cache=False))
    assert isinstance(out.error, NoAttentionTensors)
    assert "blocks.0.attn.wq.weight" in str(out.error) and "--map" in str(out.error)
    mapping = {
        "q": "blocks.{layer}.attn.wq",
        "k": "blocks.{layer}.attn.wk",
        "v": "blocks.{layer}.attn.wv",
        "o": "blocks.{layer}.attn.wo",
    }
    fp = compute(str(path), Options(use_cache=False, mapping=mapping)).fingerprint
    assert fp.layers == 4
    np.testing.assert_allclose(
        fp.curves["q"], [np.std(tensors[f"blocks.{i}.attn.wq.weight"].astype(np.float64)) for i in range(4)], rtol=1e-6
    )

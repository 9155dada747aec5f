"""The real trained fixtures: σ-curves equal a plain numpy computation, and the known relations hold."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from fingerprint import Options, compare_pair, compute

ROLES = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj"}


def numpy_curves(model_dir):
    sd = load_file(str(model_dir / "model.safetensors"))
    layers = 5
    out = {
        r: [float(np.std(sd[f"model.layers.{i}.self_attn.{n}.weight"].astype(np.float64))) for i in range(layers)]
        for r, n in ROLES.items()
    }
    out["attn_norm"] = [
        float(np.std(sd[f"model.layers.{i}.input_layernorm.weight"].astype(np.float64))) for i in range(layers)
    ]
    return out


@pytest.mark.parametrize("name", ["stories260k", "babyllama-tok361", "babyllama-tok105"])
def test_exact_curves_match_numpy(fixtures, name):
    out = compute(str(fixtures / name), Options(mode="exact", use_cache=False))
    assert out.error is None, out.error
    fp = out.fingerprint
    assert fp.layers == 5 and fp.mode == "exact" and fp.architecture == "LlamaForCausalLM"
    for role, expected in numpy_curves(fixtures / name).items():
        np.testing.assert_allclose(fp.curves[role], expected, rtol=1e-6)


def test_q8_0_gguf_matches_safetensors_within_quantization_error(fixtures):
    st = compute(str(fixtures / "stories260k"), Options(use_cache=False)).fingerprint
    gg = compute(str(fixtures / "stories260k-q8_0.gguf"), Options(use_cache=False)).fingerprint
    assert gg.format == "gguf" and gg.layers == 5
    for role in ("q", "k", "v", "o"):
        # Q8_0 keeps 8 bits per value with a per-32 block scale: σ moves by well under 1%
        np.testing.assert_allclose(gg.curves[role], st.curves[role], rtol=5e-3)
    assert compare_pair(st, gg).score > 0.999


def test_independent_babyllamas_show_the_sigma_curve_false_positive(fixtures):
    a = compute(str(fixtures / "babyllama-tok361"), Options(use_cache=False)).fingerprint
    b = compute(str(fixtures / "babyllama-tok105"), Options(use_cache=False)).fingerprint
    c = compare_pair(a, b)
    # documented in the fixtures' README: Q 0.88, K 0.97, V 0.98, O 0.97, mean about 0.95
    assert c.per_role["q"] == pytest.approx(0.88, abs=0.01)
    assert c.per_role["k"] == pytest.approx(0.97, abs=0.01)
    assert c.score == pytest.approx(0.95, abs=0.01)
    assert not c.resampled

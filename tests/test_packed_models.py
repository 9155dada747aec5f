"""GPTQ, AWQ and bitsandbytes 4-bit models, written in their real tensor names and configs, get a σ fingerprint and a
lineage probe from their packed weights: a quantized copy is related to the model it was made from, and not to an
independent one."""

from __future__ import annotations

import numpy as np
import pytest
from layouts import build_llama, quantize_llama, write_safetensors_dir

from fingerprint.fingerprinting import Options, compute, inspect, open_model
from fingerprint.lineage import evidence
from fingerprint.lineage.reading import build_probe

SHAPE = dict(hidden=128, layers=4, heads=4, kv_heads=2, intermediate=256, vocab=256)
VARIANTS = {
    "gptq": dict(method="gptq", bits=4, act_order=True),
    "gptq3": dict(method="gptq", bits=3),
    "awq": dict(method="awq"),
    "nf4": dict(method="bnb4", quant_type="nf4", double_quant=True),
    "fp4": dict(method="bnb4", quant_type="fp4"),
    "ct": dict(method="compressed-tensors", bits=4, group_size=128),
    "ct_asym": dict(method="compressed-tensors", bits=4, group_size=32, symmetric=False, act_order=True),
    "ct_int8": dict(method="compressed-tensors", ct_format="int-quantized", symmetric=False),
}
LABELS = {
    "gptq": "GPTQ 4-bit (group 32, act-order) dequantized from the packed weights",
    "gptq3": "GPTQ 3-bit (group 32) dequantized from the packed weights",
    "awq": "AWQ 4-bit (group 32) dequantized from the packed weights",
    "nf4": "bitsandbytes NF4 4-bit (blocks of 64, double-quantized absmax) dequantized from the packed weights",
    "fp4": "bitsandbytes FP4 4-bit (blocks of 64) dequantized from the packed weights",
    "ct": "compressed-tensors 4-bit (group 128) dequantized from the packed weights",
    "ct_asym": "compressed-tensors 4-bit (group 32, act-order) dequantized from the packed weights",
    "ct_int8": "compressed-tensors 8-bit (per channel) dequantized from the packed weights",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    base = build_llama(3, **SHAPE)
    paths = {"base": write_safetensors_dir(base, root / "base", dtype="F16")}
    paths["other"] = write_safetensors_dir(build_llama(4, **SHAPE), root / "other", dtype="F16")
    for name, kw in VARIANTS.items():
        method = kw.pop("method")
        paths[name] = write_safetensors_dir(quantize_llama(base, str(method), **kw), root / name)
        kw["method"] = method
    return paths


def _fp(path):
    out = compute(str(path), Options(use_cache=False))
    assert out.error is None, out.error
    return out.fingerprint


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sigma_curves_from_packed_weights_match_the_parent(models, name):
    base, quant = _fp(models["base"]), _fp(models[name])
    assert LABELS[name] in quant.notes
    for role in ("q", "k", "v", "o"):
        a, b = np.array(base.curves[role], float), np.array(quant.curves[role], float)
        assert len(b) == 4
        assert np.allclose(a, b, rtol=0.12 if name == "gptq3" else 0.06), (role, a, b)


@pytest.mark.parametrize("name", ["gptq", "awq", "nf4", "ct"])
def test_inspect_names_how_the_weights_are_read(models, name):
    info = inspect(str(models[name]), Options(use_cache=False))
    assert LABELS[name] in info.notes
    assert info.tensors_by_role["q"] == 4


@pytest.mark.parametrize("name", ["gptq", "awq", "nf4", "ct", "ct_int8"])
def test_a_quantized_copy_is_related_to_its_parent_and_not_to_another_model(models, name):
    v = evidence.verdict(str(models[name]), str(models["base"]), Options(use_cache=False))
    assert v.related and v.verdict == "quantized_copy", v
    assert v.signals["elementwise"].available and v.signals["elementwise"].value > 0.95
    w = evidence.verdict(str(models[name]), str(models["other"]), Options(use_cache=False))
    assert not w.related, w


def test_a_small_budget_reads_gptq_matrices_whole_for_fewer_layers_and_says_so(models):
    ckpt = open_model(str(models["gptq"]), Options(use_cache=False))
    try:
        probe = build_probe(ckpt, "gptq", budget=150_000)
    finally:
        ckpt.close()
    note = next(n for n in probe.notes if n.startswith("GPTQ stores W transposed"))
    n_q = len(probe.matrices["q"])
    assert 1 <= n_q < 4 and f"q, k, v, o of {n_q} of 4 layers" in note
    assert len(probe.matrices.get("gate", {})) <= n_q
    assert probe.bytes_read <= 150_000


@pytest.mark.parametrize("name", ["gptq3", "awq", "nf4", "ct_asym"])
def test_a_sampled_sigma_reads_a_part_of_the_packed_units_and_agrees_with_exact(models, name):
    from fingerprint.roles import assign_roles
    from fingerprint.stats import compute_stats, make_plan

    ckpt = open_model(str(models[name]), Options(use_cache=False))
    try:
        rmap = assign_roles(ckpt.tensors, ckpt.config)
        exact = compute_stats(rmap, make_plan(rmap, "exact"))
        plan = make_plan(rmap, "sampled", sample_budget=20_000)
        assert plan.tensor_bytes < make_plan(rmap, "exact").tensor_bytes * 0.6
        sampled = compute_stats(rmap, plan)
    finally:
        ckpt.close()
    for role in ("q", "k", "v", "o"):
        for layer, s in sampled[role].items():
            e = exact[role][layer]
            assert s.n < e.n and s.std_err > 0
            assert abs(s.std - e.std) <= max(4 * s.std_err, 0.1 * e.std), (role, layer, s, e)


@pytest.mark.parametrize("method", ["gptq", "nf4", "ct_asym"])
def test_exact_sigma_reads_the_scales_of_a_span_once_not_once_per_decoded_piece(tmp_path, monkeypatch, method):
    """A span of packed units is decoded in small pieces; its scales, zeros, g_idx or absmax are read with one
    request each for the whole span (a 638 MB GPTQ repo took 3,908 requests before, 259 after)."""
    from fingerprint.sources.local import LocalFile

    kw = dict(VARIANTS["gptq" if method == "gptq" else method])
    kind = str(kw.pop("method"))
    base = build_llama(5, hidden=512, layers=1, heads=4, kv_heads=2, intermediate=512, vocab=64)
    path = write_safetensors_dir(quantize_llama(base, kind, **kw), tmp_path / method)
    reads: list[tuple[int, int]] = []
    fetch = LocalFile.fetch
    monkeypatch.setattr(LocalFile, "fetch", lambda self, o, n: reads.append((o, n)) or fetch(self, o, n))
    out = compute(str(path), Options(mode="exact", use_cache=False))
    assert out.error is None, out.error
    unique = {r for r in reads}
    assert len(reads) == len(unique), "a byte range was read twice"
    # q, k, v, o: the packed part plus its side parts (3; double-quantized bitsandbytes: absmax, nested absmax and
    # the two code books); the norm; config.json and the header (2 reads); bitsandbytes: the 7 quant states
    sides = 4 if method == "nf4" else 3
    assert len(reads) <= 4 * (1 + sides) + 1 + 3 + (7 if method == "nf4" else 0), sorted(reads)

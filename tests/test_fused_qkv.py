"""Fused QKV in every layout, and MLA, in lineage verdicts: one model with separate q/k/v is fused the way GPT-NeoX,
Falcon and GPT-2 store it (tests/layouts/fused.py); the probe must split each back into the unfused Q, K and V (rows
and σ-curves), so element-wise and AWM work on these models, and say how it read them. MLA models get their
documented Q/K stand-ins and the caveat on the verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from layouts import FUSERS, build_deepseek_v2, build_qwen2, noisy_copy, write_safetensors_dir

from fingerprint import Options, inspect
from fingerprint.fingerprinting import open_model
from fingerprint.lineage import evidence
from fingerprint.lineage.plan import PROBE_BYTES, ProbeBudget
from fingerprint.lineage.probe import Probe
from fingerprint.lineage.reading import build_probe
from fingerprint.lineage.sigma import fingerprint_of
from fingerprint.lineage.signals import elementwise_signal
from fingerprint.roles import MLA_STAND_INS

KV_HEADS = {"gpt_neox": 8, "falcon_grouped": 2, "falcon_multi_query": 1, "gpt2": 8}
LAYOUT_WORDS = {
    "gpt_neox": "fused QKV (interleaved per head, [q, k, v] of each head in turn, as GPT-NeoX and BLOOM store it)",
    "falcon_grouped": "fused QKV (Falcon's grouped layout: per KV group its query heads, then one K and one V head)",
    "falcon_multi_query": "fused QKV ([Q | K | V] blocks)",
    "gpt2": "fused QKV (GPT-2 Conv1D c_attn, stored (in, out): Q, K and V are [Q | K | V] blocks of columns)",
}
BUDGETS = {"exact": ProbeBudget(bytes=PROBE_BYTES), "sampled": ProbeBudget(bytes=300_000, slot_elements=512)}
LAYERS = 4


def _unfused(seed: int, layout: str):
    return build_qwen2(seed, hidden=64, layers=LAYERS, heads=8, kv_heads=KV_HEADS[layout], vocab=256)


def _probe(path: Path, budget: ProbeBudget) -> Probe:
    ckpt = open_model(str(path), Options(use_cache=False))
    try:
        return build_probe(ckpt, str(path), budget=budget)
    finally:
        ckpt.close()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Per layout: the unfused model, the same model fused, a light fine-tune of the fused model and an
    independently drawn fused model, as safetensors folders."""
    root = tmp_path_factory.mktemp("fused")
    out = {}
    for layout, fuse in FUSERS.items():
        src = _unfused(1, layout)
        fused = fuse(src)
        out[layout] = {
            "unfused": write_safetensors_dir(src, root / layout / "unfused"),
            "fused": write_safetensors_dir(fused, root / layout / "fused"),
            "fine_tune": write_safetensors_dir(noisy_copy(fused, 0.05, seed=9), root / layout / "fine_tune"),
            "independent": write_safetensors_dir(fuse(_unfused(2, layout)), root / layout / "independent"),
            "truth": fused.attention,
        }
    return out


@pytest.mark.parametrize("budget", sorted(BUDGETS))
@pytest.mark.parametrize("layout", sorted(FUSERS))
def test_split_rows_and_sigma_are_those_of_the_unfused_model(written, layout, budget):
    models = written[layout]
    fused, unfused = (_probe(models[k], BUDGETS[budget]) for k in ("fused", "unfused"))
    assert fused.mode == unfused.mode == budget
    for role in ("q", "k", "v", "o"):
        assert sorted(fused.matrices[role]) == list(range(LAYERS)), role
        for layer, f in fused.matrices[role].items():
            u, truth = unfused.matrices[role][layer], models["truth"][layer][role]
            if layout == "gpt2":  # Conv1D: stored (in, out), read by input dimension
                assert f.transposed and f.shape == truth.shape[::-1]
                np.testing.assert_array_equal(f.data, truth.T[f.rows])
            else:  # rows of the same matrix at the unfused model's positions (the smaller sample inside the larger)
                assert f.shape == u.shape == truth.shape
                np.testing.assert_array_equal(f.data, truth[f.rows])
                small, large = sorted((f.rows, u.rows), key=len)
                assert np.isin(small, large).all()
    # element-wise finds the same weights at the same positions, Conv1D against (out, in) included
    same = elementwise_signal(fused, unfused, [(i, i) for i in range(LAYERS)])
    assert same.available and min(same.detail["per_kind"][k] for k in ("q", "k", "v", "o")) == pytest.approx(1.0)
    if layout in ("gpt_neox", "gpt2"):  # fused biases split alike
        for role in ("q_bias", "k_bias", "v_bias"):
            for layer, vec in unfused.vectors[role].items():
                np.testing.assert_array_equal(fused.vectors[role][layer], vec)
    # σ from the probe's rows: the unfused model's curves (read whole: equal; sampled, each model's budget giving it
    # more or fewer rows of the same matrices: within the jackknife errors)
    sf, su = fingerprint_of(fused), fingerprint_of(unfused)
    assert sf is not None and su is not None
    for role in ("q", "k", "v", "o"):
        for got, want, err_f, err_u in zip(
            sf.curves[role], su.curves[role], sf.stats[role]["std_err"], su.stats[role]["std_err"]
        ):
            if budget == "sampled":
                assert abs(got - want) <= 5 * np.hypot(err_f, err_u) + 1e-9, role
            else:
                assert got == pytest.approx(want, rel=1e-6), role
    assert f"{LAYOUT_WORDS[layout]} split into Q, K and V rows" in fused.notes


@pytest.mark.parametrize("budget", sorted(BUDGETS))
@pytest.mark.parametrize("layout", sorted(FUSERS))
def test_a_fine_tune_is_related_and_an_independent_model_is_not(written, layout, budget):
    models = written[layout]
    opts = Options(use_cache=False)
    related = evidence.verdict(str(models["fused"]), str(models["fine_tune"]), opts, budget=BUDGETS[budget])
    s = related.signals
    assert s["elementwise"].available and s["awm"].available, related.not_checked
    assert {"q", "k", "v", "o"} <= set(s["elementwise"].detail["per_kind"])
    assert s["elementwise"].value > 0.99 and s["awm"].value > 0.9
    assert related.related and related.verdict == "fine_tune", related.because
    assert any(LAYOUT_WORDS[layout] in c for c in related.caveats)

    unrelated = evidence.verdict(str(models["fused"]), str(models["independent"]), opts, budget=BUDGETS[budget])
    s = unrelated.signals
    assert s["elementwise"].available and s["awm"].available, unrelated.not_checked
    assert abs(s["elementwise"].value) < 0.1 and s["awm"].value < 0.5
    assert not unrelated.related and unrelated.verdict == "no_evidence", unrelated.because


def test_inspect_says_how_a_fused_qkv_is_split(written):
    for layout in ("gpt_neox", "gpt2"):
        notes = inspect(str(written[layout]["fused"]), Options(use_cache=False)).notes
        assert f"{LAYOUT_WORDS[layout]} split into Q, K and V" in notes, notes


@pytest.fixture(scope="module")
def mla(tmp_path_factory):
    root = tmp_path_factory.mktemp("mla")
    base = build_deepseek_v2(1)
    return {
        "base": write_safetensors_dir(base, root / "base"),
        "fine_tune": write_safetensors_dir(noisy_copy(base, 0.05, seed=9), root / "fine_tune"),
        "independent": write_safetensors_dir(build_deepseek_v2(2), root / "independent"),
        "layout": base,
    }


def test_mla_down_projections_stand_in_for_q_and_k(mla):
    probe = _probe(mla["base"], BUDGETS["exact"])
    for role, stand_in in (("q", "q_a"), ("k", "kv_a")):
        for layer, s in probe.matrices[role].items():
            np.testing.assert_array_equal(s.data, mla["layout"].attention[layer][stand_in].astype(np.float32))
    assert MLA_STAND_INS in probe.notes
    assert MLA_STAND_INS in inspect(str(mla["base"]), Options(use_cache=False)).notes

    opts = Options(use_cache=False)
    related = evidence.verdict(str(mla["base"]), str(mla["fine_tune"]), opts)
    s = related.signals
    assert s["awm"].available and s["awm"].value > 0.9
    assert {"q", "k"} <= set(s["elementwise"].detail["per_kind"])
    assert related.related
    assert any(MLA_STAND_INS in c for c in related.caveats)

    unrelated = evidence.verdict(str(mla["base"]), str(mla["independent"]), opts)
    assert unrelated.signals["awm"].available and not unrelated.related
    assert any(MLA_STAND_INS in c for c in unrelated.caveats)


def test_a_conv1d_probe_keeps_its_orientation_on_disk(written, tmp_path):
    probe = _probe(written["gpt2"]["fused"], BUDGETS["sampled"])
    path = tmp_path / "p.npz"
    probe.save(path)
    again = Probe.load(path)
    for role in ("q", "k", "v", "o", "up", "down"):
        assert all(s.transposed for s in again.matrices[role].values()), role
    assert again.embedding_rows is not None and not again.embedding_rows.transposed

"""Sampled mode (within its stated error, deterministic, bounded reads), mode choice, and the cache."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3

import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import save_file

import fingerprint.stats as stats
from fingerprint import Options, Store, compute
from fingerprint.result import SCHEMA_VERSION, Fingerprint

HIDDEN, LAYERS, KV = 384, 6, 128


def write_llama_bf16(path, seed=0):
    """A Llama-layout bf16 model whose rows have uneven scales, so sampling is not trivially exact."""
    rng = np.random.default_rng(seed)
    sd = {"model.embed_tokens.weight": rng.normal(0, 0.02, (512, HIDDEN))}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        for name, rows in (("q_proj", HIDDEN), ("k_proj", KV), ("v_proj", KV), ("o_proj", HIDDEN)):
            row_scale = rng.uniform(0.5, 1.5, (rows, 1)) * (0.02 + 0.004 * np.sin(i + len(name)))
            sd[p + f"self_attn.{name}.weight"] = rng.normal(0, 1, (rows, HIDDEN)) * row_scale
        sd[p + "mlp.up_proj.weight"] = rng.normal(0, 0.02, (256, HIDDEN))
        sd[p + "input_layernorm.weight"] = 1 + rng.normal(0, 0.05, HIDDEN)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.astype(ml_dtypes.bfloat16) for k, v in sd.items()}, str(path / "model.safetensors"))
    (path / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlamaForCausalLM"],
                "model_type": "llama",
                "hidden_size": HIDDEN,
                "num_hidden_layers": LAYERS,
                "num_attention_heads": 6,
                "num_key_value_heads": 2,
            }
        )
    )
    return path


@pytest.fixture
def model(tmp_path):
    return write_llama_bf16(tmp_path / "m")


def test_sampled_is_within_its_stated_error(model, monkeypatch):
    monkeypatch.setattr(stats, "SAMPLE_BUDGET", 600_000)  # force real sampling on a small model
    exact = compute(str(model), Options(mode="exact", use_cache=False)).fingerprint
    sampled = compute(str(model), Options(mode="sampled", use_cache=False)).fingerprint
    assert sampled.mode == "sampled" and exact.mode == "exact"
    assert sampled.bytes_read < 0.5 * exact.bytes_read
    assert any("sampled mode" in n for n in sampled.notes)
    inside = total = 0
    for role in ("q", "k", "v", "o"):
        e, s = np.array(exact.curves[role]), np.array(sampled.curves[role])
        se = np.array(sampled.stats[role]["std_err"])
        assert np.all(se > 0), "every sampled value carries a standard error"
        assert np.all(np.array(exact.stats[role]["std_err"]) == 0)
        assert np.max(np.abs(s - e) / e) < 0.15  # a tiny budget on rows of very uneven scale
        inside += int(np.sum(np.abs(s - e) <= 3 * se))
        total += len(e)
    assert inside >= 0.85 * total, f"only {inside}/{total} exact values within 3 standard errors"


def test_sampled_positions_are_deterministic_and_depend_on_shape_role_layer(model, monkeypatch):
    monkeypatch.setattr(stats, "SAMPLE_BUDGET", 600_000)
    a = compute(str(model), Options(mode="sampled", use_cache=False)).fingerprint
    b = compute(str(model), Options(mode="sampled", use_cache=False)).fingerprint
    assert a.curves == b.curves and a.bytes_read == b.bytes_read
    blocks = stats.sample_blocks(1000, 80, (1000, 64), "q", 3)
    assert blocks == stats.sample_blocks(1000, 80, (1000, 64), "q", 3)
    assert blocks != stats.sample_blocks(1000, 80, (1000, 64), "q", 4)
    assert len(blocks) == stats.SAMPLE_BLOCKS and all(0 <= r0 < r1 <= 1000 for r0, r1 in blocks)
    starts = [r0 for r0, _ in blocks]
    assert starts == sorted(starts) and all(b0[1] <= b1[0] for b0, b1 in itertools.pairwise(blocks)), (
        "blocks do not overlap"
    )
    assert starts[0] < 125 and starts[-1] >= 875, "blocks spread over the whole tensor"


@pytest.mark.parametrize("budget", [4_000, 40_000])
def test_a_tiny_budget_never_claims_an_exact_sigma_it_did_not_read(model, monkeypatch, budget):
    """Under a budget of a row or two per tensor, every tensor not read whole still gets a standard error (a single
    block would have given 0, and the pair would have been called exact)."""
    monkeypatch.setattr(stats, "SAMPLE_BUDGET", budget)
    fp = compute(str(model), Options(mode="sampled", use_cache=False)).fingerprint
    assert fp.mode == "sampled"
    for role in ("q", "k", "v", "o"):
        errors = [e for e in fp.stats[role]["std_err"] if e is not None]
        assert errors and all(e > 0 for e in errors), (role, errors)
    assert stats.sample_blocks(100, 1, (100, 64), "q", 0) == [
        (r0, r0 + 1) for r0, _ in stats.sample_blocks(100, 1, (100, 64), "q", 0)
    ]
    assert len(stats.sample_blocks(100, 1, (100, 64), "q", 0)) == 2
    assert len(stats.sample_blocks(10, 9, (10, 64), "q", 0, max_blocks=8)) >= 2


def test_auto_mode_chooses_by_size(model, monkeypatch):
    assert compute(str(model), Options(use_cache=False)).fingerprint.mode == "exact"
    monkeypatch.setattr(stats, "EXACT_LIMIT", 1000)
    assert compute(str(model), Options(use_cache=False)).fingerprint.mode == "sampled"


def test_store_round_trip_keys_and_auto_lookup(model, tmp_path):
    store = Store(tmp_path / "s.sqlite")
    first = compute(str(model), Options(mode="exact", store=store))
    assert not first.cached
    again = compute(str(model), Options(mode="exact", store=store))
    assert again.cached and again.fingerprint.curves == first.fingerprint.curves
    assert compute(str(model), Options(mode="auto", store=store)).cached  # auto accepts a stored exact
    assert not compute(str(model), Options(mode="sampled", store=store)).cached  # another mode is another entry
    # editing the file changes its sha256: the old entry is not used
    with open(model / "model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x00\x00\x00")
    assert not compute(str(model), Options(mode="exact", store=store)).cached


def test_failed_model_leaves_no_cache_entry(tmp_path):
    model = write_llama_bf16(tmp_path / "m")
    data = bytearray((model / "model.safetensors").read_bytes())
    data[-64:] = np.full(32, np.nan, dtype=ml_dtypes.bfloat16).tobytes()  # last tensor: v_proj of the last layer
    (model / "model.safetensors").write_bytes(bytes(data))
    store = Store(tmp_path / "s.sqlite")
    out = compute(str(model), Options(store=store))
    assert out.error is not None and "NaN" in str(out.error)
    rows = sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0]
    assert rows == 0


def test_json_round_trip_and_schema_version(model):
    fp = compute(str(model), Options(use_cache=False)).fingerprint
    d = json.loads(json.dumps(fp.to_json()))
    for key in (
        "schema_version",
        "model",
        "revision",
        "architecture",
        "layers",
        "mode",
        "curves",
        "bytes_read",
        "tool_version",
    ):
        assert key in d
    assert d["schema_version"] == SCHEMA_VERSION
    assert Fingerprint.from_json(d).curves == fp.curves
    with pytest.raises(ValueError):
        Fingerprint.from_json({**d, "schema_version": 999})


def test_cancel_stops_models_not_started_and_hashing(model):
    import threading

    from fingerprint import compute_many
    from fingerprint.errors import Cancelled

    cancel = threading.Event()
    cancel.set()
    outcomes = compute_many([str(model), str(model)], Options(use_cache=False, cancel=cancel))
    assert all(isinstance(o.error, Cancelled) for o in outcomes)
    from fingerprint.checkpoint import sha256_file

    with pytest.raises(Cancelled):
        sha256_file(model / "model.safetensors", cancel=cancel)


def test_sampled_requests_are_capped_for_deep_models(model, monkeypatch):
    """Every sample block is one Range request, and the Hub rate-limits requests: a model with
    many tensors gets fewer blocks per tensor, never fewer than MIN_SAMPLE_BLOCKS."""
    from fingerprint.checkpoint import open_checkpoint
    from fingerprint.reference import parse_reference
    from fingerprint.roles import assign_roles

    monkeypatch.setattr(stats, "SAMPLE_BUDGET", 600_000)
    ckpt = open_checkpoint(parse_reference(str(model)))
    rmap = assign_roles(ckpt.tensors, ckpt.config)
    free = stats.make_plan(rmap, "sampled")
    monkeypatch.setattr(stats, "SAMPLE_REQUESTS", 50)
    capped = stats.make_plan(rmap, "sampled")
    assert len(capped.jobs) < len(free.jobs)
    per_tensor = {}
    for job in capped.jobs:
        for p in job.spans:
            per_tensor[p.item.tensor.name] = per_tensor.get(p.item.tensor.name, 0) + 1
    sampled_counts = [n for n in per_tensor.values() if n > 1]
    assert sampled_counts and max(sampled_counts) <= stats.MIN_SAMPLE_BLOCKS
    ckpt.close()


def test_exact_reads_above_a_servers_cap_are_sampled_with_a_note(model):
    out = compute(str(model), Options(mode="exact", use_cache=False, max_exact_bytes=100_000)).fingerprint
    assert out.mode == "sampled" and any("cap" in n for n in out.notes)  # the cap's setting: tests/test_dashboard.py


# ---------------------------------------------------------------------------------------------- a cache that heals


@pytest.mark.parametrize(
    "content", [b"SQLite format 3\x00" + b"\x00" * 50, os.urandom(4096)], ids=["truncated", "random"]
)
def test_a_damaged_cache_is_moved_aside_and_rebuilt(tmp_path, content, fixtures):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(content)
    store = Store(path)
    assert "moved aside" in store.note and "\n" not in store.note
    assert [p.name for p in tmp_path.iterdir() if ".damaged-" in p.name]
    out = compute(str(fixtures / "stories260k"), Options(store=store))
    assert out.error is None and Store(path).get(*_key_of(out)) is not None


def test_an_unusable_cache_location_means_running_without_it(tmp_path, fixtures):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = Store(blocker / "cache.sqlite")
    assert "running without a persistent cache" in store.note
    out = compute(str(fixtures / "stories260k"), Options(store=store))
    assert out.error is None


@pytest.mark.parametrize(
    "body",
    ["{not json", json.dumps({"schema_version": 1, "model": 3}), "__wrong_types__"],
    ids=["invalid-json", "missing-fields", "wrong-types"],
)
def test_cache_rows_that_fail_validation_are_recomputed_never_served(tmp_path, fixtures, body):
    store = Store(tmp_path / "cache.sqlite")
    model = str(fixtures / "stories260k")
    first = compute(model, Options(store=store))
    key, revision, _mode = _key_of(first)
    if body == "__wrong_types__":
        bad = first.fingerprint.to_json()
        bad["curves"] = {"q": "not a list"}
        body = json.dumps(bad)
    with store._db:
        store._db.execute("UPDATE fingerprints SET body=? WHERE key=? AND revision=?", (body, key, revision))
    again = compute(model, Options(store=store))
    assert again.error is None and not again.cached
    assert again.fingerprint.curves == first.fingerprint.curves


def _key_of(out) -> tuple[str, str, str]:
    return "local", out.fingerprint.revision, out.fingerprint.mode


# ---------------------------------------------------------------- intervals of r from sampled σ


@pytest.fixture(scope="module")
def demo_exact_and_sampled():
    """The demo models read exactly, and read in sampled mode under a budget that samples the two babyllamas."""
    from fingerprint.demo import demo_paths

    exact = [compute(p, Options(mode="exact", use_cache=False)).fingerprint for p in demo_paths()]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stats, "SAMPLE_BUDGET", 300_000)
        sampled = [compute(p, Options(mode="sampled", use_cache=False)).fingerprint for p in demo_paths()]
    return exact, sampled


def test_interval_of_a_sampled_pair_holds_the_exact_r(demo_exact_and_sampled):
    from fingerprint.compare import compare_pair, role_interval

    exact, sampled = demo_exact_and_sampled
    checked, missed = 0, []
    for i in (2, 3):  # babyllama-tok361, babyllama-tok105: sampled with errors (the others are read whole)
        assert sampled[i].bytes_read < 0.5 * exact[i].bytes_read
        for j in range(4):
            if i == j:
                continue
            c, truth = compare_pair(sampled[i], exact[j]), compare_pair(exact[i], exact[j])
            assert not c.exact and set(c.intervals) == {*(r for r, v in c.per_role.items() if v is not None), "mean"}
            for role in c.intervals:
                low, high = role_interval(c, role)
                measured, true_r = (
                    (c.score, truth.score) if role == "mean" else (c.per_role[role], truth.per_role[role])
                )
                assert -1 <= low <= measured <= high <= 1
                if not low - 1e-12 <= true_r <= high + 1e-12:
                    missed.append((i, j, role, low, high, true_r, max(low - true_r, true_r - high)))
                checked += 1
            assert role_interval(c)[1] - role_interval(c)[0] > 0.01  # the score of a sampled pair is not exact
    assert checked >= 30
    # a 95% interval may miss now and then (numerics shift a borderline case between machines), but not often and
    # never by much: intervals that were simply too narrow would miss many, by more
    assert len(missed) <= 0.1 * checked, missed
    assert all(by < 0.01 for *_, by in missed), missed


def test_exact_pairs_have_no_interval_and_intervals_are_deterministic(demo_exact_and_sampled):
    from fingerprint.compare import compare_pair, pair_matrix, role_interval

    exact, sampled = demo_exact_and_sampled
    c = compare_pair(exact[2], exact[3])
    assert c.exact and c.intervals == {} and role_interval(c) is None
    # stories260k is read whole even in sampled mode: its σ carry no error, so its pairs are exact too
    assert sampled[0].mode == "sampled" and compare_pair(sampled[0], sampled[1]).exact
    again = compare_pair(sampled[2], sampled[3])
    assert again.intervals == compare_pair(sampled[2], sampled[3]).intervals and not again.exact
    assert pair_matrix(sampled)[2][3].intervals == again.intervals  # the matrix gives the same numbers as one pair


def test_intervals_for_fifty_sampled_models_are_cheap():
    import dataclasses
    import time

    from fingerprint.compare import pair_matrix

    rng = np.random.default_rng(0)
    base = rng.normal(size=32)
    fps = []
    for i in range(50):
        curves = {r: list(5 + base + rng.normal(scale=0.5, size=32)) for r in ("q", "k", "v", "o")}
        fps.append(
            Fingerprint(
                model=f"org/m{i}",
                revision="r",
                source="hub",
                format="safetensors",
                architecture="LlamaForCausalLM",
                layers=32,
                mode="sampled",
                curves=curves,
                stats={r: {"std_err": [0.05] * 32} for r in curves},
                bytes_read=1,
                bytes_total=2,
                tool_version="t",
                computed_at="now",
            )
        )
    exact = [dataclasses.replace(fp, mode="exact", stats={}) for fp in fps]
    t0 = time.process_time()
    pair_matrix(exact)
    t_exact = time.process_time() - t0
    t0 = time.process_time()
    pairs = pair_matrix(fps)
    t_sampled = time.process_time() - t0
    assert all(not c.exact and "mean" in c.intervals for row in pairs for c in row)
    assert t_sampled < 2.0 and t_sampled < 4 * t_exact + 0.5, (t_sampled, t_exact)

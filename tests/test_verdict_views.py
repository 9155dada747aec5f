"""The answer over many models: the verdict matrix and the pairs table built from real verdicts of the demo
models, and what computing verdicts will cost before anything is read (the probe cache, the Hub's requests)."""

from __future__ import annotations

import dataclasses

import pytest

from fingerprint import Fingerprint, Options, compute_many
from fingerprint.demo import demo_paths
from fingerprint.lineage.cost import probe_cost
from fingerprint.lineage.evidence import get_probe, verdicts
from fingerprint.lineage.plan import PROBE_BYTES, PROBE_REQUESTS
from fingerprint.present.evidence_words import probe_cost_text, strength_phrase, strength_text
from fingerprint.present.labels import display_names
from fingerprint.present.tables import verdict_rows
from fingerprint.present.verdict_matrix import verdict_grid, verdict_matrix_figure

COPY = ("stories260k", "stories260k-q8_0.gguf")
TWINS = ("babyllama-tok361", "babyllama-tok105")  # trained independently with the same recipe


@pytest.fixture(scope="module")
def demo():
    """(keys, names, fingerprints by key, verdicts of every pair)."""
    keys = demo_paths()
    outs = compute_many(keys, Options(use_cache=False))
    fps = {k: o.fingerprint for k, o in zip(keys, outs, strict=True)}
    names = display_names(list(fps.values()))
    pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]]
    run = verdicts(pairs, Options(use_cache=False), fingerprints=fps, names=dict(zip(keys, names, strict=True)))
    assert not run.failed_models and not run.failed_pairs
    return keys, names, fps, run.verdicts


def key_of(keys, names, name):
    return keys[names.index(name)]


def test_the_verdict_matrix_writes_each_relation_in_its_cell(demo):
    keys, names, _, found = demo
    fig = verdict_matrix_figure(names, verdict_grid(keys, found)).to_plotly_json()
    heat = next(t for t in fig["data"] if t["type"] == "heatmap")
    text = {(a, b): heat["text"][i][j] for i, a in enumerate(heat["y"]) for j, b in enumerate(heat["x"])}
    assert text[COPY] == "quantized<br>copy"  # two lines: a phone's cell is narrow
    text = {k: t.replace("<br>", " ") for k, t in text.items()}
    hover = {(a, b): heat["customdata"][i][j] for i, a in enumerate(heat["y"]) for j, b in enumerate(heat["x"])}
    assert text[COPY] == text[COPY[::-1]] == "quantized copy"
    assert text[TWINS] == "no evidence"  # though their σ-curves correlate at 0.95
    assert text[(COPY[0], COPY[0])] == "itself"
    assert "consistent with a quantized copy" in hover[COPY] and "how strong:" in hover[COPY]
    assert "not proof of independence" in hover[TWINS]
    # clustered: the copy sits next to its original
    assert abs(heat["x"].index(COPY[0]) - heat["x"].index(COPY[1])) == 1
    assert fig["layout"]["title"]["text"].startswith("Verdicts")


def test_a_pair_not_computed_or_failed_says_so_in_its_cell(demo):
    keys, names, _, found = demo
    a, b = key_of(keys, names, TWINS[0]), key_of(keys, names, TWINS[1])
    partial = {k: v for k, v in found.items() if set(k) != {a, b}}
    grid = verdict_grid(keys, partial)
    assert grid[keys.index(a)][keys.index(b)] == ("not_computed", None, "not computed yet")
    grid = verdict_grid(keys, partial, {(a, b): "babyllama-tok361: the file is truncated"})
    assert grid[keys.index(b)][keys.index(a)][2] == "could not be computed: babyllama-tok361: the file is truncated"


def test_pairs_table_puts_related_pairs_first_and_follows_the_signal_chosen(demo):
    keys, names, _, found = demo
    rows = verdict_rows(keys, names, found)
    assert len(rows) == 6
    assert list(rows[0])[:4] == ["model A", "model B", "verdict", "how strong"]
    assert (rows[0]["model A"], rows[0]["model B"], rows[0]["verdict"]) == (*COPY, "quantized copy")
    assert [r["verdict"] for r in rows].count("quantized copy") == 1
    twins = next(r for r in rows if {r["model A"], r["model B"]} == set(TWINS))
    assert twins["verdict"] == "no evidence" and twins["how strong"].startswith("below")
    assert float(twins["σ-curves"]) > 0.9  # shown next to the verdict it does not decide
    by_sigma = verdict_rows(keys, names, found, sort_by="sigma")
    sigma = [float(r["σ-curves"]) for r in by_sigma if r["σ-curves"] != "n/a"]
    assert sigma == sorted(sigma, reverse=True)
    by_el = verdict_rows(keys, names, found, sort_by="elementwise")
    assert by_el[-1]["Element-wise"] == "n/a"  # pairs of different widths have no element-wise value: last
    # without a verdict: the row says so, at the end
    partial = {k: v for k, v in found.items() if k != (keys[0], keys[1])}
    assert verdict_rows(keys, names, partial)[-1]["verdict"] == "not computed yet"


def test_strength_is_said_in_words_before_any_number(demo):
    keys, names, _, found = demo
    copy = found[(key_of(keys, names, COPY[0]), key_of(keys, names, COPY[1]))]
    twins = found[(key_of(keys, names, TWINS[0]), key_of(keys, names, TWINS[1]))]
    assert strength_phrase(copy).endswith("unrelated pair seen")
    assert strength_text(copy).startswith(strength_phrase(copy) + " (strength ")
    assert "strength" not in strength_text(twins)  # no number next to 'no evidence'


def test_cost_counts_only_the_models_whose_sample_is_not_read_yet(demo, tmp_path):
    keys, names, fps, _ = demo
    opts = Options()  # the test's own cache (conftest)
    two = {k: fps[k] for k in keys[:2]}
    cost = probe_cost(two, opts=opts)
    assert cost.to_read == tuple(keys[:2])
    assert cost.bytes == sum(min(fp.bytes_total, PROBE_BYTES) for fp in two.values())
    assert cost.hub_models == 0 and cost.cheap(cost.bytes) and not cost.cheap(cost.bytes - 1)
    text = probe_cost_text(cost, dict(zip(keys, names, strict=True)))
    assert text.startswith(f"Reads a sample of 2 models' weights ({names[0]}, {names[1]}): at most ")
    assert "Hub" not in text
    # in memory, or read once into the probe cache: free
    assert probe_cost(two, have={keys[0]}, opts=opts).to_read == (keys[1],)
    get_probe(keys[1], opts, revision=fps[keys[1]].revision)
    assert probe_cost(two, have={keys[0]}, opts=opts).free
    assert probe_cost_text(probe_cost(two, have={keys[0]}, opts=opts), {}).startswith("Every model's sample")


def test_a_hub_model_is_never_read_unasked_and_its_requests_are_stated(demo):
    keys, _, fps, _ = demo
    small = fps[keys[0]]
    hub: Fingerprint = dataclasses.replace(small, model="org/tiny", source="hub", repo_id="org/tiny", revision="a" * 40)
    cost = probe_cost({"org/tiny": hub}, opts=Options())
    assert cost.hub_models == 1 and cost.hub_requests == PROBE_REQUESTS
    assert not cost.cheap(10**12)  # however small: its requests count against the Hub's rate limit
    text = probe_cost_text(cost, {"org/tiny": "org/tiny"})
    assert f"up to {PROBE_REQUESTS:,} requests to the Hugging Face Hub" in text

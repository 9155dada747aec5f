"""Figure builders (fingerprint.plots) and exports (fingerprint.export), without streamlit."""

from __future__ import annotations

import csv
import io
import json
import time

import numpy as np
import pytest

from fingerprint import Fingerprint, Options, compute_many, compare_pair
from fingerprint.demo import DEMO_MODELS, PRESETS, demo_name, demo_paths
from fingerprint.export import (
    curves_csv,
    fingerprints_json,
    html_report,
    matrix_csv,
    pair_caveats,
    pairs_rows,
    strength,
)
from fingerprint.plots import (
    cluster_order,
    curves_figure,
    display_names,
    heatmap_figure,
    pair_figure,
    roles_present,
)


def fake(model: str, curves: dict[str, list[float]], *, source="hub", fmt="safetensors", mode="exact", arch="LlamaForCausalLM", err=None) -> Fingerprint:
    n = len(next(iter(curves.values())))
    stats = {r: {"std_err": [err or 0.0] * n} for r in curves}
    return Fingerprint(
        model=model, revision=(model.encode().hex() * 40)[:40], source=source, format=fmt, architecture=arch,
        layers=n, mode=mode, curves=curves, stats=stats, bytes_read=1, bytes_total=2, tool_version="t",
        computed_at="2026-01-01T00:00:00+00:00", repo_id=model if source == "hub" else None,
    )


def random_fps(n_models: int, layers: int = 24, seed: int = 0) -> list[Fingerprint]:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=layers)
    out = []
    for i in range(n_models):
        curve = base + rng.normal(scale=0.3 + i % 3, size=layers)
        out.append(fake(f"org/model-{i}", {r: list(curve + rng.normal(scale=0.1, size=layers) + 5) for r in "qkvo"}))
    return out


@pytest.fixture(scope="module")
def demo_fps() -> list[Fingerprint]:
    outs = compute_many(demo_paths(), Options(use_cache=False))
    assert all(o.fingerprint for o in outs)
    return [o.fingerprint for o in outs]


def heat_trace(fig) -> dict:
    return next(t for t in fig.to_plotly_json()["data"] if t["type"] == "heatmap")


def test_demo_set_and_presets():
    assert all(m.absolute.exists() for m in DEMO_MODELS)
    assert [demo_name(p) for p in demo_paths()] == [m.name for m in DEMO_MODELS]
    ids = {m for p in PRESETS for m in p.models}
    assert {"IntervitensInc/pangu-pro-moe-model", "Qwen/Qwen2.5-14B", "meta-llama/Llama-2-7b-hf",
            "deepseek-ai/deepseek-llm-7b-base", "Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"} <= ids
    assert all(p.explanation for p in PRESETS)


def test_display_names_are_short_and_unique(demo_fps):
    assert display_names(demo_fps) == [m.name for m in DEMO_MODELS]
    a = fake("/data/a/model", {"q": [1, 2, 3]}, source="local")
    b = fake("/data/b/model", {"q": [1, 2, 3]}, source="local")
    h = fake("org/model", {"q": [1, 2, 3]})
    assert display_names([a, b, h]) == ["a/model", "b/model", "org/model"]


def test_heatmap_fixed_scale_and_clustered_order(demo_fps):
    fig = heatmap_figure(demo_fps, "mean", "clustered")
    t = heat_trace(fig)
    assert (t["zmin"], t["zmax"]) == (-1, 1)
    assert t["texttemplate"] == "%{text}"  # values written in cells for a small N
    x = t["x"]
    assert abs(x.index("babyllama-tok361") - x.index("babyllama-tok105")) == 1
    assert "resampl" in t["customdata"][0][1]  # hover says whether depths were resampled
    assert any(tr["type"] == "scatter" for tr in fig.to_plotly_json()["data"])  # the dendrogram
    t_in = heat_trace(heatmap_figure(demo_fps, "q", "input"))
    assert t_in["x"] == display_names(demo_fps)


def test_cluster_order_groups_blocks():
    m = np.array([[1, 0.1, 0.9, 0.1], [0.1, 1, 0.1, 0.95], [0.9, 0.1, 1, 0.1], [0.1, 0.95, 0.1, 1]])
    order, link = cluster_order(m)
    assert link is not None
    pos = {v: i for i, v in enumerate(order)}
    assert abs(pos[0] - pos[2]) == 1 and abs(pos[1] - pos[3]) == 1
    assert cluster_order(np.eye(2))[0] == [0, 1]


def test_fifty_models_are_comfortable():
    fps = random_fps(50)
    t0 = time.perf_counter()
    fig = heatmap_figure(fps)
    curves_figure(fps)
    rows = pairs_rows(fps)
    assert time.perf_counter() - t0 < 10
    t = heat_trace(fig)
    assert len(t["z"]) == 50 and t.get("texttemplate") is None  # no cell text at 50
    assert len(rows) == 50 * 49 // 2


def test_curves_mark_resampled_depths():
    a = fake("org/deep", {r: list(np.linspace(1, 2, 8) ** 2) for r in "qkvo"})
    b = fake("org/shallow", {r: list(np.linspace(1, 2, 4) ** 2) for r in "qkvo"})
    fig = curves_figure([a, b], normalise=True)
    traces = fig.to_plotly_json()["data"]
    shallow = [t for t in traces if t["legendgroup"] == "org/shallow"]
    assert shallow and all(t["line"]["dash"] == "dash" for t in shallow)
    assert "resampled" in shallow[0]["name"]
    assert fig.layout.xaxis.title.text.startswith("relative depth")
    c = compare_pair(a, b)
    assert c.resampled
    assert any("Different depths" in x for x in pair_caveats(a, b, c, "deep", "shallow"))
    pair_figure(a, b, "deep", "shallow", c)


def test_pair_caveats_quantized_and_sampled(demo_fps):
    st, gguf = demo_fps[0], demo_fps[1]
    cav = pair_caveats(st, gguf, compare_pair(st, gguf), "stories260k", "q8")
    assert any("GGUF" in x and "format gguf" in x for x in cav)
    assert not any("Different architectures" in x for x in cav)  # LlamaForCausalLM and llama are one family
    assert "not proof" in cav[-1]
    s = fake("org/s", {"q": [1.0, 2.0, 3.0, 2.5]}, mode="sampled", err=0.01)
    assert any("sampled mode" in x for x in pair_caveats(s, s, compare_pair(s, s), "s", "s"))
    assert strength(0.999).startswith("near-identical") and strength(0.95).startswith("very high")
    assert strength(None).startswith("undefined")


def test_exports_roundtrip(demo_fps):
    names = display_names(demo_fps)
    fig_t = heat_trace(heatmap_figure(demo_fps, "mean", "clustered", names))
    rows = list(csv.reader(io.StringIO(matrix_csv(demo_fps, "mean", "clustered", names))))
    assert rows[0][1:] == fig_t["x"]
    assert np.allclose([[float(v) for v in r[1:]] for r in rows[1:]], fig_t["z"], atol=1e-6)

    long = list(csv.DictReader(io.StringIO(curves_csv(demo_fps, names))))
    first = next(r for r in long if r["name"] == "stories260k" and r["role"] == "q" and r["layer"] == "0")
    assert float(first["sigma"]) == pytest.approx(demo_fps[0].curves["q"][0])

    back = [Fingerprint.from_json(d) for d in json.loads(fingerprints_json(demo_fps))]
    assert [f.curves for f in back] == [f.curves for f in demo_fps]
    assert all(f.revision.startswith("sha256:") for f in back)

    page = html_report(demo_fps, names=names, failures=["/x: no such file or folder."])
    assert page.startswith("<!DOCTYPE html>") and "plotly" in page.lower()
    assert page.count("<script") >= 3 and "<script src" not in page and len(page) > 1_000_000  # plotly.js inlined: works offline
    assert all(n in page for n in names) and "/x: no such file or folder." in page
    assert "not proof" in page


def test_roles_present_needs_two_models():
    a = fake("org/a", {"q": [1, 2, 3], "q_bias": [1, 3, 2]})
    b = fake("org/b", {"q": [1, 2, 3]})
    assert roles_present([a, b]) == ["q"]
    assert roles_present([a]) == ["q", "q_bias"]

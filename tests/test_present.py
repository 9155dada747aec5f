"""Presentation (fingerprint.present): labels, words, tables, figures, exports, the HTML report, static images;
without streamlit."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest

import fingerprint
from fingerprint import Fingerprint, Options, compare_pair, compute_many
from fingerprint.demo import DEMO_DIR, DEMO_MODELS, demo_name, demo_paths
from fingerprint.present.exports import curves_csv, fingerprints_json, matrix_csv, pairs_csv
from fingerprint.present.labels import display_names, roles_present
from fingerprint.present.ordering import cluster_order
from fingerprint.present.report import html_report
from fingerprint.present.sigma_figures import curves_figure, heatmap_figure, pair_figure
from fingerprint.present.sigma_words import certainty_sentence, interval_words, pair_caveats, r_words, strength
from fingerprint.present.tables import pairs_rows


def fake(
    model: str,
    curves: dict[str, list[float]],
    *,
    source="hub",
    fmt="safetensors",
    mode="exact",
    arch="LlamaForCausalLM",
    err=None,
) -> Fingerprint:
    n = len(next(iter(curves.values())))
    stats = {r: {"std_err": [err or 0.0] * n} for r in curves}
    return Fingerprint(
        model=model,
        revision=(model.encode().hex() * 40)[:40],
        source=source,
        format=fmt,
        architecture=arch,
        layers=n,
        mode=mode,
        curves=curves,
        stats=stats,
        bytes_read=1,
        bytes_total=2,
        tool_version="t",
        computed_at="2026-01-01T00:00:00+00:00",
        repo_id=model if source == "hub" else None,
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


def test_the_demo_models_ship_inside_the_package():
    assert all(m.absolute.exists() and m.absolute.is_relative_to(DEMO_DIR) for m in DEMO_MODELS)
    assert DEMO_DIR.parent == Path(fingerprint.__file__).parent
    assert [demo_name(p) for p in demo_paths()] == [m.name for m in DEMO_MODELS]


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
    t0 = time.process_time()  # CPU seconds: what other work on the machine does not change
    fig = heatmap_figure(fps)
    curves_figure(fps)
    rows = pairs_rows(fps)
    assert time.process_time() - t0 < 10
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
    bottom = fig.layout.xaxis4  # the panels are stacked: the x axis is named once, under the last one
    assert bottom.title.text.startswith("relative depth")
    c = compare_pair(a, b)
    assert c.resampled
    assert any("Different depths" in x for x in pair_caveats(a, b, c, "deep", "shallow"))
    pair_figure(a, b, "deep", "shallow", c)


def test_pair_caveats_quantized_and_sampled(demo_fps):
    st, gguf = demo_fps[0], demo_fps[1]
    cav = pair_caveats(st, gguf, compare_pair(st, gguf), "stories260k", "q8")
    assert any("GGUF" in x and "format gguf" in x for x in cav)
    assert not any("Different architectures" in x for x in cav)  # LlamaForCausalLM and llama are one family
    assert "never proof" in cav[-1]
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
    assert (
        page.count("<script") >= 3 and "<script src" not in page and len(page) > 1_000_000
    )  # plotly.js inlined: works offline
    assert all(n in page for n in names) and "/x: no such file or folder." in page
    assert "never proof" in page


def test_roles_present_needs_two_models():
    a = fake("org/a", {"q": [1, 2, 3], "q_bias": [1, 3, 2]})
    b = fake("org/b", {"q": [1, 2, 3]})
    assert roles_present([a, b]) == ["q"]
    assert roles_present([a]) == ["q", "q_bias"]


def test_a_sampled_pair_says_its_interval_and_an_exact_pair_says_exact():
    from fingerprint.compare import pair_matrix

    curve = [1.0, 1.5, 1.2, 2.0, 1.8, 2.4]
    a = fake("org/a", {r: curve for r in "qkvo"})
    b = fake("org/b", {r: [v + 0.1 * (i % 2) for i, v in enumerate(curve)] for r in "qkvo"})
    s = fake("org/s", {r: curve[::-1] for r in "qkvo"}, mode="sampled", err=0.05)
    exact, sampled = compare_pair(a, b), compare_pair(a, s)
    assert interval_words(exact) == "exact" and r_words(exact) == f"r = {exact.score:.2f} (exact)"
    assert "no sampling error" in certainty_sentence(exact, a, b, "a", "b")
    low, high = sampled.intervals["mean"]
    assert low < sampled.score < high
    assert interval_words(sampled) == f"95% interval {low:.2f}–{high:.2f}, from sampled σ"
    assert r_words(sampled).startswith(f"r = {sampled.score:.2f} (95% interval ")
    assert "s was read in sampled mode" in certainty_sentence(sampled, a, s, "a", "s")
    assert interval_words(dataclasses.replace(sampled, score=None)) == ""  # no r, nothing to be sure of

    fps = [a, b, s]
    names = display_names(fps)
    hover = heat_trace(heatmap_figure(fps, "mean", "input", names))["customdata"]
    assert "how sure: exact" in hover[0][1] and "how sure: 95% interval" in hover[0][2]
    rows = {(r["model A"], r["model B"]): r for r in pairs_rows(fps, names)}
    assert rows[names[0], names[1]]["95% interval of r"] == "exact"
    assert rows[names[0], names[2]]["95% interval of r"] == f"{low:.2f}–{high:.2f}"
    assert "95% interval of r" in html_report(fps, names=names)
    table = list(csv.DictReader(io.StringIO(pairs_csv(fps, names, pair_matrix(fps)))))
    assert len(table) == 3
    by_pair = {(r["model_a"], r["model_b"]): r for r in table}
    ab, as_ = by_pair[names[0], names[1]], by_pair[names[0], names[2]]
    assert ab["exact"] == "True" and ab["score_mean_r_low95"] == ab["score_mean_r"] == ab["score_mean_r_high95"]
    assert as_["exact"] == "False" and float(as_["score_mean_r_low95"]) == pytest.approx(low, abs=1e-6)
    assert float(as_["r_q_high95"]) >= float(as_["r_q"]) >= float(as_["r_q_low95"])


# ---------------------------------------------------------------- 50 models stay comfortable


def test_fifty_models_each_figure_under_a_second_and_labels_readable():
    from fingerprint.compare import pair_matrix
    from fingerprint.present.figure_style import tick_label, tick_labels

    fps = [  # long, realistic names
        dataclasses.replace(fp, model=f"some-organisation/Some-Model-Family-{i}-7B-Instruct-GPTQ-Int4")
        for i, fp in enumerate(random_fps(50))
    ]
    pairs = pair_matrix(fps)
    heatmap_figure(fps[:3], pairs=pair_matrix(fps[:3]))  # imports (scipy) out of the timing
    for build in (
        lambda: heatmap_figure(fps, "mean", "clustered", pairs=pairs),  # heatmap + dendrogram
        lambda: heatmap_figure(fps, "mean", "input", pairs=pairs),
        lambda: curves_figure(fps),
    ):
        t0 = time.process_time()  # CPU seconds: what other work on the machine does not change
        fig = build()
        assert time.process_time() - t0 < 1.0
    fig = heatmap_figure(fps, "mean", "clustered", pairs=pairs)
    t = heat_trace(fig)
    names = display_names(fps)
    assert sorted(t["x"]) == sorted(names)  # full names stay the data (and the hover)
    axis = fig.layout.xaxis2
    assert axis.tickfont.size <= 9 and list(axis.tickvals) == t["x"]
    assert all(len(s) <= 24 for s in axis.ticktext) and all("…" in s for s in axis.ticktext)
    assert len(set(axis.ticktext)) == 50  # cut in the middle: the model number survives
    assert names[7] in t["customdata"][t["y"].index(names[7])][0]
    assert tick_label("abcdefghij", 5) == "ab…ij" and tick_label("short", 10) == "short"
    assert tick_labels(["org/a", "org/b"], 24) == ["org/a", "org/b"]
    legend = [tr.name for tr in curves_figure(fps).data if tr.showlegend]
    assert len(set(legend)) == 50 and all(len(n) <= 36 for n in legend)


def test_pinned_hub_names_are_short():
    a = fake("org/m@" + "a" * 40, {"q": [1, 2, 3]})
    b = fake("org/m@" + "b" * 40, {"q": [1, 2, 3]})
    assert display_names([a, b]) == ["org/m@aaaaaaa", "org/m@bbbbbbb"]


# ---------------------------------------------------------------- static images


def test_static_images_without_chromium_or_kaleido(monkeypatch, demo_fps):
    import builtins

    import fingerprint.present.static_image as export

    monkeypatch.setattr(export, "find_chromium", lambda: None)
    problem = export.static_image_problem()
    assert "Static images need Chromium" in problem and "camera icon" in problem and "HTML report" in problem
    with pytest.raises(export.StaticImageUnavailable):
        export.static_image(heatmap_figure(demo_fps), "png")
    real_import = builtins.__import__

    def no_kaleido(name, *a, **k):
        if name == "kaleido":
            raise ImportError("no kaleido")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_kaleido)
    assert "kaleido is not installed" in export.static_image_problem()


def test_static_image_png_and_svg_where_chromium_is(demo_fps):
    import fingerprint.present.static_image as export

    if export.static_image_problem():
        pytest.skip("kaleido or Chromium not available here")
    fig = heatmap_figure(demo_fps)
    assert export.static_image(fig, "png", width=800).startswith(b"\x89PNG")
    assert b"<svg" in export.static_image(fig, "svg", width=800)[:200]


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (81.4, "81st"),
        (92.6, "93rd"),
        (100, "100th"),
        (111, "111th"),
        (0, "0th"),
    ],
)
def test_percentiles_are_said_with_the_right_ordinal(n, words):
    from fingerprint.present.formatting import ordinal

    assert ordinal(n) == words


def test_the_report_and_the_compare_page_explain_their_words(demo_fps):
    from fingerprint.present.report import html_report
    from fingerprint.present.texts import GLOSSARY

    page = html_report(demo_fps)
    assert "What the words mean" in page
    for term in ("σ-curve", "Pearson r", "AWM", "CKA", "percentile", "strength", "nats"):
        assert term in GLOSSARY and f"{term}: " in page


def test_a_placement_is_said_in_words_not_as_a_bare_z():
    from fingerprint.present.evidence_words import placement_text

    far = placement_text(
        {"n_unrelated": 30, "above_unrelated_max": True, "percentile": 100.0, "z": 634.6}, calibrated=True
    )
    assert far == "above all 30 unrelated pairs (far beyond their range)"
    near = placement_text(
        {"n_unrelated": 30, "above_unrelated_max": False, "percentile": 81.0, "z": 0.93}, calibrated=True
    )
    assert near == "above 81% of 30 unrelated pairs (0.9 standard deviations above their mean)"
    # the table of every number: a z beyond 10 has no meaningful digits
    from fingerprint.present.tables import z_text

    assert (z_text(634.6), z_text(-42.0), z_text(0.93)) == ("above +10 (far beyond)", "below -10 (far beyond)", "+0.9")


def test_schema_holds_the_verdict_table_the_dashboard_shows():
    """Which verdicts exist and the evidence each needs: the same words in SCHEMA.md as on screen."""
    from fingerprint.lineage.verdict import VERDICTS
    from fingerprint.present.verdict_table import VERDICT_EVIDENCE, verdict_table_markdown

    schema = (Path(__file__).resolve().parent.parent / "SCHEMA.md").read_text(encoding="utf-8")
    assert verdict_table_markdown() in schema
    assert {r for r, _ in VERDICT_EVIDENCE} == set(VERDICTS)  # every relation has its row

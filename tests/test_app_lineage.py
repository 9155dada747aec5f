"""The dashboard's lineage evidence through Streamlit's AppTest: the pair view's verdict and evidence panel, a
heatmap of another signal, the stress test page, and the exports carrying the verdicts. No network."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
sys.path.insert(0, str(ROOT))

COPY = (str(FIXTURES / "stories260k"), str(FIXTURES / "stories260k-q8_0.gguf"))
COPY_NAMES = ("stories260k", "stories260k-q8_0.gguf")
INDEPENDENT = (str(FIXTURES / "babyllama-tok361"), str(FIXTURES / "babyllama-tok105"))


def settle(at: AppTest, timeout: float = 60) -> AppTest:
    """Wait for the fingerprinting run and the lineage run, then rerun (what the panels' polling does)."""
    for _ in range(6):
        waiting = False
        for key in ("fingerprint_run", "lineage_run"):
            try:
                task = at.session_state[key]
            except KeyError:
                continue
            if not (task.done and task.collected):
                assert task.wait(timeout), f"{key} did not finish"
                waiting = True
        if not waiting:
            return at
        at.run()
    return at


def texts(at: AppTest, *kinds: str) -> str:
    kinds = kinds or ("markdown", "caption", "info", "warning", "error", "subheader", "header")
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


def figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def figure_titled(at: AppTest, start: str) -> dict:
    for fig in figures(at):
        title = (fig["layout"].get("title") or {}).get("text", "").replace("<br>", " ")  # wrapped to fit a phone
        if title.startswith(start):
            return fig
    raise AssertionError(f"no figure titled {start!r}")


@pytest.fixture
def demo() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button(key="run_demo").click().run()
    settle(at)
    assert not at.exception, at.exception
    return at


def pick_pair(at: AppTest, a: str, b: str) -> AppTest:
    at.selectbox(key="w_pair_a").set_value(a).run()
    at.selectbox(key="w_pair_b").set_value(b).run()
    return at


def headers(at: AppTest) -> list[str]:
    return [str(h.value) for h in at.header]


def cells(fig: dict) -> dict[tuple[str, str], str]:
    heat = next(t for t in fig["data"] if t["type"] == "heatmap")
    words = heat["text"]  # on two lines in the cell
    return {(a, b): words[i][j].replace("<br>", " ") for i, a in enumerate(heat["y"]) for j, b in enumerate(heat["x"])}


def test_compare_leads_with_the_verdict_computed_without_a_click(demo):
    at = demo
    # the demo models are small and local: every pair's verdict was computed without a click
    assert len(at.session_state["verdicts"]) == 6
    assert headers(at) == ["Is one derived from the other?", "All pairs", "σ-curves, layer by layer"]
    # the page opens on the strongest verdict, in words, with how strong it is and what could not be checked
    assert {at.session_state["pair_a"], at.session_state["pair_b"]} == set(COPY)
    page = texts(at)
    assert "Verdict: consistent with a quantized copy" in texts(at, "subheader")
    assert "How strong:" in page and "Could not be checked:** nothing" in page
    assert "not an accusation" in texts(at, "caption")  # the caveats are on screen
    fig = figure_titled(at, "Lineage evidence: stories260k vs stories260k-q8_0.gguf")
    pair = [t for t in fig["data"] if t.get("name") == "this pair"]
    assert len(pair) == 5 and all(t["x"][0] > 0.99 for t in pair)  # every available signal at ~1
    assert any("not available" in a["text"] for a in fig["layout"]["annotations"])  # MoE says why
    assert "the weakest signal" in page  # the pair's σ score is there, labelled for what it is
    # which verdicts exist and what each needs, under the verdict
    rules = next(str(m.value) for m in at.markdown if "the evidence it needs" in str(m.value))
    assert "| **quantized copy** |" in rules and "| **no evidence** |" in rules and "format's own rounding" in rules

    # all pairs: the verdict matrix by default, once verdicts exist
    assert at.selectbox(key="w_signal").value == "verdict"
    matrix = cells(figure_titled(at, "Verdicts: what each pair's weights are consistent with"))
    assert matrix[("stories260k", "stories260k-q8_0.gguf")] == "quantized copy"
    assert matrix[("babyllama-tok361", "babyllama-tok105")] == "no evidence"  # σ-curves say 0.95
    assert matrix[("stories260k", "stories260k")] == "itself"
    table = next(d.value for d in at.dataframe if "model A" in d.value.columns)
    assert list(table.columns[:4]) == ["model A", "model B", "verdict", "how strong"]
    assert table["verdict"].iloc[0] == "quantized copy"  # related first

    # two independent models trained with the same recipe: no evidence, though the σ-curves correlate at 0.95
    pick_pair(at, *INDEPENDENT)
    assert "Verdict: no evidence of lineage (not proof of independence)" in texts(at)
    assert "consistent with" not in next(t for t in texts(at, "subheader").splitlines() if "Verdict:" in t)

    # the verdicts travel with the exports
    at.switch_page("app_pages/export.py").run()
    assert not at.exception, at.exception
    files = at.session_state["exports"]
    lineage = json.loads(files["lineage.json"])
    got = {(d["reference_a"], d["reference_b"]): d for d in lineage["verdicts"]}
    copy = got[("demo:stories260k", "demo:stories260k-q8_0.gguf")]
    assert copy["verdict"] == "quantized_copy" and copy["related"] is True
    assert copy["signals"]["elementwise"]["value"] > 0.99 and copy["signals"]["moe"]["available"] is False
    indep = got[("demo:babyllama-tok361", "demo:babyllama-tok105")]
    assert indep["verdict"] == "no_evidence" and indep["related"] is False
    assert len(at.get("download_button")) == 7  # verdicts, matrix, pairs, curves, fingerprints, report, lineage
    assert at.get("download_button")[0].key == "dl_verdicts.csv"  # the answer first here too
    rows = list(csv.DictReader(io.StringIO(files["verdicts.csv"])))
    assert len(rows) == 6 and (rows[0]["model A"], rows[0]["model B"], rows[0]["verdict"]) == (
        *COPY_NAMES,
        "quantized copy",
    )
    assert float(rows[0]["Element-wise"]) > 0.99 and rows[0]["how strong"].endswith("unrelated pair seen")
    report = files["report.html"]
    assert "Lineage evidence" in report and "consistent with a quantized copy" in report
    assert "no evidence of lineage" in report
    json.loads(files["fingerprints.json"])  # unchanged: still the array `compare` reads back


def test_a_costly_verdict_waits_for_one_click_that_states_its_cost(monkeypatch):
    monkeypatch.setenv("FINGERPRINT_AUTO_LINEAGE_MB", "0")  # as if the models were too big to read unasked
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button(key="run_demo").click().run()
    settle(at)
    assert not at.exception, at.exception
    assert not at.session_state["verdicts"]
    assert headers(at)[0] == "Is one derived from the other?"
    assert "No verdict for" in texts(at, "info")
    cost = texts(at, "caption")
    assert "Reads a sample of 2 models' weights" in cost and "at most" in cost and "MB" in cost
    assert "Hugging Face Hub" not in cost  # local files: no Hub requests to state
    # until there are verdicts, all pairs are shown on the σ-curves, labelled as the weakest signal
    assert at.selectbox(key="w_signal").value == "sigma"
    assert "never proof" in texts(at, "warning")
    at.button(key="lineage_pair").click().run()
    settle(at)
    assert not at.exception, at.exception
    assert len(at.session_state["verdicts"]) == 1
    assert "Verdict: consistent with" in texts(at, "subheader")
    assert at.selectbox(key="w_signal").value == "verdict"  # the verdicts now lead
    matrix = cells(figure_titled(at, "Verdicts: what each pair's weights are consistent with"))
    assert sorted(matrix.values()).count("not yet") == 10  # 5 pairs, both ways
    assert at.button(key="compute_signals").label == "Compute the verdicts (5 pairs to go)"
    # a signal the visitor picks stays picked
    at.selectbox(key="w_signal").set_value("sigma").run()
    pick_pair(at, *INDEPENDENT)
    at.button(key="lineage_pair").click().run()
    settle(at)
    # now every model's sample is in memory: the remaining pairs cost nothing to read and follow without a click
    assert len(at.session_state["verdicts"]) == 6
    assert at.selectbox(key="w_signal").value == "sigma"


def test_signal_heatmap_shows_elementwise_for_every_pair(demo):
    at = demo
    at.selectbox(key="w_signal").set_value("elementwise").run()
    settle(at)
    assert not at.exception, at.exception
    assert at.selectbox(key="w_role").disabled  # the role applies to σ-curves only
    fig = figure_titled(at, "Element-wise: Pearson r of weights at identical positions")
    heat = next(t for t in fig["data"] if t["type"] == "heatmap")
    assert heat["zmin"] == -1 and heat["zmax"] == 1
    z = {(a, b): heat["z"][i][j] for i, a in enumerate(heat["y"]) for j, b in enumerate(heat["x"])}
    assert z[("stories260k", "stories260k-q8_0.gguf")] > 0.99
    assert abs(z[("babyllama-tok361", "babyllama-tok105")]) < 0.1  # σ-curves say 0.95; the weights say nothing
    assert z[("stories260k", "babyllama-tok361")] is None  # different shapes: not available, hover says why
    assert len(at.session_state["verdicts"]) == 6  # every pair, computed once; the pair view reuses them
    assert "Verdict:" in texts(at, "subheader")


def test_stress_page_runs_and_shows_a_row_per_transformation():
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/stress.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Stress test"]
    assert "defeated on purpose" in texts(at, "markdown")
    assert at.selectbox(key="w_stress_model").value == str(FIXTURES / "stories260k")
    boxes = [b for b in at.checkbox if b.key.startswith("w_stress_t_")]
    assert len(boxes) == 8 and all(b.value for b in boxes)  # all by default
    for b in boxes:
        b.set_value(b.key.removeprefix("w_stress_t_") in ("scale_qk", "permute_heads", "quantize_q8_0"))
    at.run()
    at.button(key="run_stress").click().run()
    settle(at)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["transformation"]) == ["Rescale Q/K", "Permute attention heads", "Quantize Q8_0"]
    assert list(table["kind"]) == ["function-preserving", "function-preserving", "output-changing"]
    change = list(table["output change (nats)"])
    assert change[0].endswith("(unchanged)") and float(change[0].split()[0]) < 1e-9  # the same model
    assert float(change[2]) > 1e-4  # output-changing: measurably changed
    assert list(table.columns[:4]) == [
        "transformation",
        "kind",
        "output change (nats)",
        "verdict (changed vs original)",
    ]
    assert float(table["Element-wise"][2]) > 0.99  # a quantized copy keeps its weights
    assert set(table["MoE experts"]) == {"n/a"}  # dense models
    fig = figure_titled(at, "Stress test of stories260k")
    assert len(next(t for t in fig["data"] if t["type"] == "heatmap")["z"]) == 3
    # what the exports carry of it
    from fingerprint.present.exports import lineage_json
    from fingerprint.present.report import lineage_section

    report = at.session_state["stress"]["report"]
    data = json.loads(lineage_json([], None, report))
    assert [r["transform"] for r in data["stress_test"]["rows"]] == ["scale_qk", "permute_heads", "quantize_q8_0"]
    html = lineage_section([], report, 24)
    assert "Stress test of stories260k" in html and "Permute attention heads" in html


# ---------------------------------------------------------------- the figures alone: calibrated, MoE, different depths


def synthetic_verdict(calibrated: bool = True):
    from fingerprint.lineage.calibration import Calibration
    from fingerprint.lineage.signals import Signal, missing
    from fingerprint.lineage.verdict import decide

    cal = (
        Calibration(
            {
                "elementwise": [0.0, 0.01, -0.01, 0.02],
                "awm": [0.2, 0.25, 0.3, 0.22],
                "vectors": [0.0, 0.1, -0.1, 0.05],
                "depth": [0.0, 0.02, 0.01, -0.02],
                "moe": [0.1, 0.12, 0.15, 0.11],
                "sigma": [0.85, 0.9, 0.95, 0.8],
            },
            {"awm": [0.9, 0.95], "moe": [0.8]},
            {},
        )
        if calibrated
        else Calibration({}, {}, {})
    )
    matrix = [[0.9, 0.1, 0.0], [0.1, 0.2, 0.95]]  # 2 layers of a against 3 of b
    signals = {
        "elementwise": missing("elementwise", "no matrix has the same shape in both models"),
        "awm": Signal("awm", 0.31, True, None, {"per_layer": [], "shared_tokens": 500, "alignment_quality": 0.5}),
        "vectors": missing("vectors", "no norm weight or bias of the same length in both models"),
        "depth": Signal(
            "depth", 0.925, True, None, {"basis": "awm", "matrix": matrix, "pairs": [[0, 0], [1, 2]], "diagonal": 0.9}
        ),
        "moe": Signal(
            "moe", 0.85, True, None, {"per_layer": {"0": 0.8, "4": 0.9}, "moe_model": "moe", "dense_model": "dense"}
        ),
        "sigma": Signal("sigma", 0.93, True, None, {"resampled": True}),
    }
    v = decide("moe", "dense", signals, cal, depths=(2, 3), moe=(True, False))
    return v, cal


def test_evidence_figures_with_a_calibration_moe_and_different_depths():
    from fingerprint.present.evidence_figures import depth_figure, evidence_figure, moe_figure
    from fingerprint.present.evidence_words import strength_text
    from fingerprint.present.tables import signal_rows, signal_rows_text

    v, cal = synthetic_verdict()
    assert v.verdict == "moe_upcycle" and v.sentence.startswith("consistent with")
    fig = evidence_figure(v, cal)
    names = {t.name for t in fig.data}
    assert {"unrelated pairs (calibration)", "related pairs (calibration)", "this pair"} <= names
    assert "threshold: clearly above every unrelated pair" in names
    notes = " ".join(a.text for a in fig.layout.annotations)
    assert "above all 4 unrelated pairs" in notes and "not available" in notes
    assert "no matrix has the same shape" in notes
    depth = depth_figure(v)
    heat = depth.data[0]
    assert (len(heat.z), len(heat.z[0])) == (2, 3)
    assert list(depth.data[1].x) == [0, 2] and list(depth.data[1].y) == [0, 1]  # the alignment skips b's layer 1
    moe = moe_figure(v, cal)
    assert list(moe.data[0].y) == [0.8, 0.9] and "median over experts" in moe.layout.title.text
    assert "unlikely an unrelated pair" in strength_text(v, cal)
    rows = signal_rows(v, cal)
    assert [r["value"] for r in rows][:2] == [None, 0.31] and rows[0]["why not available"]
    shown = signal_rows_text(v, cal)  # on screen: one type per column, or pyarrow logs a traceback and gives up
    assert all(isinstance(x, str) for r in shown for x in r.values())
    assert [r["value"] for r in shown][:2] == ["n/a", "0.310"]
    assert all(
        r["percentile (unrelated)"] == "" or r["percentile (unrelated)"][-2:] in ("st", "nd", "rd", "th") for r in shown
    )
    import pyarrow as pa

    for column in shown[0]:
        pa.array([r[column] for r in shown])  # converts: no mixed column

    v0, empty = synthetic_verdict(calibrated=False)
    fig0 = evidence_figure(v0, empty)
    assert {t.name for t in fig0.data} == {"this pair"}  # no background without a calibration
    assert "no calibration" in fig0.layout.title.text


def test_shared_mode_stress_page_offers_only_the_demo_models(monkeypatch):
    monkeypatch.setenv("FINGERPRINT_SHARED_MODE", "1")
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/stress.py").run()
    assert not at.exception, at.exception
    options = at.selectbox(key="w_stress_model").options
    assert options and all("demo model" in o for o in options)
    assert "only the demo models" in texts(at, "caption")


def test_stress_page_says_what_to_give_for_a_file_a_missing_path_and_a_bare_folder(tmp_path):
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/stress.py").run()
    at.selectbox(key="w_stress_model").set_value("__other__").run()
    bare = tmp_path / "weights-only"
    bare.mkdir()
    cases = [
        (str(FIXTURES / "stories260k-q8_0.gguf"), "a GGUF file, not a folder"),
        (str(tmp_path / "nowhere"), "no such file or folder"),
        (str(bare), "has no config.json"),
    ]
    for path, words in cases:
        at.text_input(key="w_stress_path").set_value(path).run()
        at.button(key="run_stress").click().run()
        assert not at.exception, at.exception
        errors = [str(e.value) for e in at.error]
        assert len(errors) == 1 and words in errors[0], errors  # only this attempt's message, not the last one's
        assert "Hub ID" not in errors[0]  # the page takes no Hub IDs


def test_a_no_evidence_verdict_shows_no_strength_number():
    """0.97 right after a copy's 0.98 would read as 'almost a copy': a no-evidence verdict says it in words."""
    import dataclasses
    import re

    from fingerprint.present.evidence_words import strength_text

    v, cal = synthetic_verdict()
    for strength, words in (
        (0.999, "lower than every related pair"),
        (0.97, "lower than almost every"),
        (0.6, "lower than most"),
    ):
        text = strength_text(dataclasses.replace(v, verdict="no_evidence", strength=strength), cal)
        assert words in text and "not proof" in text
        assert not re.search(r"\d", text), text

"""The dashboard through Streamlit's AppTest: demo, failures among good models, exports. No network."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
FIXTURES = ROOT / "tests" / "fixtures"


def heatmap(at: AppTest) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        for trace in spec["data"]:
            if trace["type"] == "heatmap":
                return trace
    raise AssertionError("no heatmap on the page")


def cell(trace: dict, a: str, b: str) -> float:
    return trace["z"][trace["y"].index(a)][trace["x"].index(b)]


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in at.get(kind))


@pytest.fixture
def demo() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    at.button(key="run_demo").click().run()
    assert not at.exception, at.exception
    return at


def test_home_explains_and_offers_the_demo():
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    page = texts(at, "markdown")
    assert "σ-curve" in page and "never proof" in page
    assert "https://arxiv.org/abs/2507.03014" in page
    assert at.button(key="run_demo").label == "Run the demo"


def test_demo_from_home_shows_the_heatmap(demo):
    at = demo
    assert [t.value for t in at.title] == ["Compare"]  # the demo takes the user to Compare
    trace = heatmap(at)
    assert len(trace["z"]) == 4 and all(len(row) == 4 for row in trace["z"])
    assert trace["zmin"] == -1 and trace["zmax"] == 1
    assert cell(trace, "stories260k", "stories260k-q8_0.gguf") > 0.99
    assert cell(trace, "babyllama-tok361", "babyllama-tok105") == pytest.approx(0.95, abs=0.02)
    assert cell(trace, "stories260k", "babyllama-tok361") < 0.5
    # the caveat is on screen with the numbers
    assert "not proof" in texts(at, "warning")
    # clustered: the copy pair and the babyllama pair sit next to each other
    order = trace["x"]
    assert abs(order.index("stories260k") - order.index("stories260k-q8_0.gguf")) == 1
    # role choice: per-role matrices are there too
    at.selectbox(key="w_role").set_value("k").run()
    assert cell(heatmap(at), "babyllama-tok361", "babyllama-tok105") == pytest.approx(0.97, abs=0.02)


def test_failures_do_not_stop_the_others(monkeypatch, fast_retries):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/models.py").run()
    good = [str(FIXTURES / "stories260k"), str(FIXTURES / "babyllama-tok105")]
    at.text_area(key="w_local_paths").set_value("\n".join(good[:1] + ["/nonexistent/model"] + good[1:]))
    at.text_area(key="w_hub_ids").set_value("org/not-reachable")
    at.run()
    at.button(key="compute").click().run()
    assert not at.exception, at.exception
    errors = texts(at, "error")
    assert "/nonexistent/model" in errors and "no such file or folder" in errors
    assert "org/not-reachable" in errors  # the Hub is a closed port in tests: an Offline error
    table = at.dataframe[0].value
    status = dict(zip(table["reference"], table["status"], strict=True))
    assert status[good[0]] == "done" and status[good[1]] == "done"
    assert status["/nonexistent/model"] == "failed" and status["org/not-reachable"] == "failed"
    assert list(at.session_state["fps"]) == good
    # a second run answers from the persistent cache and says so
    at.button(key="compute").click().run()
    status = dict(zip(at.dataframe[0].value["reference"], at.dataframe[0].value["status"], strict=True))
    assert "from the cache" in status[good[0]]


def test_hub_model_links_its_commit_and_token_stays_secret(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    model = FIXTURES / "stories260k"
    sha = hub.add_repo("org/tiny", {p.name: p for p in model.iterdir()}, gated=True)
    hub.add_token("hf_secret_token_value", gated_access=["org/tiny"])  # only the token opens the gated repo
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/models.py").run()
    at.text_input(key="w_token").set_value("hf_secret_token_value").run()
    assert at.session_state["hf_token"] == "hf_secret_token_value"
    assert not [w for w in at.text_input if w.key == "w_token"]  # the field is gone: never shown again
    at.text_area(key="w_hub_ids").set_value("org/tiny").run()
    at.button(key="compute").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["on the Hub"][0] == f"https://huggingface.co/org/tiny/commit/{sha}"
    assert table["revision"][0] == sha[:12]
    at.switch_page("pages/export.py").run()
    for body in at.session_state["exports"].values():
        assert "hf_secret_token_value" not in body


def test_exports_match_what_the_heatmap_showed(demo):
    at = demo
    trace = heatmap(at)
    at.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 4
    files = at.session_state["exports"]

    rows = list(csv.reader(io.StringIO(files["matrix.csv"])))
    assert rows[0][1:] == trace["x"] and [r[0] for r in rows[1:]] == trace["y"]
    for r, zrow in zip(rows[1:], trace["z"], strict=True):
        assert [float(v) for v in r[1:]] == pytest.approx(zrow, abs=1e-6)

    fps = json.loads(files["fingerprints.json"])
    assert len(fps) == 4 and all(fp["schema_version"] == 1 and fp["curves"]["q"] for fp in fps)
    assert {Path(fp["model"]).name for fp in fps} == set(trace["x"])

    curves = list(csv.DictReader(io.StringIO(files["curves.csv"])))
    assert len(curves) == 4 * 5 * 5  # 4 models x 5 roles x 5 layers

    report = files["report.html"]
    assert "plotly" in report.lower() and "not proof" in report
    for name in trace["x"]:
        assert name in report

"""The dashboard through Streamlit's AppTest: demo, failures among good models, exports, share links, uploads,
Stop, Hub suggestions, shared mode, static images. No network (a local Hub-protocol server where needed)."""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest
from conftest import FIXTURES
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
sys.path.insert(0, str(ROOT))  # dashboard.*: the same modules the app runs, for monkeypatching


def settle(at: AppTest, timeout: float = 60) -> AppTest:
    """Wait for a background run to finish, then rerun (what the progress panel's polling does in a browser)."""
    for _ in range(5):
        try:
            job = at.session_state["fingerprint_run"]
        except KeyError:
            return at
        if job.collected:
            return at
        assert job.wait(timeout), "the run did not finish"
        at.run()
    return at


def statuses(at: AppTest) -> dict[str, str]:
    table = at.dataframe[0].value
    return dict(zip(table["model"], table["status"], strict=True))


def all_text(at: AppTest) -> str:
    parts = []
    for kind in (
        "markdown",
        "caption",
        "code",
        "info",
        "warning",
        "error",
        "success",
        "title",
        "header",
        "subheader",
        "text",
        "exception",
    ):
        parts += [str(e.value) for e in at.get(kind)]
    parts += [str(w.value) for w in at.text_input] + [str(w.value) for w in at.text_area]
    parts += [str(b.label) for b in at.button]
    return "\n".join(parts)


def heatmap(at: AppTest) -> dict:
    """The σ heatmap's trace: All pairs is switched to the σ-curves when it shows the verdicts."""
    signal = [s for s in at.selectbox if s.key == "w_signal"]
    if signal and signal[0].value != "sigma":
        signal[0].set_value("sigma").run()
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        for trace in spec["data"]:
            if trace["type"] == "heatmap" and trace.get("name") == "correlation":
                return trace
    raise AssertionError("no σ heatmap on the page")


def cell(trace: dict, a: str, b: str) -> float:
    return trace["z"][trace["y"].index(a)][trace["x"].index(b)]


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in at.get(kind))


@pytest.fixture
def demo() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    at.button(key="run_demo").click().run()
    settle(at)
    assert not at.exception, at.exception
    return at


def test_home_explains_and_offers_the_demo():
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    page = texts(at, "markdown")
    assert "σ-curve" in page and "never proof" in page
    assert "https://arxiv.org/abs/2507.03014" in page
    assert "withdrawn by arXiv Admin" in page and "settles nothing" in page  # the paper's status, not as standing
    assert "withdrawn" in texts(at.sidebar, "caption")
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
    assert "never proof" in texts(at, "warning")
    assert [e.label for e in at.expander if "words" in e.label] == ["What the words on this page mean"]  # a glossary
    assert "**AWM**" in texts(at, "markdown") and "**percentile**" in texts(at, "markdown")
    # clustered: the copy pair and the babyllama pair sit next to each other
    order = trace["x"]
    assert abs(order.index("stories260k") - order.index("stories260k-q8_0.gguf")) == 1
    # role choice: per-role matrices are there too
    at.selectbox(key="w_role").set_value("k").run()
    assert cell(heatmap(at), "babyllama-tok361", "babyllama-tok105") == pytest.approx(0.97, abs=0.02)


def test_sampled_pair_shows_its_interval_and_one_click_measures_it_exactly(monkeypatch):
    import fingerprint.stats as stats
    from fingerprint.demo import demo_paths

    monkeypatch.setattr(stats, "EXACT_LIMIT", 1000)  # auto mode samples even the tiny demo models
    monkeypatch.setattr(stats, "SAMPLE_BUDGET", 300_000)  # and samples the two babyllamas for real
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.button(key="run_demo").click().run()
    settle(at)
    assert not at.exception, at.exception
    stories, gguf, baby361, baby105 = demo_paths()
    fps = at.session_state["fps"]
    assert fps[baby361].mode == fps[baby105].mode == "sampled"

    # the heatmap's hover says how sure each r is: an interval for the sampled babyllamas, exact for the stories copy
    trace = heatmap(at)
    hover = {(y, x): trace["customdata"][i][j] for i, y in enumerate(trace["y"]) for j, x in enumerate(trace["x"])}
    assert "95% interval" in hover["babyllama-tok361", "babyllama-tok105"]
    assert "from sampled σ" in hover["babyllama-tok361", "babyllama-tok105"]
    assert "how sure: exact" in hover["stories260k", "stories260k-q8_0.gguf"]  # read whole: no error

    # an exact pair: no button; the words say it is exact
    at.selectbox(key="w_pair_a").set_value(stories).run()
    at.selectbox(key="w_pair_b").set_value(gguf).run()
    assert not [b for b in at.button if b.key == "measure_pair_exactly"]
    assert "no sampling error" in texts(at, "markdown")

    # a sampled pair: the interval in words and in the table, and the button
    at.selectbox(key="w_pair_a").set_value(baby361).run()
    at.selectbox(key="w_pair_b").set_value(baby105).run()
    words = texts(at, "markdown")
    assert "How sure:** r = 0." in words and "95% interval" in words and "read in sampled mode" in words
    table = next(d.value for d in at.dataframe if "95% interval of r" in d.value.columns)
    shown = dict(zip(table["model A"] + " / " + table["model B"], table["95% interval of r"], strict=True))
    babies = shown.get("babyllama-tok361 / babyllama-tok105") or shown["babyllama-tok105 / babyllama-tok361"]
    assert re.fullmatch(r"0\.\d\d–(0\.\d\d|1\.00)", babies)
    assert "exact" in (
        shown.get("stories260k / stories260k-q8_0.gguf"),
        shown.get("stories260k-q8_0.gguf / stories260k"),
    )
    at.button(key="measure_pair_exactly").click().run()
    settle(at)
    assert not at.exception, at.exception
    fps = at.session_state["fps"]
    assert fps[baby361].mode == fps[baby105].mode == "exact" and fps[stories].mode == "sampled"  # only the pair
    assert not [b for b in at.button if b.key == "measure_pair_exactly"]
    assert "no sampling error" in texts(at, "markdown")
    assert cell(heatmap(at), "babyllama-tok361", "babyllama-tok105") == pytest.approx(0.949, abs=0.001)  # exact r


def test_failures_do_not_stop_the_others(monkeypatch, fast_retries):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/models.py").run()
    good = [str(FIXTURES / "stories260k"), str(FIXTURES / "babyllama-tok105")]
    at.text_area(key="w_local_paths").set_value("\n".join([*good[:1], "/nonexistent/model", *good[1:]]))
    at.text_area(key="w_hub_ids").set_value("org/not-reachable")
    at.run()
    at.button(key="compute").click().run()
    settle(at)
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
    settle(at)
    status = dict(zip(at.dataframe[0].value["reference"], at.dataframe[0].value["status"], strict=True))
    assert "from the cache" in status[good[0]]


def test_failed_models_do_not_pile_up_and_can_be_removed(fast_retries):
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/models.py").run()
    at.text_area(key="w_local_paths").set_value("/nonexistent/one\n/nonexistent/two").run()
    for _ in range(3):  # the same inputs tried three times: one box per model, its latest attempt
        at.button(key="compute").click().run()
        settle(at)
    assert len([e for e in at.error if "/nonexistent/" in str(e.value)]) == 2
    assert "None" not in at.dataframe[0].value["layers"].tolist()  # a failed row has no layer count, not "None"
    at.button(key="forget_failed_0").click().run()  # dismiss the first
    left = [str(e.value) for e in at.error if "/nonexistent/" in str(e.value)]
    assert len(left) == 1 and "/nonexistent/two" in left[0]
    assert list(at.session_state["runs"]) == ["/nonexistent/two"]
    # nothing succeeded, yet the sidebar's Clear is there and empties the list
    clear = [b for b in at.sidebar.button if b.label == "Clear all results"]
    assert clear, "no Clear while only failures are listed"
    clear[0].click().run()
    assert not at.session_state["runs"] and not [e for e in at.error if "/nonexistent/" in str(e.value)]


def test_hostile_hub_ids_get_one_line_errors_not_exception_boxes():
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/models.py").run()
    at.text_area(key="w_hub_ids").set_value("\n".join(["a" * 100_000, "org/na\x00me", "org/.."]))
    at.run()
    at.button(key="compute").click().run()
    settle(at)
    assert not at.exception, at.exception
    errors = texts(at, "error")
    assert "100,000 characters long" in errors and "control characters" in errors and "not a Hub model ID" in errors


def test_hub_model_links_its_commit_and_token_stays_secret(hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    model = FIXTURES / "stories260k"
    sha = hub.add_repo("org/tiny", {p.name: p for p in model.iterdir()}, gated=True)
    hub.add_token("hf_secret_token_value", gated_access=["org/tiny"])  # only the token opens the gated repo
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/models.py").run()
    at.text_input(key="w_token").set_value("hf_secret_token_value").run()
    assert at.session_state["hf_token"] == "hf_secret_token_value"
    assert not [w for w in at.text_input if w.key == "w_token"]  # the field is gone: never shown again
    at.text_area(key="w_hub_ids").set_value("org/tiny").run()
    at.button(key="compute").click().run()
    settle(at)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["on the Hub"][0] == f"https://huggingface.co/org/tiny/commit/{sha}"
    assert table["revision"][0] == sha[:12]
    at.switch_page("app_pages/export.py").run()
    for body in at.session_state["exports"].values():
        assert "hf_secret_token_value" not in body


def test_exports_match_what_the_heatmap_showed(demo):
    at = demo
    trace = heatmap(at)
    at.switch_page("app_pages/export.py").run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 7  # with verdicts.csv and lineage.json: the demo's verdicts come unasked
    files = at.session_state["exports"]

    pairs = list(csv.DictReader(io.StringIO(files["pairs.csv"])))
    assert len(pairs) == 6 and {p["model_a"] for p in pairs} | {p["model_b"] for p in pairs} == set(trace["x"])
    for p in pairs:  # the demo models are read exactly: every interval has zero width
        assert p["exact"] == "True" and p["score_mean_r_low95"] == p["score_mean_r"] == p["score_mean_r_high95"]
        assert float(p["score_mean_r"]) == pytest.approx(cell(trace, p["model_a"], p["model_b"]), abs=1e-6)

    rows = list(csv.reader(io.StringIO(files["matrix.csv"])))
    assert rows[0][1:] == trace["x"] and [r[0] for r in rows[1:]] == trace["y"]
    for r, zrow in zip(rows[1:], trace["z"], strict=True):
        assert [float(v) for v in r[1:]] == pytest.approx(zrow, abs=1e-6)

    fps = json.loads(files["fingerprints.json"])
    assert len(fps) == 4 and all(fp["schema_version"] == 1 and fp["curves"]["q"] for fp in fps)
    assert {fp["model"] for fp in fps} == {f"demo:{n}" for n in trace["x"]}  # never where this computer keeps them

    curves = list(csv.DictReader(io.StringIO(files["curves.csv"])))
    assert len(curves) == 4 * 5 * 5  # 4 models x 5 roles x 5 layers
    assert {row["model"] for row in curves} == {f"demo:{n}" for n in trace["x"]}

    report = files["report.html"]
    assert "plotly" in report.lower() and "never proof" in report
    for name in trace["x"]:
        assert name in report
    demo_folder = str(FIXTURES)
    assert all(demo_folder not in body for body in files.values())  # no absolute local path in any export
    at.checkbox(key="export_local_paths").check().run()  # unless the user asks for them
    assert demo_folder in at.session_state["exports"]["fingerprints.json"]


# ---------------------------------------------------------------- share links


def hub_with_tiny(hub, monkeypatch) -> str:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # the core reads it at call time
    return hub.add_repo("org/tiny", {p.name: p for p in (FIXTURES / "stories260k").iterdir()})


def open_link(params: dict, page: str = "app_pages/compare.py", **context) -> AppTest:
    """A fresh session (a new browser tab) opening http://host/<page>?<params>."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    if context:
        at.context.update(context)
    at.switch_page(page).run()
    return settle(at)


def test_compare_keeps_the_url_in_sync(demo):
    at = demo
    q = at.query_params
    assert q["models"] == "demo:stories260k,demo:stories260k-q8_0.gguf,demo:babyllama-tok361,demo:babyllama-tok105"
    assert (q["role"], q["order"], q["view"]) == ("mean", "clustered", "normalised")
    assert "pair" in q  # the pair view's two models (the top pair by default)
    assert "signal" not in q  # the page's own choice: the verdicts, now that they are computed
    heatmap(at)  # the role is a choice of the σ heatmap
    assert at.query_params["signal"] == "sigma"  # the visitor's choice: a link opens on it
    at.selectbox(key="w_role").set_value("k").run()
    at.radio(key="w_order").set_value("input").run()
    at.radio(key="w_curve_mode").set_value("raw").run()
    assert (at.query_params["role"], at.query_params["order"], at.query_params["view"]) == ("k", "input", "raw")


def test_share_link_restores_the_view_on_a_fresh_session(hub, monkeypatch):
    sha = hub_with_tiny(hub, monkeypatch)
    params = {
        "models": f"org/tiny@{sha},demo:babyllama-tok361,demo:babyllama-tok105",
        "role": "k",
        "order": "input",
        "view": "raw",
        "pair": "1,2",
    }
    at = open_link(params)
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Compare"]
    # a Hub model is among them: no verdict is computed unasked (its sample would use the Hub's rate limit); the
    # pair's button says what it will read - here two local models, nothing from the Hub
    assert (
        not at.session_state["verdicts"] and at.button(key="lineage_pair").label == "Weigh the evidence for this pair"
    )
    costs = [str(c.value) for c in at.caption if "Reads a sample" in str(c.value)]
    pair_cost = next(c for c in costs if "2 models' weights (babyllama-tok361, babyllama-tok105)" in c)
    assert "Hugging Face Hub" not in pair_cost
    # all pairs, one click away too: that one reads the Hub model as well, and says so
    assert at.button(key="compute_signals").label == "Compute the verdicts (3 pairs to go)"
    assert any("3 models' weights" in c and "up to 1,000 requests to the Hugging Face Hub" in c for c in costs)
    trace = heatmap(at)
    assert trace["x"] == [f"org/tiny@{sha[:7]}", "babyllama-tok361", "babyllama-tok105"]  # input order, as linked
    assert cell(trace, "babyllama-tok361", "babyllama-tok105") == pytest.approx(0.97, abs=0.02)  # the K role
    assert at.selectbox(key="w_role").value == "k"
    assert at.radio(key="w_order").value == "input" and at.radio(key="w_curve_mode").value == "raw"
    labels = dict(zip(at.session_state["compare_models"], trace["x"], strict=True))
    assert labels[at.selectbox(key="w_pair_a").value] == "babyllama-tok361"
    assert labels[at.selectbox(key="w_pair_b").value] == "babyllama-tok105"
    assert at.query_params["models"] == params["models"]  # the link stays in the address bar as opened
    at.selectbox(key="w_pair_a").set_value(f"org/tiny@{sha}").run()
    assert "up to 1,000 requests to the Hugging Face Hub" in all_text(at)  # the cost of reading the Hub model

    # the same link in another new tab: the pinned Hub model comes from the cache, with no network at all
    hub.reset_counters()
    again = open_link(params)
    assert heatmap(again)["x"] == trace["x"] and hub.requests == []
    assert again.session_state["runs"][f"org/tiny@{sha}"]["status"] == "from cache"


def test_share_link_with_bad_parts_says_so(monkeypatch):
    at = open_link(
        {"models": "demo:stories260k,demo:no-such-model,demo:babyllama-tok105", "order": "sideways", "pair": "0,9"}
    )
    assert not at.exception, at.exception
    notes = texts(at, "warning")
    assert "demo:no-such-model" in notes and "order='sideways'" in notes and "pair='0,9'" in notes
    assert heatmap(at)["x"] and len(heatmap(at)["x"]) == 2


def test_export_shows_the_share_link_and_what_it_leaves_out(hub, monkeypatch, tmp_path):
    sha = hub_with_tiny(hub, monkeypatch)
    mine = tmp_path / "my-model"
    shutil.copytree(FIXTURES / "babyllama-tok361", mine)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/models.py").run()
    at.text_area(key="w_hub_ids").set_value("org/tiny\ndemo:babyllama-tok105").run()
    at.text_area(key="w_local_paths").set_value(str(mine)).run()
    at.button(key="compute").click().run()
    settle(at)
    at.context["url"] = "http://example.org:8501/export"  # the browser's address on the Export page
    at.switch_page("app_pages/export.py").run()
    assert not at.exception, at.exception
    link = at.session_state["share_link"]
    assert link.startswith(f"http://example.org:8501/compare?models=org/tiny@{sha},demo:babyllama-tok105&role=mean")
    assert link in texts(at, "code")
    assert "my-model" in texts(at, "warning") and "means nothing on another computer" in texts(at, "warning")
    # the link opens the same view elsewhere (the local model left out)
    query = dict(kv.split("=", 1) for kv in link.split("?", 1)[1].split("&"))
    other = open_link(query)
    assert heatmap(other)["x"] == [f"org/tiny@{sha[:7]}", "babyllama-tok105"]


# ---------------------------------------------------------------- uploads


def models_page(**env) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    return at.switch_page("app_pages/models.py").run()


def test_upload_is_fingerprinted_under_its_own_name():
    at = models_page()
    gguf = (FIXTURES / "stories260k-q8_0.gguf").read_bytes()
    st_file = (FIXTURES / "babyllama-tok105" / "model.safetensors").read_bytes()
    at.file_uploader(key="w_uploads").set_value(
        [("tiny.gguf", gguf, "application/octet-stream"), ("baby.safetensors", st_file, "application/octet-stream")]
    ).run()
    assert not at.exception, at.exception
    assert "tiny.gguf" in texts(at, "caption") and "baby.safetensors" in texts(at, "caption")
    saved = list(at.session_state["uploads"])
    assert all(Path(p).read_bytes() in (gguf, st_file) for p in saved)
    assert not [p for p in Path(saved[0]).parent.parent.rglob(".part-*")]  # written whole, then renamed
    at.button(key="compute").click().run()
    settle(at)
    assert statuses(at) == {"tiny.gguf": "done", "baby.safetensors": "done"}
    assert set(at.dataframe[0].value["reference"]) == {"(uploaded file)"}  # never the server's temp path
    at.switch_page("app_pages/compare.py").run()
    assert sorted(heatmap(at)["x"]) == ["baby.safetensors", "tiny.gguf"]
    export = json.loads(at.switch_page("app_pages/export.py").run().session_state["exports"]["fingerprints.json"])
    assert {fp["model"] for fp in export} == {"tiny.gguf", "baby.safetensors"}
    assert all(fp["revision"].startswith("sha256:") for fp in export)


def test_upload_refuses_pickles_and_big_files(monkeypatch):
    monkeypatch.setenv("FINGERPRINT_MAX_UPLOAD_MB", "1")
    at = models_page()
    uploader = at.file_uploader(key="w_uploads")
    # the browser refuses a .pkl before sending it; .bin/.pt go through the reader that never unpickles...
    assert uploader.allowed_type == [".safetensors", ".gguf", ".bin", ".pt", ".pth"]
    assert "read without unpickling" in texts(at, "caption")  # ...and this says so
    big = (FIXTURES / "babyllama-tok105" / "model.safetensors").read_bytes()  # 3.7 MB
    uploader.set_value(("big.safetensors", big, "application/octet-stream")).run()
    assert not at.exception, at.exception
    errors = texts(at, "error")
    assert "big.safetensors" in errors and "over the 1 MB limit" in errors
    assert at.session_state["uploads"] == {}
    assert at.button(key="compute").disabled  # nothing to fingerprint


# ---------------------------------------------------------------- Stop


def test_stop_cancels_what_is_not_finished(monkeypatch):
    import dashboard.state as state

    core = importlib.import_module("fingerprint.fingerprinting")
    real = core.compute
    release = threading.Event()

    def slow(ref, opts, progress=None):
        if "babyllama" in ref:  # this one is still reading when Stop is pressed
            assert opts.cancel.wait(30) or release.wait(0)
        return real(ref, opts, progress)

    monkeypatch.setattr(core, "compute", slow)
    monkeypatch.setattr(state, "GRACE_SECONDS", 0.3)
    at = models_page()
    at.text_area(key="w_local_paths").set_value(f"{FIXTURES / 'stories260k'}\n{FIXTURES / 'babyllama-tok105'}").run()
    at.button(key="compute").click().run()
    job = at.session_state["fingerprint_run"]
    for _ in range(100):  # the quick model finishes; the other waits
        if "stories260k" in [k.rsplit("/", 1)[-1] for k in job.outcomes]:
            break
        job.wait(0.05)
    at.run()
    assert not at.exception, at.exception
    bars = [p.proto.text for p in at.get("progress")]
    assert any("stories260k: done" in t for t in bars) and any("babyllama-tok105" in t for t in bars)
    assert at.button(key="compute").disabled  # one run at a time
    at.button(key="stop_job").click().run()
    assert job.cancel.is_set()
    settle(at)
    assert statuses(at) == {"stories260k": "done", "babyllama-tok105": "cancelled"}
    assert list(at.session_state["fps"]) == [str(FIXTURES / "stories260k")]
    assert "1 cancelled" in texts(at, "caption")
    assert not [b for b in at.button if b.key == "stop_job"]  # the panel is gone when the run is over
    release.set()


# ---------------------------------------------------------------- Hub suggestions


def test_hub_suggestions_offline_say_so_and_nothing_breaks():
    at = models_page()
    at.text_input(key="w_hub_search").set_value("qwen").run()  # HF_ENDPOINT is a closed port in tests
    assert not at.exception, at.exception
    assert "Suggestions are unavailable" in texts(at, "caption")
    at.text_area(key="w_hub_ids").set_value("org/x").run()
    assert at.button(key="compute").label == "Fingerprint 1 model" and not at.button(key="compute").disabled


# ---------------------------------------------------------------- shared mode


@pytest.fixture
def shared(monkeypatch):
    monkeypatch.setenv("FINGERPRINT_SHARED_MODE", "1")
    monkeypatch.setenv("FINGERPRINT_MAX_MODELS", "3")
    monkeypatch.setenv("HF_TOKEN", "hf_server_token_never_shown")


def test_shared_mode_hides_local_paths_and_refuses_them(shared, tmp_path):
    mine = tmp_path / "model.safetensors"
    shutil.copy(FIXTURES / "stories260k" / "model.safetensors", mine)
    at = models_page()
    assert not [w for w in at.text_area if w.key == "w_local_paths"]
    assert "shared server" in texts(at, "caption")
    assert [w for w in at.text_input if w.key == "w_token"]  # a visitor may still give their own token
    at.text_area(key="w_hub_ids").set_value(f"{mine}\ndemo:stories260k").run()
    at.button(key="compute").click().run()
    settle(at)
    assert "cannot be read on this shared server" in texts(at, "error")
    assert list(at.session_state["fps"]) == [str(FIXTURES / "stories260k")]  # the demo models are allowed
    assert "hf_server_token_never_shown" not in all_text(at)


def test_shared_mode_queues_computations_beyond_the_server_limit_and_shows_the_place(shared, monkeypatch):
    import dashboard.state as state
    from dashboard.turns import TURNS

    monkeypatch.setenv("FINGERPRINT_MAX_CONCURRENT", "1")
    monkeypatch.setenv("FINGERPRINT_MAX_MODELS", "8")
    monkeypatch.setattr(state, "GRACE_SECONDS", 0.3)
    inside, release = threading.Event(), threading.Event()

    def another_visitor() -> None:
        with TURNS.turn("another visitor"):
            inside.set()
            release.wait(60)

    other = threading.Thread(target=another_visitor, daemon=True)
    at = AppTest.from_file(APP, default_timeout=60).run()  # applies the limit of 1
    other.start()
    try:
        assert inside.wait(30)
        at.button(key="run_demo").click().run()
        job = at.session_state["fingerprint_run"]
        for _ in range(600):  # both of the job's workers are in the queue
            if [line.stage for line in job.lines()[:2]] == ["queued", "queued"] and job.lines()[1].ahead == 1:
                break
            job.wait(0.05)
        at.run()
        assert not at.exception, at.exception
        bars = [p.proto.text for p in at.get("progress")]
        assert "stories260k: waiting for its turn on this shared server (next in line)" in bars
        assert any("1 computation ahead" in t for t in bars)  # this visitor's second model: after the first
        assert "comparison appears here when they are done" in texts(at, "info")
    finally:
        release.set()
        other.join(30)
    settle(at)
    assert not at.exception, at.exception
    assert len(heatmap(at)["z"]) == 4
    TURNS.set_limit(0)


def test_shared_mode_caps_the_model_count(shared):
    at = models_page()
    at.text_area(key="w_hub_ids").set_value("org/a\norg/b\norg/c\norg/d").run()
    at.button(key="compute").click().run()
    assert "at most 3 per session" in texts(at, "error") and "this would make 4" in texts(at, "error")
    assert "fingerprint_run" not in at.session_state


def test_shared_mode_refuses_a_local_path_from_a_share_link(shared, tmp_path):
    mine = tmp_path / "model.safetensors"
    shutil.copy(FIXTURES / "stories260k" / "model.safetensors", mine)
    at = open_link({"models": f"{mine},demo:babyllama-tok361,demo:babyllama-tok105"})
    assert not at.exception, at.exception
    assert "cannot be read on this shared server" in texts(at, "warning")
    assert heatmap(at)["x"] == ["babyllama-tok361", "babyllama-tok105"]
    assert str(mine) not in at.session_state["fps"]


def test_shared_mode_uses_the_server_token_and_never_shows_it(shared, hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    hub.add_repo("org/gated", {p.name: p for p in (FIXTURES / "stories260k").iterdir()}, gated=True)
    hub.add_token("hf_server_token_never_shown", gated_access=["org/gated"])
    at = models_page()
    at.text_area(key="w_hub_ids").set_value("org/gated").run()
    at.button(key="compute").click().run()
    settle(at)
    assert statuses(at) == {"org/gated": "done"}  # read with the server's token
    at.switch_page("app_pages/export.py").run()
    assert "hf_server_token_never_shown" not in all_text(at)
    for body in at.session_state["exports"].values():
        assert "hf_server_token_never_shown" not in body


def test_secrets_act_as_environment(monkeypatch):
    monkeypatch.setenv("FINGERPRINT_SHARED_MODE", "0")  # restored (removed) after the test: the app sets it
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["FINGERPRINT_SHARED_MODE"] = True  # a boolean in secrets.toml
    at.run()
    at.switch_page("app_pages/models.py").run()
    assert not [w for w in at.text_area if w.key == "w_local_paths"]


# ---------------------------------------------------------------- static images


def test_export_without_chromium_says_what_to_do(demo, monkeypatch):
    import fingerprint.present.static_image as static_image

    monkeypatch.setattr(static_image, "find_chromium", lambda: None)
    at = demo
    at.switch_page("app_pages/export.py").run()
    assert not at.exception, at.exception
    info = texts(at, "info")
    assert "Static images need Chromium" in info and "camera icon" in info and "HTML report" in info
    assert not [b for b in at.button if b.key == "make_image"]


def test_every_page_explains_its_words(demo):
    at = demo
    for page in ("app_pages/models.py", "app_pages/compare.py", "app_pages/export.py", "app_pages/stress.py"):
        at.switch_page(page).run()
        assert not at.exception, at.exception
        assert [e.label for e in at.expander if "words" in e.label] == ["What the words on this page mean"], page
        words = texts(at, "markdown")
        assert "**revision**" in words and "**verdict**" in words and "**nats**" in words, page

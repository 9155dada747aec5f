"""The Find the base page through AppTest: an empty library offers the demo models, then a model is scanned
against them: the closest known base in words, the declared base checked, every candidate in a table with its
evidence a click away, the downloads and the share link; a share link opened runs its scan. No network."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fingerprint import Options
from fingerprint.demo import demo_paths
from fingerprint.library.build import build_library
from fingerprint.library.store import Library

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
sys.path.insert(0, str(ROOT))


def settle(at: AppTest, timeout: float = 60) -> AppTest:
    for _ in range(6):
        try:
            task = at.session_state["lineage_run"]
        except KeyError:
            return at
        if task.done and task.collected:
            return at
        assert task.wait(timeout), "the scan did not finish"
        at.run()
    return at


def texts(at: AppTest, *kinds: str) -> str:
    return "\n".join(str(e.value) for kind in kinds for e in at.get(kind))


def evidence_titles(at: AppTest) -> list[str]:
    """The titles of the evidence panels on the page (wrapped to fit a phone: joined again here)."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [(f["layout"].get("title") or {}).get("text", "").replace("<br>", " ") for f in specs]
    return [t.split("<")[0].strip() for t in titles if t.startswith("Lineage evidence")]


@pytest.fixture(scope="module")
def demo_library(tmp_path_factory) -> Path:
    """A library of the four demo models, built once (scans only read it)."""
    folder = tmp_path_factory.mktemp("find-base") / "library"
    build_library(Library.open(folder, create=True), [(p, "demo") for p in demo_paths()], Options(use_cache=False))
    return folder


def open_link(params: dict[str, str]) -> AppTest:
    """A fresh session (a new browser tab) opening http://host/find-base?<params>."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(params)
    at.run()  # AppTest opens on the default page first
    at.switch_page("app_pages/find_base.py").run()
    return settle(at)


def test_a_demo_library_then_the_closest_base_of_a_quantized_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(tmp_path / "library"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/find_base.py").run()
    assert not at.exception, at.exception
    assert "is empty" in "\n".join(str(i.value) for i in at.info)
    at.button(key="build_demo_library").click().run()
    assert not at.exception, at.exception
    assert "4 known models" in "\n".join(str(c.value) for c in at.caption)
    # a model of this session: the demo's quantized copy, typed as its demo name
    at.selectbox(key="w_find_model").set_value("__typed__").run()
    at.text_input(key="w_find_typed").set_value("demo:stories260k-q8_0.gguf").run()
    at.button(key="run_scan").click().run()
    settle(at)
    assert not at.exception, at.exception
    heads = [str(h.value) for h in at.subheader]
    assert any(h.startswith("Closest known: stories260k - consistent with a quantized copy") for h in heads), heads
    assert "declares nothing - closest known: stories260k" in "\n".join(str(m.value) for m in at.markdown)
    table = at.dataframe[0].value
    assert table["library entry"].iloc[0] == "stories260k" and table["verdict"].iloc[0] == "quantized copy"
    assert any("exact model is in the library" in str(c.value) for c in at.caption)  # not compared with itself
    downloads = {b.key for b in at.get("download_button")}
    assert downloads == {"dl_scan_csv", "dl_scan_json", "dl_scan_html"}
    result = at.session_state["scan_result"]
    assert result.declared.outcome == "none_declared" and result.library_size == 4
    # the address bar is the link of this scan, and the page shows it to copy
    assert at.query_params["model"] == "demo:stories260k-q8_0.gguf" and "fetch" not in at.query_params
    assert "Share link" in texts(at, "subheader")
    assert texts(at, "code") == "find-base?model=demo:stories260k-q8_0.gguf"


def test_a_share_link_runs_its_scan_once(demo_library, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(demo_library))
    at = open_link({"model": "demo:stories260k-q8_0.gguf", "fetch": "1"})
    assert not at.exception, at.exception
    heads = texts(at, "subheader")
    assert "Closest known: stories260k - consistent with a quantized copy" in heads
    assert at.text_input(key="w_find_typed").value == "demo:stories260k-q8_0.gguf"  # filled in, as if typed
    assert at.checkbox(key="w_find_fetch").value is True
    assert at.query_params["model"] == "demo:stories260k-q8_0.gguf" and at.query_params["fetch"] == "1"
    assert texts(at, "code") == "find-base?model=demo:stories260k-q8_0.gguf&fetch=1"
    run = at.session_state["lineage_run"]
    at.run()  # the link is still in the address bar: it does not scan again
    assert at.session_state["lineage_run"] is run and not at.exception


def test_a_hub_models_link_is_pinned_to_the_commit_read(demo_library, hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(demo_library))
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    sha = hub.add_repo("org/tiny", {p.name: p for p in Path(demo_paths()[0]).iterdir()})
    at = open_link({"model": "org/tiny"})  # a branch, as someone might type it
    assert not at.exception, at.exception
    assert "Closest known: stories260k - consistent with the same weights" in texts(at, "subheader")
    assert at.query_params["model"] == f"org/tiny@{sha}"  # the link now names the exact weights weighed
    assert texts(at, "code") == f"find-base?model=org/tiny@{sha}"


def test_a_local_model_is_never_put_in_a_link(demo_library, monkeypatch, tmp_path):
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(demo_library))
    mine = tmp_path / "my-model.gguf"
    shutil.copyfile(demo_paths()[1], mine)
    at = open_link({"model": "demo:stories260k"})  # a link's scan first: the address bar carries it
    assert at.query_params["model"] == "demo:stories260k"
    at.text_input(key="w_find_typed").set_value(str(mine)).run()
    at.button(key="run_scan").click().run()
    settle(at)
    assert not at.exception, at.exception
    assert "Closest known: stories260k - consistent with a quantized copy" in texts(at, "subheader")
    assert "Nothing to share as a link: my-model.gguf is a local file or folder" in texts(at, "info")
    assert "model" not in at.query_params and not at.get("code")  # the earlier link is gone from the address bar
    assert str(tmp_path) not in texts(at, "markdown", "caption", "info", "subheader")


def test_a_share_link_while_a_scan_runs_starts_no_other(demo_library, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(demo_library))
    from dashboard.runs import LineageRun

    release = threading.Event()
    busy = LineageRun("scan", lambda task: release.wait(30)).start()
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lineage_run"] = busy
    at.query_params["model"] = "demo:stories260k"
    try:
        at.run()
        at.switch_page("app_pages/find_base.py").run()
        assert not at.exception, at.exception
        assert at.session_state["lineage_run"] is busy and "scan_result" not in at.session_state
        assert "still running" in texts(at, "warning") and "demo:stories260k" in texts(at, "warning")
        assert at.text_input(key="w_find_typed").value == "demo:stories260k"  # one click away once it is done
    finally:
        release.set()


def test_a_shared_server_refuses_a_link_to_a_server_path(demo_library, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_SHARED_MODE", "1")
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(demo_library))
    at = open_link({"model": "/etc/passwd"})
    assert not at.exception, at.exception
    error = texts(at, "error")
    assert "The link you opened was not scanned" in error and "cannot be read on this shared server" in error
    assert "lineage_run" not in at.session_state and "scan_result" not in at.session_state  # nothing scanned
    assert "(this server's, read-only)" in texts(at, "caption") and str(demo_library) not in texts(at, "caption")


def test_the_evidence_of_each_candidate_is_one_pick_away(demo_library, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(demo_library))
    at = open_link({"model": "demo:stories260k-q8_0.gguf"})
    picker = at.selectbox(key="w_scan_evidence")
    assert picker.label == "Evidence for" and len(picker.options) == 3  # every candidate of the table
    # the closest related candidate first, its verdict as Compare shows a pair's
    assert picker.value == at.session_state["scan_result"].closest.entry.key
    assert "Verdict: consistent with a quantized copy" in texts(at, "subheader")
    assert evidence_titles(at) == ["Lineage evidence: stories260k-q8_0.gguf vs stories260k"]
    other = next(k for k in picker.options if "babyllama-tok361" in k)
    picker.set_value(other).run()
    assert not at.exception, at.exception
    # another width and no vocabulary: weighed all the same, its hidden dims lined up by their weight profiles
    assert "Verdict: no evidence of lineage (not proof of independence)" in texts(at, "subheader")
    assert evidence_titles(at) == ["Lineage evidence: stories260k-q8_0.gguf vs babyllama-tok361"]


def test_a_shared_server_without_a_library_says_so_and_offers_no_build(tmp_path, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_SHARED_MODE", "1")
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(tmp_path / "none"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/find_base.py").run()
    assert not at.exception, at.exception
    assert "operator builds one" in "\n".join(str(i.value) for i in at.info)
    assert not [b for b in at.button if b.key == "build_demo_library"]

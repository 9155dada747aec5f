"""The Find the base page through AppTest: an empty library offers the demo models, then a model is scanned
against them: the closest known base in words, the declared base checked, every candidate in a table. No network."""

from __future__ import annotations

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

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
    assert downloads == {"dl_scan_csv", "dl_scan_json"}
    result = at.session_state["scan_result"]
    assert result.declared.outcome == "none_declared" and result.library_size == 4


def test_a_shared_server_without_a_library_says_so_and_offers_no_build(tmp_path, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_SHARED_MODE", "1")
    monkeypatch.setenv("FINGERPRINT_LIBRARY", str(tmp_path / "none"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("app_pages/find_base.py").run()
    assert not at.exception, at.exception
    assert "operator builds one" in "\n".join(str(i.value) for i in at.info)
    assert not [b for b in at.button if b.key == "build_demo_library"]

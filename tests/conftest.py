"""Shared test fixtures: the real trained models (the demo models), an isolated cache, no network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# One BLAS thread (read when numpy loads OpenBLAS, after this file): the tests' matrices are small, and OpenBLAS's
# spinning worker threads make them many times slower on a busy machine (test_lineage_transforms.py: 42 s instead
# of 6 s at a load of 4 on 2 cores). Servers the tests start inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from fingerprint.demo import DEMO_DIR

TESTS = Path(__file__).parent
FIXTURES = DEMO_DIR  # the real trained models the tests read are the demo models (their README says which)
sys.path.insert(0, str(TESTS))  # helpers: hub_server, layouts

# Never reach the real Hub from a test; every Hub test passes its local server's endpoint.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # a closed port: any stray request fails fast


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FINGERPRINT_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def hub():
    """A local server speaking the Hub's HTTP protocol; the real huggingface_hub client talks to it."""
    from hub_server import FakeHub

    from fingerprint.sources.hub import RESOLVED

    RESOLVED.clear()  # storage URLs resolved in another test (a port may be reused) are not this server's
    with FakeHub() as server:
        yield server


@pytest.fixture
def fast_retries(monkeypatch):
    import fingerprint.sources.hub as hubsrc

    monkeypatch.setattr(hubsrc, "BACKOFF", 0.01)
    monkeypatch.setattr(hubsrc, "RETRIES", 3)


# Tests that take more than about 2 s on a 2-core machine: `./run test -m "not slow"` leaves them out of a quick run
# (`./run test` runs everything). Kept here, by name, so that the test files stay as they are; a name that no
# longer matches a test of its file is an error.
SLOW = {
    "test_e2e_browser.py": {
        "test_demo_compare_export_in_a_real_browser",
        "test_shared_mode_deletes_a_visitors_uploads_when_their_session_ends",
        "test_a_deep_link_on_a_fresh_server_gets_the_apps_navigation",
        "test_share_link_opens_the_same_view_in_a_fresh_browser",
        "test_shared_mode_several_visitors_at_once_each_get_their_heatmap",
    },
    "test_plots_export.py": {
        "test_static_image_png_and_svg_where_chromium_is",
        "test_fifty_models_each_figure_under_a_second_and_labels_readable",
    },
    "test_app_lineage.py": {"test_compare_leads_with_the_verdict_computed_without_a_click"},
    "test_fuzz_headers.py": {"test_safetensors_structured_headers", "test_gguf_mutated"},
    "test_hub_limits.py": {
        "test_a_verdict_reports_its_rate_limit_waits",
        "test_a_trickling_server_meets_the_deadline_and_the_other_model_is_kept",
    },
}


def pytest_collection_modifyitems(config, items):
    modules = {}
    for item in items:
        modules[item.path.name] = item.module
        if item.originalname in SLOW.get(item.path.name, ()):
            item.add_marker(pytest.mark.slow)
    unknown = [
        f"{file}::{name}"
        for file, names in SLOW.items()
        for name in names
        if file in modules and not hasattr(modules[file], name)
    ]
    if unknown:
        raise pytest.UsageError(f"conftest.SLOW names tests that do not exist: {', '.join(sorted(unknown))}")


def fixture_files(model_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in model_dir.iterdir() if p.is_file()}

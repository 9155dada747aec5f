"""Shared test fixtures: the real trained models (the demo models), an isolated cache, no network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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


def fixture_files(model_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in model_dir.iterdir() if p.is_file()}

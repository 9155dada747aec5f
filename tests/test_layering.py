"""The house's layers hold: the core imports neither plotly nor streamlit, presentation never imports streamlit,
and the dashboard's plain modules (links, settings, uploads, runs, ...) import no streamlit. Each check imports
the modules in a fresh interpreter and looks at what got loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fingerprint"


def modules(folder: Path, package: str) -> list[str]:
    out = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts != ("__main__",):  # runs the command line when imported
            out.append(".".join((package, *parts)))
    return out


def loaded_after_importing(names: list[str]) -> set[str]:
    """The top-level packages loaded by importing ``names`` in a fresh interpreter (from the repository root)."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


CORE = [m for m in modules(PACKAGE, "fingerprint") if not m.startswith("fingerprint.present")]
PRESENT = modules(PACKAGE / "present", "fingerprint.present")
DASHBOARD_PLAIN = [
    f"dashboard.{name}"
    for name in ("links", "settings", "policy", "uploads", "hub_search", "presets", "runs", "turns", "session_end")
]


def test_there_is_a_core_and_a_presentation_to_check():
    assert "fingerprint.cli" in CORE and "fingerprint.fingerprinting" in CORE and "fingerprint.lineage.evidence" in CORE
    assert "fingerprint.present.report" in PRESENT and "fingerprint.present.texts" in PRESENT


@pytest.mark.parametrize(
    ("names", "forbidden"),
    [
        (CORE, {"plotly", "streamlit"}),
        (PRESENT, {"streamlit"}),
        (DASHBOARD_PLAIN, {"streamlit", "plotly"}),
    ],
    ids=["core: no plotly, no streamlit", "presentation: no streamlit", "dashboard's plain modules: no streamlit"],
)
def test_layers_import_only_what_they_may(names, forbidden):
    assert not loaded_after_importing(names) & forbidden

"""Helpers for the real-browser tests: a `streamlit run` server on a free port, Debian's Chromium driven by
Playwright, and the Plotly figures read back from the page.

Chromium comes from the system (`./run test` installs Debian's `chromium` when it runs as root); Playwright's
own browser download is never used. FINGERPRINT_CHROMIUM points at another Chromium or Chrome binary.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = os.environ.get("FINGERPRINT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOW_TO_INSTALL = (
    "Debian/Ubuntu: `sudo apt-get install chromium` (`./run test` does this itself when run as root), "
    "or set FINGERPRINT_CHROMIUM=/path/to/chromium"
)


def no_browser(reason: str) -> None:
    """Skip on a developer's machine; fail on CI, where `./run test` installs Chromium and the test must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the browser test)", pytrace=False)
    pytest.skip(f"{reason}; to run the browser test: {HOW_TO_INSTALL}")


def launch_chromium(playwright):
    if not os.access(CHROMIUM, os.X_OK):
        no_browser(f"no Chromium at {CHROMIUM}")
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
    except Exception as e:
        no_browser(f"Chromium at {CHROMIUM} did not start: {str(e).splitlines()[0]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StreamlitServer:
    """`python -m streamlit run app.py` in its own process group, on a free port; stopped on exit."""

    def __init__(self, log_path: Path, env: dict[str, str] | None = None, app: str = "app.py"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.app = app
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        cmd = [
            sys.executable, "-m", "streamlit", "run", self.app,
            "--server.headless", "true",
            "--server.port", str(self.port),
            "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none",
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self.wait_healthy(60)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"streamlit did not answer {self.url}/_stcore/health within {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if getattr(self, "_log", None) is not None:
            self._log.close()


# Every Plotly chart on the page, read from the live DOM: each .js-plotly-plot element carries its figure.
_FIGURES_JS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => {
  const arr = a => (a == null ? null : Array.from(a, v => (v != null && typeof v === 'object' && 'length' in v) ? Array.from(v) : v));
  const title = el.layout && el.layout.title;
  return {
    title: title == null ? null : (typeof title === 'string' ? title : (title.text ?? null)),
    data: (el.data || []).map(t => ({type: t.type || 'scatter', name: t.name ?? null, x: arr(t.x), y: arr(t.y), z: arr(t.z)})),
  };
})
"""


def plotly_figures(page) -> list[dict]:
    return page.evaluate(_FIGURES_JS)


def heatmap(page) -> tuple[dict, dict] | None:
    """(figure, heatmap trace) of the first chart with a heatmap, or None when there is none yet."""
    for fig in plotly_figures(page):
        for trace in fig["data"]:
            if trace["type"] == "heatmap" and trace["z"]:
                return fig, trace
    return None


def app_idle(page) -> bool:
    """Streamlit shows its status widget ("Running...") in the header while a script runs."""
    return not page.get_by_test_id("stStatusWidget").is_visible()


def wait_for_heatmap(page, n: int, timeout: float = 60, give_up_on: str | None = None) -> tuple[dict, dict]:
    """Wait until a heatmap with n x n cells is drawn (Streamlit redraws as the script runs).

    give_up_on: a text that, shown for 5 s while the app is idle, means no heatmap is coming: fail early.
    """
    deadline = time.monotonic() + timeout
    found, stuck_since = None, None
    while time.monotonic() < deadline:
        found = heatmap(page)
        if found and len(found[1]["z"]) == n and all(len(row) == n for row in found[1]["z"]):
            return found
        if give_up_on and page.get_by_text(give_up_on).first.is_visible() and app_idle(page):
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 5:
                raise AssertionError(f"no heatmap on {page.url}: the page says {give_up_on!r}")
        else:
            stuck_since = None
        page.wait_for_timeout(200)
    raise AssertionError(f"no {n} x {n} heatmap on {page.url} within {timeout:.0f} s; last seen: {found}")


def cell(trace: dict, a: str, b: str) -> float:
    return trace["z"][trace["y"].index(a)][trace["x"].index(b)]


def shot(page, name: str, element=None) -> Path:
    """A screenshot into tests/screenshots/ (git-ignored), optionally after scrolling an element into view."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if element is not None:
        element.scroll_into_view_if_needed()
    page.screenshot(path=str(path))
    return path

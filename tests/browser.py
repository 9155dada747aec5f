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
    data: (el.data || []).map(t => ({type: t.type || 'scatter', name: t.name ?? null, x: arr(t.x), y: arr(t.y), z: arr(t.z), text: arr(t.text)})),
  };
})
"""


def plotly_figures(page) -> list[dict]:
    return page.evaluate(_FIGURES_JS)


def heatmap(page, name: str | None = None) -> tuple[dict, dict] | None:
    """(figure, heatmap trace) of the first chart with a heatmap (named ``name``: "verdict" for the verdict matrix,
    "correlation" for the σ heatmap), or None when there is none yet."""
    for fig in plotly_figures(page):
        for trace in fig["data"]:
            if trace["type"] == "heatmap" and trace["z"] and name in (None, trace.get("name")):
                return fig, trace
    return None


def chart_with_trace(page, name: str):
    """The locator of the first chart that has a trace named ``name`` (e.g. "correlation": the σ heatmap)."""
    for i, fig in enumerate(plotly_figures(page)):
        if any(t.get("name") == name for t in fig["data"]):
            return page.locator(".js-plotly-plot").nth(i)
    raise AssertionError(f"no chart with a trace named {name!r}")


def app_idle(page) -> bool:
    """Streamlit shows its status widget ("Running...") in the header while a script runs."""
    return not page.get_by_test_id("stStatusWidget").is_visible()


def wait_for_heatmap(
    page, n: int, timeout: float = 120, give_up_on: str | None = None, name: str | None = None
) -> tuple[dict, dict]:
    """Wait until a heatmap with n x n cells is drawn (Streamlit redraws as the script runs).

    give_up_on: a text that, shown for 5 s while the app is idle, means no heatmap is coming: fail early.
    """
    deadline = time.monotonic() + timeout
    found, stuck_since = None, None
    while time.monotonic() < deadline:
        found = heatmap(page, name)
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


def text_cell(trace: dict, a: str, b: str) -> str:
    """What a heatmap cell says (the verdict matrix writes the relation in its cells)."""
    return trace["text"][trace["y"].index(a)][trace["x"].index(b)].replace("<br>", " ")


def shot(page, name: str, element=None) -> Path:
    """A screenshot into tests/screenshots/ (git-ignored), optionally after scrolling an element into view."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if element is not None:
        element.scroll_into_view_if_needed()
    page.screenshot(path=str(path))
    return path


# The text boxes of every Plotly chart (title, subplot titles and other annotations, axis titles, legend, colour
# bar title), each chart's plot areas and tick labels, read from the drawn SVG.
_CHART_LAYOUT_JS = """
() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(el => el.checkVisibility()).map((el, i) => {
  const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height}; };
  const visible = b => b.width > 0 && b.height > 0;
  const named = (sel, kind) => Array.from(el.querySelectorAll(sel)).map(e => ({kind, text: (e.textContent || '').slice(0, 60), ...box(e)})).filter(visible);
  const title = el.layout && el.layout.title;
  const ticks = Array.from(el.querySelectorAll('.xaxislayer-above, .yaxislayer-above')).map(axis =>
    Array.from(axis.querySelectorAll('.xtick text, .ytick text')).map(e => ({rotated: (e.getAttribute('transform') || '').includes('rotate'), text: e.textContent, ...box(e)})).filter(visible));
  return {
    index: i,
    title: title == null ? '' : (typeof title === 'string' ? title : (title.text || '')),
    chart: box(el.querySelector('.main-svg') || el),
    texts: [
      ...named('.infolayer .gtitle', 'title'),
      ...named('.infolayer .annotation', 'annotation'),
      ...named('.infolayer text[class$="title"]:not(.gtitle)', 'axis title'),
      ...named('.infolayer .legend', 'legend'),
    ],
    plots: Array.from(el.querySelectorAll('.draglayer .nsewdrag')).map(box),
    ticks,
  };
})
"""


def _overlap(a: dict, b: dict, slack: float = 1.0) -> bool:
    return min(a["right"], b["right"]) - max(a["left"], b["left"]) > slack and (
        min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > slack
    )


def layout_problems(page, min_plot_width: float = 150) -> list[str]:
    """What a person would find broken in the page's charts, in words: text boxes that overlap, text cut off at a
    chart's edge, tick labels written over each other, plot areas too narrow to read, a page wider than the window."""
    problems = []
    for c in page.evaluate(_CHART_LAYOUT_JS):
        name = f"chart {c['index']} ({c['title'][:50]!r})"
        texts, chart = c["texts"], c["chart"]
        for k, a in enumerate(texts):
            if a["left"] < chart["left"] - 1 or a["right"] > chart["right"] + 1 or a["top"] < chart["top"] - 1:
                problems.append(f"{name}: {a['kind']} {a['text']!r} is cut off at the chart's edge")
            for b in texts[k + 1 :]:
                if _overlap(a, b):
                    problems.append(f"{name}: {a['kind']} {a['text']!r} overlaps {b['kind']} {b['text']!r}")
        for axis in c["ticks"]:
            flat = [t for t in axis if not t["rotated"]]
            for k, a in enumerate(flat):
                for b in flat[k + 1 :]:
                    if _overlap(a, b):
                        problems.append(f"{name}: tick labels {a['text']!r} and {b['text']!r} overlap")
            for t in axis:
                if t["left"] < chart["left"] - 1 or t["right"] > chart["right"] + 1:
                    problems.append(f"{name}: tick label {t['text']!r} is cut off at the chart's edge")
                for a in texts:
                    if _overlap(t, a, slack=2):
                        problems.append(f"{name}: tick label {t['text']!r} overlaps {a['kind']} {a['text']!r}")
        for p in c["plots"]:
            if p["width"] < min_plot_width:
                problems.append(f"{name}: a plot area is {p['width']:.0f} px wide")
    wide = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if wide[0] > wide[1]:
        problems.append(f"the page is {wide[0]} px wide in a {wide[1]} px window")
    return problems


def layout_settled(page, timeout: float = 60) -> list[str]:
    """The page's layout problems once its charts have been redrawn for the window's size: [] as soon as there are
    none, or, after ``timeout`` seconds, the problems still there (Plotly redraws a resized chart in a few passes)."""
    charts_fit_their_boxes(page)
    deadline = time.monotonic() + timeout
    while True:
        problems = layout_problems(page)
        if not problems or time.monotonic() > deadline:
            return problems
        page.wait_for_timeout(200)


def charts_fit_their_boxes(page) -> None:
    """Wait until every Plotly chart has been redrawn at its container's width (after a change of window size)."""
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).every(el => {
             const svg = el.querySelector('.main-svg'), width = el.getBoundingClientRect().width;
             return !el.checkVisibility() || (svg && Math.abs(svg.getBoundingClientRect().width - width) < 2);
           })"""
    )

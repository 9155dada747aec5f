"""The dashboard in a real browser: `streamlit run app.py` and Debian's Chromium driven by Playwright.

Home -> "Run the demo" -> Compare (a 4 x 4 Plotly heatmap in the DOM) -> Export (download the matrix CSV), and a
share link opened in a fresh browser. No network: the demo models ship in fingerprint/demo_models, the Hub is a closed port.
Screenshots of every step go to tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time
import urllib.parse
from pathlib import Path

import pytest
from browser import (
    SCREENSHOTS,
    StreamlitServer,
    cell,
    chart_with_trace,
    launch_chromium,
    layout_settled,
    shot,
    text_cell,
    wait_for_heatmap,
)
from conftest import FIXTURES
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 120_000  # only a failing test waits this long; a busy 2-core machine once took over 60 s
VIEWPORT = {"width": 1400, "height": 1000}
# Assertions wait for the app as long as actions do: a cold, busy machine can take more than Playwright's default
# 5 s to draw a page, and a test must not fail for that (it failed once in CI that way).
expect.set_options(timeout=TIMEOUT_MS)
DEMO_NAMES = ["stories260k", "stories260k-q8_0.gguf", "babyllama-tok361", "babyllama-tok105"]


@pytest.fixture(scope="module")
def chromium():
    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


def _serve(tmp_path, monkeypatch, **env):
    """The app, with this test's isolated cache (conftest sets FINGERPRINT_CACHE per test) and no Hub."""
    monkeypatch.delenv("FINGERPRINT_SHARED_MODE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert os.environ["FINGERPRINT_CACHE"].startswith(str(tmp_path))
    assert os.environ["HF_ENDPOINT"] == "http://127.0.0.1:9"
    with StreamlitServer(tmp_path / "streamlit.log") as s:
        yield s
        log = s.log()
    assert "Traceback" not in log, log


@pytest.fixture
def server(chromium, tmp_path, monkeypatch):
    """This computer's dashboard: local paths allowed."""
    yield from _serve(tmp_path, monkeypatch)


@pytest.fixture
def shared_server(chromium, tmp_path, monkeypatch):
    """A deployed dashboard, set up as the Dockerfile does."""
    yield from _serve(tmp_path, monkeypatch, FINGERPRINT_SHARED_MODE="1", STREAMLIT_SERVER_MAX_UPLOAD_SIZE="200")


def new_page(chromium):
    context = chromium.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


def sidebar_link(page, title: str):
    """A page's link in the sidebar, opening the sidebar first when a phone-width check closed it."""
    sidebar = page.get_by_test_id("stSidebar")
    for _ in range(40):
        if sidebar.get_attribute("data-collapsed") != "true":
            break
        with contextlib.suppress(PlaywrightError):
            page.get_by_role("button", name="Expand sidebar").click(force=True, timeout=2_000)
        page.wait_for_timeout(250)
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name=title)


def test_demo_compare_export_in_a_real_browser(server, chromium):
    started = time.monotonic()
    context, page = new_page(chromium)
    try:
        page.goto(server.url)
        run_demo = page.get_by_role("button", name="Run the demo")
        expect(run_demo).to_be_visible()
        expect(page.get_by_role("heading", name="How do two language models' weights relate?")).to_be_visible()
        shot(page, "e2e-1-home")
        reads_at_both_widths(page, "home", run_demo)  # on a phone the demo comes before the explanation

        run_demo.click()
        page.wait_for_url("**/compare**", timeout=TIMEOUT_MS)
        expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible()
        # the answer first: the demo's models are small, so the verdicts are computed unasked and lead the page
        expect(page.get_by_role("heading", name="Verdict: consistent with a quantized copy")).to_be_visible()
        _, verdicts = wait_for_heatmap(page, 4, name="verdict")
        shot(page, "e2e-2-compare-verdicts", chart_with_trace(page, "verdict"))
        assert sorted(verdicts["x"]) == sorted(DEMO_NAMES)
        assert text_cell(verdicts, "stories260k", "stories260k-q8_0.gguf") == "quantized copy"
        assert text_cell(verdicts, "babyllama-tok361", "babyllama-tok105") == "no evidence"
        # the σ-curves the paper used are one choice away, labelled as the weakest signal
        page.get_by_role("combobox", name="Show").click()
        page.get_by_role("option", name="σ-curves (the paper's measure: weakest)").click()
        fig, trace = wait_for_heatmap(page, 4, name="correlation")
        sigma_chart = chart_with_trace(page, "correlation")
        shot(page, "e2e-2-compare", sigma_chart)
        assert sorted(trace["x"]) == sorted(DEMO_NAMES)
        assert trace["x"] == trace["y"]
        assert cell(trace, "stories260k", "stories260k-q8_0.gguf") > 0.99  # a quantized copy
        assert cell(trace, "babyllama-tok361", "babyllama-tok105") == pytest.approx(0.95, abs=0.02)  # independent
        assert "mean over projections" in fig["title"].replace("<br>", " ")  # the title wraps to fit a phone
        # the cell values are written on the chart itself (SVG text), not only in the data
        labels = sigma_chart.locator(".heatmap-label text")
        expect(labels).to_have_count(16)
        assert "1.00" in labels.all_text_contents()
        charts_read_on_a_phone_and_a_wide_screen(page)

        sidebar_link(page, "Export").click()
        page.wait_for_url("**/export", timeout=TIMEOUT_MS)
        expect(page.get_by_role("heading", name="Export", exact=True)).to_be_visible()
        expect(page.get_by_text("Correlation matrix (CSV)")).to_be_visible()
        button = page.locator(".st-key-dl_matrix-csv").get_by_role("button", name="Download")  # key dl_matrix.csv
        expect(button).to_be_visible()
        shot(page, "e2e-3-export")
        reads_at_both_widths(page, "export")
        with page.expect_download(timeout=TIMEOUT_MS) as info:
            button.click()
        download = info.value
        assert download.suggested_filename.startswith("llm-fingerprint-")
        assert download.suggested_filename.endswith("-matrix.csv")
        rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
        assert rows[0][0].startswith("model \\ Pearson r of σ-curves")
        assert rows[0][1:] == trace["x"] and [r[0] for r in rows[1:]] == trace["y"]  # what the heatmap showed
        for r, zrow in zip(rows[1:], trace["z"], strict=True):
            assert [float(v) for v in r[1:]] == pytest.approx(zrow, abs=1e-6)
    finally:
        context.close()
    print(f"\nbrowser: demo -> compare -> export in {time.monotonic() - started:.1f} s")


def phone_sidebar_closed(page) -> None:
    """A phone opens a page with the sidebar closed; one opened at a wide width (to click a page) would stay over
    the content when the window narrows: close it, and wait until it has slid out of the window."""
    sidebar = page.get_by_test_id("stSidebar")
    collapse = sidebar.get_by_role("button", name="Collapse sidebar")
    for _ in range(40):  # the button is redrawn as the page settles: a click may land on a detached one
        if sidebar.get_attribute("data-collapsed") == "true":
            break
        with contextlib.suppress(PlaywrightError):
            collapse.click(force=True, timeout=2_000)
        page.wait_for_timeout(250)
    expect(sidebar).to_have_attribute("data-collapsed", "true")
    for _ in range(300):
        box = sidebar.bounding_box()
        if box is None or box["x"] + box["width"] <= 0:
            return
        page.wait_for_timeout(100)
    raise AssertionError("the sidebar stayed over the page")


def reads_at_both_widths(page, name: str, first_screen=None) -> None:
    """The page at 1600 px and at 400 px: no chart's title, subplot titles, axis titles or legend overlap or are cut
    off, every plot area is wide enough to read, the page is no wider than the window, and ``first_screen`` (a
    locator) is on the first screen. Full-page screenshots: e2e-<name>-<width>px.png."""
    try:
        for width in (1600, 400):
            page.set_viewport_size({"width": width, "height": 1000})
            if width < 640:
                phone_sidebar_closed(page)
            problems = layout_settled(page)
            # the page scrolls inside Streamlit's main box, not the document
            page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
            if first_screen is not None:
                expect(first_screen).to_be_in_viewport()
            tall = page.evaluate("() => document.querySelector('[data-testid=stMain]').scrollHeight")
            page.set_viewport_size({"width": width, "height": tall})  # a window as tall as the page shows it all
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"e2e-{name}-{width}px.png"))
            assert not problems, f"{name} at {width} px:\n" + "\n".join(problems)
    finally:
        page.set_viewport_size(VIEWPORT)


def charts_read_on_a_phone_and_a_wide_screen(page) -> None:
    """Compare, with All pairs on the σ-curves and then on the verdicts, at both widths, the verdict of the top pair
    on the first screen (the answer first, on a phone too)."""
    verdict = page.get_by_role("heading", name="Verdict:")
    expect(page.locator(".js-plotly-plot").filter(has_text="Lineage evidence")).to_be_visible()
    reads_at_both_widths(page, "compare-sigma", verdict)
    show = page.get_by_role("combobox", name="Show")
    show.scroll_into_view_if_needed()  # after the window's resizes a click alone did not open the list
    show.click()
    page.get_by_role("option", name="Verdicts (all signals weighed)").click()
    wait_for_heatmap(page, 4, name="verdict")
    reads_at_both_widths(page, "compare-verdicts", verdict)


def test_models_and_stress_test_read_on_a_phone_and_a_wide_screen(server, chromium):
    """The other pages with something on them: Models with the demo's four models, Find the base with a scan, and
    the Stress test with its figure and table, at 1600 px and at 400 px (Compare and Export: in the demo test)."""
    context, page = new_page(chromium)
    try:
        page.goto(server.url)
        page.get_by_role("button", name="Run the demo").click()
        page.wait_for_url("**/compare**", timeout=TIMEOUT_MS)
        expect(page.get_by_role("heading", name="Verdict:")).to_be_visible()
        sidebar_link(page, "Models").click()
        expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # the table of the demo's models
        reads_at_both_widths(page, "models")

        # Find the base: a library of the demo models, then the closest known base of the quantized copy
        sidebar_link(page, "Find the base").click()
        page.get_by_role("button", name="Build a library of the demo models").click()
        show = page.get_by_role("combobox", name="Model")
        show.click()
        page.get_by_role("option", name="stories260k-q8_0.gguf").click()
        page.get_by_role("button", name="Find the base").click()
        answer = page.get_by_role("heading", name="Closest known: stories260k - consistent with a quantized copy")
        expect(answer).to_be_visible()
        # the closest candidate's evidence below the table, as Compare shows a pair's; then the scan's share link
        expect(page.get_by_role("combobox", name="Evidence for")).to_be_visible()
        expect(page.get_by_role("heading", name="Verdict: consistent with a quantized copy")).to_be_visible()
        expect(page.locator(".js-plotly-plot").filter(has_text="Lineage evidence")).to_be_visible()
        expect(page.get_by_role("heading", name="Share link")).to_be_visible()
        link = page.get_by_test_id("stCode").filter(has_text="find-base?model=").inner_text().strip()
        assert link == f"{server.url.rstrip('/')}/find-base?model=demo:stories260k-q8_0.gguf", link
        assert urllib.parse.unquote(page.url) == link  # the address bar is the link of the scan shown
        reads_at_both_widths(page, "find-base", answer)
        with page.expect_download(timeout=TIMEOUT_MS) as info:  # the page is built on the click
            page.get_by_role("button", name="Download as HTML").click()
        report = Path(info.value.path()).read_text(encoding="utf-8")
        assert info.value.suggested_filename == "find-the-base.html"
        assert "<h1>Find the base: stories260k-q8_0.gguf</h1>" in report and "Lineage evidence: " in report
        # the link in a fresh browser: the model filled in and scanned, with nothing clicked
        other, fresh = new_page(chromium)
        try:
            fresh.goto(link)
            again = fresh.get_by_role("heading", name="Closest known: stories260k - consistent with a quantized copy")
            expect(again).to_be_visible()
        finally:
            other.close()

        sidebar_link(page, "Stress test").click()
        expect(page.get_by_role("heading", name="Stress test", exact=True)).to_be_visible()
        assert "model=" not in page.url  # the scan's link stays with its page
        page.get_by_role("button", name="Run the stress test").click()
        expect(page.get_by_role("heading", name="Which signals survived")).to_be_visible()
        expect(page.locator(".js-plotly-plot").filter(has_text="Stress test of")).to_be_visible()
        reads_at_both_widths(page, "stress")
    finally:
        context.close()


def test_shared_mode_deletes_a_visitors_uploads_when_their_session_ends(chromium, tmp_path, monkeypatch):
    uploads = tmp_path / "uploads"
    mine = tmp_path / "my-model.safetensors"
    mine.write_bytes((FIXTURES / "stories260k" / "model.safetensors").read_bytes())
    serve = contextlib.contextmanager(_serve)
    with serve(
        tmp_path,
        monkeypatch,
        FINGERPRINT_SHARED_MODE="1",
        FINGERPRINT_UPLOAD_DIR=str(uploads),
        STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL="1",
    ) as server:
        context, page = new_page(chromium)
        try:
            page.goto(f"{server.url}/models")
            page.locator("input[type=file]").set_input_files(str(mine))
            expect(page.get_by_text("my-model.safetensors").first).to_be_visible()
            saved: list[Path] = []
            for _ in range(2400):
                saved = list(uploads.glob("session-*/*/my-model.safetensors"))
                if saved:
                    break
                page.wait_for_timeout(50)
            assert len(saved) == 1 and saved[0].read_bytes() == mine.read_bytes()
        finally:
            context.close()  # the visitor leaves and does not come back
        for _ in range(2400):  # the TTL (1 s) plus two of the janitor's rounds (2 s), with room for a slow machine
            if not list(uploads.glob("session-*")):
                break
            time.sleep(0.05)
        assert not list(uploads.glob("session-*")), "the session's upload folder is still there"


def share_url(base: str, models: list[str], role: str, order: str, signal: str = "sigma") -> str:
    query = urllib.parse.urlencode(
        {"models": ",".join(models), "role": role, "order": order, "signal": signal}, safe="/,"
    )
    return f"{base}/compare?{query}"


NAV = ["Home", "Models", "Compare", "Export", "Stress test", "Find the base"]


def test_a_deep_link_on_a_fresh_server_gets_the_apps_navigation(server, chromium):
    """A share link is often the first request a just-woken deployment gets: it must run app.py and its navigation.

    (A folder named pages/ beside app.py breaks this: until app.py has run once in the server's life, Streamlit
    runs a requested page directly, in its old pages/ mode, without app.py.)
    """
    context, page = new_page(chromium)
    try:
        page.goto(f"{server.url}/export")
        expect(page.get_by_role("heading", name="Export", exact=True)).to_be_visible()
        links = page.get_by_test_id("stSidebarNavLink")
        try:
            expect(links).to_have_count(len(NAV), timeout=15_000)
            expect(links).to_contain_text(NAV)
        finally:
            shot(page, "e2e-5-deep-link-fresh-server")
    finally:
        context.close()


def test_share_link_opens_the_same_view_in_a_fresh_browser(server, chromium):
    """The link is the first request this server gets, in a browser with no session: the Compare view it names."""
    # An order clustering would never produce (each pair split up), so "input" order is visible in the result.
    names = ["stories260k", "babyllama-tok361", "stories260k-q8_0.gguf", "babyllama-tok105"]
    url = share_url(server.url, [str(FIXTURES / n) for n in names], role="k", order="input")
    context, page = new_page(chromium)  # a fresh context: no session, no cookies, nothing computed yet
    try:
        page.goto(url)
        expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible()
        try:
            fig, trace = wait_for_heatmap(page, 4, give_up_on="No models fingerprinted yet", name="correlation")
        finally:
            plot = page.locator(".js-plotly-plot")
            shot(page, "e2e-4-share-link", plot.first if plot.count() else None)
        assert trace["x"] == names and trace["y"] == names  # input order, all four models
        assert "K projection" in fig["title"]  # the K role's matrix...
        role_box = page.get_by_role("combobox", name="Which σ-curve")
        expect(role_box).to_have_value("K projection")  # ...and the K role chosen in the selector
        expect(page.get_by_test_id("stSidebarNavLink")).to_have_count(len(NAV))
        assert cell(trace, "babyllama-tok361", "babyllama-tok105") == pytest.approx(0.97, abs=0.02)
    finally:
        context.close()


def test_shared_mode_several_visitors_at_once_each_get_their_heatmap(shared_server, chromium):
    """Visitors whose demos run at the same moment, with more of them than the server's turns (2 by default):
    each gets their own heatmap (issue 9: a page change from the progress poller once left some blank)."""
    visitors = [new_page(chromium) for _ in range(3)]
    try:
        for _, page in visitors:
            page.goto(shared_server.url)
        for _, page in visitors:
            expect(page.get_by_role("button", name="Run the demo")).to_be_enabled()
        for _, page in visitors:
            page.get_by_role("button", name="Run the demo").click()
        for i, (_, page) in enumerate(visitors):
            page.wait_for_url("**/compare**", timeout=TIMEOUT_MS)  # with the view's query once it is drawn
            try:
                # the demo's models ship with the tool: each visitor gets their verdicts without a click
                _, trace = wait_for_heatmap(page, 4, timeout=240, name="verdict")
            finally:
                shot(page, f"e2e-6-shared-mode-visitor-{i}")
            assert text_cell(trace, "stories260k", "stories260k-q8_0.gguf") == "quantized copy"
    finally:
        for context, _ in visitors:
            context.close()
    context, page = new_page(chromium)
    try:
        page.goto(
            share_url(shared_server.url, [str(Path(__file__).parent / "conftest.py")], role="mean", order="input")
        )
        expect(page.get_by_text("cannot be read on this shared server")).to_be_visible()
        shot(page, "e2e-7-shared-mode-local-path-refused")
    finally:
        context.close()

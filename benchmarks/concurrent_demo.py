"""N visitors run the demo at the same moment on one shared-mode server; how many get their heatmap (issue 9).

    python benchmarks/concurrent_demo.py [N]      (default 8; needs Debian's chromium, as the browser test does)

Prints each page's time to its heatmap, and saves a screenshot of every page that got none to /tmp/race-<i>.png
(and of the last visitor's page 8 s after the clicks, usually waiting for its turn, to /tmp/race-queue.png).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from browser import StreamlitServer, heatmap, launch_chromium
from playwright.sync_api import sync_playwright

WAIT_SECONDS = 150


def main(n: int) -> int:
    tmp = Path(tempfile.mkdtemp())
    env = dict(
        os.environ,
        HF_ENDPOINT="http://127.0.0.1:9",
        FINGERPRINT_CACHE=str(tmp / "c.sqlite"),
        HF_HOME=str(tmp / "hf"),
        FINGERPRINT_SHARED_MODE="1",
    )
    with StreamlitServer(tmp / "streamlit.log", env=env) as server, sync_playwright() as p:
        browser = launch_chromium(p)
        pages = []
        for _ in range(n):
            page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            page.set_default_timeout(120_000)
            page.goto(server.url)
            pages.append(page)
        for page in pages:
            page.get_by_role("button", name="Run the demo").wait_for()
        for page in pages:
            page.get_by_role("button", name="Run the demo").click()
        pages[-1].wait_for_timeout(8000)
        pages[-1].screenshot(path="/tmp/race-queue.png")  # the last visitor, waiting for a turn
        t0, done = time.monotonic(), set()
        while time.monotonic() - t0 < WAIT_SECONDS and len(done) < n:
            for i, page in enumerate(pages):
                found = None if i in done else heatmap(page)
                if found and len(found[1]["z"]) == 4:
                    done.add(i)
                    print(f"page {i}: heatmap after {time.monotonic() - t0:.1f} s", flush=True)
            time.sleep(0.5)
        print(f"{len(done)}/{n} got their heatmap")
        for i, page in enumerate(pages):
            if i not in done:
                page.screenshot(path=f"/tmp/race-{i}.png")
                print(f"page {i}: nothing at {page.url}")
        browser.close()
        print("server log has a traceback" if "Traceback" in server.log() else "no traceback in the server log")
    return 0 if len(done) == n else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8))

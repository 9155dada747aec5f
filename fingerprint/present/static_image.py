"""Figures as PNG or SVG files: plotly's ``to_image`` through kaleido, which drives a Chromium found here."""

from __future__ import annotations

import os
import shutil

import plotly.graph_objects as go

NO_CHROMIUM = (
    "Static images need Chromium (or Chrome) and the kaleido package on the computer running this dashboard: "
    "{why}. Use the camera icon in the chart's toolbar instead (it saves a PNG from your browser), or download "
    "the HTML report."
)
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class StaticImageUnavailable(Exception):
    """No image can be made here; the message says why and what to do instead."""


def find_chromium() -> str | None:
    """The browser kaleido will drive: ``BROWSER_PATH`` (as kaleido's choreographer reads it) or one on PATH."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if os.path.isfile(env) and os.access(env, os.X_OK) else None
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def static_image_problem() -> str | None:
    """Why figures cannot be written as PNG/SVG here (a message for the user), or None."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return NO_CHROMIUM.format(why="kaleido is not installed here")
    if find_chromium() is None:
        return NO_CHROMIUM.format(why="no Chromium was found (BROWSER_PATH can point to one)")
    return None


def static_image(
    fig: go.Figure, fmt: str = "png", *, width: int | None = None, height: int | None = None, scale: float = 2.0
) -> bytes:
    """The figure as PNG or SVG bytes (plotly's ``to_image`` through kaleido); raises StaticImageUnavailable."""
    if fmt not in ("png", "svg"):
        raise ValueError(f"format {fmt!r}: png or svg")
    problem = static_image_problem()
    if problem:
        raise StaticImageUnavailable(problem)
    try:  # kaleido's choreographer finds the same browser (BROWSER_PATH, then these names on PATH)
        image: bytes = fig.to_image(format=fmt, width=width, height=height, scale=scale if fmt == "png" else 1)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StaticImageUnavailable(NO_CHROMIUM.format(why=f"making the image failed ({first[:200]})")) from None
    return image

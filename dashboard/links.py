"""Share links: the dashboard's URL query parameters, which restore a Compare view on any machine.

No streamlit here (``dashboard.address_bar`` reads and writes the address bar). The page is the URL path, e.g.
``/compare``; the query parameters:
  models  comma-separated references: Hub models pinned as ``repo@<40-hex commit>`` (with ``/file.gguf``
          when one file of the repository was chosen), demo models as ``demo:<name>``; other local paths
          are left out (they mean nothing on another machine)
  role    ``mean`` (the score) or a role: q, k, v, o, qkv, ...
  order   ``clustered`` or ``input``
  view    ``normalised`` or ``raw`` (the σ-curves)
  pair    ``i,j``: 0-based positions in ``models`` of the pair view's two models (optional)
  signal  what "All pairs" shows: ``verdict``, a lineage signal (``elementwise``, ``awm``, ``vectors``, ``depth``) or
          ``sigma`` (optional: without it, the verdicts once there are any, the σ-curves before)

Find the base (``/find-base``) has a link of its own, which scans one model against the library of the dashboard
that opens it:
  model   the reference, as in ``models`` (a pinned Hub model or ``demo:<name>``; never a local path)
  fetch   ``1``: also read the declared base when the library does not have it (optional)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from fingerprint.demo import demo_reference
from fingerprint.errors import FingerprintError
from fingerprint.present.labels import ALL_PAIRS_VIEWS
from fingerprint.present.ordering import ORDERS
from fingerprint.reference import parse_reference
from fingerprint.result import Fingerprint

LINK_KEYS = ("models", "role", "order", "view", "pair", "signal")
SCAN_LINK_KEYS = ("model", "fetch")
VIEWS = ("normalised", "raw")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def shareable_reference(fp: Fingerprint) -> str | None:
    """The reference a share link carries for this fingerprint, or None for a local file (meaningless elsewhere).

    Hub models are pinned to the commit that was read, so the link reproduces exactly (and answers from the
    cache with no network); a file chosen inside the repository is kept. Demo models become ``demo:<name>``.
    """
    if fp.source == "hub" and fp.repo_id:
        body = fp.model.rsplit("@", 1)[0] if "@" in fp.model else fp.model
        if not body.startswith(fp.repo_id):
            body = fp.repo_id
        return f"{body}@{fp.revision}" if _SHA_RE.match(fp.revision) else body
    return demo_reference(fp.model)


_CHOICES: tuple[tuple[str, Callable[[str], bool], str], ...] = (
    ("role", lambda x: bool(_ROLE_RE.match(x)), "is not a role name: the mean score is shown"),
    ("order", lambda x: x in ORDERS, "is not clustered or input: clustered is used"),
    ("view", lambda x: x in VIEWS, "is not normalised or raw: normalised is used"),
    ("signal", lambda x: x in ALL_PAIRS_VIEWS, f"is not one of {', '.join(ALL_PAIRS_VIEWS)}: the default is used"),
)


@dataclass
class LinkView:
    """What a share link restores."""

    models: list[str] = field(default_factory=list)
    role: str = "mean"
    order: str = "clustered"
    view: str = "normalised"
    pair: tuple[int, int] | None = None
    signal: str | None = None  # None: the page's default


def link_params(v: LinkView) -> dict[str, str]:
    """The query parameters of a view; ``pair`` only when it names two different listed models."""
    out = {"models": ",".join(v.models), "role": v.role, "order": v.order, "view": v.view}
    if v.pair and v.pair[0] != v.pair[1] and all(0 <= i < len(v.models) for i in v.pair):
        out["pair"] = f"{v.pair[0]},{v.pair[1]}"
    if v.signal:
        out["signal"] = v.signal
    return out


def parse_link(params: Mapping[str, str | list[str]]) -> tuple[LinkView | None, list[str]]:
    """A LinkView from query parameters (None without ``models``) and what in them could not be used."""

    def get(key: str) -> str:
        v = params.get(key, "")
        if isinstance(v, list):
            v = v[-1] if v else ""
        return str(v).strip()

    problems: list[str] = []
    models = list(dict.fromkeys(m.strip() for m in get("models").split(",") if m.strip()))
    if not models:
        return None, problems
    v = LinkView(models=models)
    for key, valid, otherwise in _CHOICES:  # a bad value is reported and the default kept
        value = get(key)
        if value and valid(value):
            setattr(v, key, value)
        elif value:
            problems.append(f"{key}={value!r} {otherwise}")
    pair = get("pair")
    if pair:
        try:
            i, j = (int(x) for x in pair.split(","))
            if not (0 <= i < len(models) and 0 <= j < len(models)) or i == j:
                raise ValueError
            v.pair = (i, j)
        except ValueError:
            problems.append(f"pair={pair!r} does not name two of the {len(models)} models: the top pair is shown")
    return v, problems


def link_signature(
    params: Mapping[str, str | list[str]], keys: tuple[str, ...] = LINK_KEYS
) -> tuple[tuple[str, str], ...]:
    """What identifies a link among query parameters (others, e.g. ``embed``, are ignored): a Compare link's
    ``keys``, or Find the base's (``SCAN_LINK_KEYS``)."""
    out = []
    for k in keys:
        v = params.get(k)
        if isinstance(v, list):
            v = v[-1] if v else None
        if v not in (None, ""):
            out.append((k, str(v)))
    return tuple(out)


def scan_reference(key: str, scanned_model: str) -> str | None:
    """The reference a Find the base link carries for the model scanned under session ``key`` (``scanned_model``:
    the scan's name for it, a Hub model pinned as ``org/name@<commit read>``), or None for a local file or
    folder (meaningless elsewhere). A demo model becomes ``demo:<name>``."""
    demo = demo_reference(key)
    if demo is not None:
        return demo
    try:
        ref = parse_reference(key)
    except FingerprintError:
        return None
    if ref.kind != "hub":
        return None
    body, _, revision = scanned_model.rpartition("@")
    return scanned_model if body and _SHA_RE.match(revision) else key


def scan_link_params(reference: str, fetch: bool) -> dict[str, str]:
    """The query parameters of a Find the base link."""
    return {"model": reference, "fetch": "1"} if fetch else {"model": reference}


def parse_scan_link(params: Mapping[str, str | list[str]]) -> tuple[str, bool] | None:
    """(model, fetch the declared base) from a Find the base link's query parameters; None without ``model``."""
    found = dict(link_signature(params, SCAN_LINK_KEYS))
    model = found.get("model", "").strip()
    if not model:
        return None
    return model, found.get("fetch", "").strip().lower() in ("1", "true", "yes")


def app_base_url(context_url: str | None, page_url_path: str = "") -> str | None:
    """The app's root URL from the browser's URL of the current page (``st.context.url``), or None."""
    if not context_url:
        return None
    url = context_url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if page_url_path and url.endswith("/" + page_url_path):
        url = url[: -len(page_url_path) - 1]
    return url


def share_url(base: str | None, page: str, params: Mapping[str, str]) -> str:
    """The full link (or, without a base, a link relative to the app's root)."""
    query = urlencode(params, safe=",@/:", quote_via=quote)
    path = f"{page}?{query}" if query else page
    return f"{base.rstrip('/')}/{path}" if base else path

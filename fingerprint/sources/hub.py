"""Hugging Face Hub files read with HTTP Range requests, the way the Hub wants to be read.

The revision is pinned once to a commit sha (``resolve_snapshot``); every read after that
uses the sha, so a branch moving mid-run cannot mix two commits.

Every ``/resolve/`` URL counts against the Hub's *resolvers* quota (3,000 per 5 minutes for an
anonymous IP), and the Hub answers a large file's with a 302 to a storage host whose signed URL
does not count. So each file is resolved once per process (the first read asks the resolve URL
without following the redirect, and remembers the target); every later Range read goes straight
to the storage host, without the Authorization header: the token never leaves the Hub. A target
that answers 403/410 (its signature expired) is resolved again, once per failure. Files the Hub
serves without a redirect are read from the resolve URL as before. Calls are drawn from the
process-wide rate limiter (``ratelimit.py``), which waits rather than fails.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, overload
from urllib.parse import quote, urljoin, urlsplit

import httpx2
from huggingface_hub import HfApi
from huggingface_hub import constants as hf_constants
from huggingface_hub import errors as hf_errors
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from ..errors import (
    BadToken,
    CorruptFile,
    FileNotInRepo,
    FingerprintError,
    GatedRepo,
    NetworkError,
    Offline,
    RateLimited,
    RepoNotFound,
    RevisionNotFound,
)
from .base import ByteSource, ReadContext
from .ratelimit import identity, rate_limiter

log = logging.getLogger(__name__)

RETRY_STATUS = (408, 429, 500, 502, 503, 504)
RETRIES = 5  # attempts after the first, for each Range read
BACKOFF = 0.5  # seconds before the first retry; doubles each time, with jitter
RATE_LIMIT_WAITS = 12  # 429s with Retry-After/RateLimit headers waited out per read before giving up
EXPIRED_STATUS = (400, 401, 403, 404, 410)  # a storage host refusing a signed URL (expired or revoked)
MAX_REDIRECTS = 5  # Hub-internal redirects (a renamed repository) followed while resolving
RESOLVED_MAX_AGE = 1800.0  # seconds a storage URL is reused before it is resolved again


HubAccess = Literal["public", "gated", "private"]


@dataclass
class HubSnapshot:
    """One commit of a model repository: its sha and the files it holds (path -> size)."""

    repo_id: str
    sha: str
    files: dict[str, int]
    endpoint: str = ""
    token: str | None = field(default=None, repr=False)
    access: HubAccess = "public"  # who may be shown results read from it


def translate_hub_error(exc: BaseException, what: str) -> FingerprintError:
    """Map huggingface_hub / httpx2 exceptions onto our typed errors (never echoing headers)."""
    if isinstance(exc, FingerprintError):
        return exc
    if isinstance(exc, hf_errors.GatedRepoError):
        return GatedRepo(f"{what} is gated and this account has not been granted access")
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return RepoNotFound(f"{what} was not found on the Hub (or is private)")
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return RevisionNotFound(f"revision not found in {what}")
    if isinstance(exc, hf_errors.EntryNotFoundError):
        return FileNotInRepo(f"file not found in {what}")
    if isinstance(exc, hf_errors.OfflineModeIsEnabled):
        return Offline(
            "this dashboard is set to work offline (HF_HUB_OFFLINE in its environment) and this model was not read "
            "before: read it once with the Hub reachable, or unset HF_HUB_OFFLINE"
        )
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return BadToken("the Hub rejected the token (invalid credentials)")
        if status == 429:
            return RateLimited("the Hub is rate-limiting requests (HTTP 429)")
        return NetworkError(f"the Hub answered HTTP {status}")
    if isinstance(exc, (httpx2.ConnectError, ConnectionError)):
        return Offline("cannot reach the Hub")
    if isinstance(exc, httpx2.TransportError):
        return NetworkError(f"network failure talking to the Hub ({type(exc).__name__})")
    return NetworkError(f"unexpected failure talking to the Hub ({type(exc).__name__})")


def _credential(token: str | None) -> str | None:
    """The Authorization header huggingface_hub would send (None: anonymous); keys the rate limiter."""
    return build_hf_headers(token=token).get("authorization")


def resolve_snapshot(
    repo_id: str,
    revision: str | None,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    context: ReadContext | None = None,
) -> HubSnapshot:
    """Resolve a revision (branch, tag, sha or None) to a commit sha and list its files with sizes.
    One API call, drawn from the process-wide limiter (waiting out a 429 that says how long)."""
    endpoint = endpoint or hf_constants.ENDPOINT  # HF_ENDPOINT, read at call time
    context = context or ReadContext()
    api = HfApi(endpoint=endpoint, token=token)
    credential = _credential(token)
    limiter = rate_limiter()
    for _ in range(RATE_LIMIT_WAITS):
        context.check(repo_id)
        context.excuse(limiter.acquire(endpoint, credential, "api", cancel=context.cancel, on_wait=context.waiting))
        try:
            info = api.model_info(repo_id, revision=revision, files_metadata=True)
            break
        except hf_errors.HfHubHTTPError as exc:
            resp = exc.response
            if resp is not None and resp.status_code == 429 and _says_when(resp.headers):
                limiter.observe(endpoint, credential, "api", resp.headers, 429)
                continue
            raise translate_hub_error(exc, repo_id) from None
        except Exception as exc:
            raise translate_hub_error(exc, repo_id) from None
    else:
        raise RateLimited(f"the Hub kept rate-limiting API calls for {repo_id} (HTTP 429)")
    if not info.sha or not _COMMIT_SHA.fullmatch(info.sha):
        # the sha goes into every URL read with the token: only a real one is used
        raise NetworkError(f"the Hub answered with no valid commit sha for {repo_id}")
    files = {s.rfilename: int(s.size or 0) for s in (info.siblings or []) if _safe_file_name(s.rfilename)}
    access: HubAccess = (
        "private" if getattr(info, "private", False) else "gated" if getattr(info, "gated", False) else "public"
    )
    return HubSnapshot(repo_id=repo_id, sha=info.sha, files=files, endpoint=endpoint, token=token, access=access)


_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


def _safe_file_name(name: str | None) -> bool:
    """A repo file name that cannot step out of its resolve URL ('..', absolute, backslashes, control characters)."""
    if not name or name.startswith("/") or "\\" in name or len(name) > 1024:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/")) and name.isprintable()


def _says_when(headers: Mapping[str, str]) -> bool:
    """A 429 that tells when to come back (Retry-After or RateLimit): wait for it, don't count it as a failure."""
    return bool(headers.get("Retry-After") or headers.get("RateLimit"))


@dataclass(frozen=True)
class _Resolved:
    target: str | None  # the storage URL the Hub redirected to; None: the Hub serves the file itself
    at: float


class _ResolvedUrls:
    """Process-wide: where each file of a pinned snapshot is served from, so it is resolved once,
    whatever the number of reads, models or visitors. Keyed by the resolve URL and the caller's
    identity: a signed URL obtained with one visitor's token is never handed to another."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Resolved] = {}
        self._file_locks: dict[tuple[str, str], threading.Lock] = {}
        self.max_entries = max_entries

    def get(self, key: tuple[str, str]) -> _Resolved | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.at > RESOLVED_MAX_AGE:
            return None
        return entry

    def put(self, key: tuple[str, str], target: str | None) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = _Resolved(target, time.monotonic())

    def forget(self, key: tuple[str, str], target: str | None) -> None:
        """Drop the entry if it is still ``target``: when many reads fail on the same expired URL at
        once, only the first one's resolution is thrown away."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.target == target:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            if len(self._file_locks) >= self.max_entries:
                self._file_locks.clear()
            return self._file_locks.setdefault(key, threading.Lock())


RESOLVED = _ResolvedUrls()


class _Retry(Exception):
    """One attempt failed in a way worth retrying; ``wait`` is the server's Retry-After."""

    def __init__(self, why: str, wait: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(why)
        self.why, self.wait, self.rate_limited = why, wait, rate_limited


class _Expired(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class HubFile(ByteSource):
    """One file of a pinned snapshot: Range GETs, checked for 206 and length, sent to the storage
    host the Hub redirects to (resolved once) or to the resolve URL when there is no redirect."""

    max_parallel = 8

    def __init__(
        self,
        snapshot: HubSnapshot,
        filename: str,
        context: ReadContext | None = None,
        *,
        retries: int | None = None,
        backoff: float | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(context)
        if filename not in snapshot.files:
            raise FileNotInRepo(f"{filename} is not in {snapshot.repo_id}@{snapshot.sha[:12]}")
        self.snapshot = snapshot
        self.name = filename
        self.size = snapshot.files[filename]
        # the Hub's resolve URL, built on the snapshot's endpoint (HF_ENDPOINT as it is now)
        self.url = f"{snapshot.endpoint.rstrip('/')}/{snapshot.repo_id}/resolve/{snapshot.sha}/{quote(filename)}"
        self._hub_headers = build_hf_headers(token=snapshot.token)
        self._hub_headers["Accept-Encoding"] = "identity"  # a gzipping proxy may ignore Range
        self._credential = self._hub_headers.get("authorization")
        # what a storage host gets: no Authorization, ever
        self._storage_headers = {k: v for k, v in self._hub_headers.items() if k.lower() != "authorization"}
        self._key = (self.url, identity(self._credential))
        self.retries = RETRIES if retries is None else retries
        self.backoff = BACKOFF if backoff is None else backoff
        self.timeout = timeout

    def fetch(self, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        if offset < 0 or offset + length > self.size:
            raise CorruptFile(f"{self.name}: range {offset}+{length} is beyond the file's {self.size} bytes")
        failures = waits = 0
        refreshed = False
        last = ""
        while True:
            self.context.check(self.name)
            started = time.monotonic()
            try:
                data = self._attempt(offset, length)
            except _Expired as exc:
                if refreshed:
                    raise NetworkError(
                        f"the storage host refused {self.name} (HTTP {exc.status}) even with a freshly resolved URL"
                    ) from None
                refreshed = True
                continue
            except _Retry as exc:
                last = exc.why
                if exc.rate_limited and waits < RATE_LIMIT_WAITS:
                    waits += 1  # the limiter now knows when the window resets: the next call waits for it
                    continue
                failures += 1
                if failures > self.retries:
                    break
                self._pause(failures, last, exc.wait)
                continue
            except (httpx2.TransportError, httpx2.StreamError) as exc:
                if isinstance(exc, httpx2.ConnectError) and failures >= 2:
                    raise Offline(f"cannot reach the Hub to read {self.name}") from None
                last = type(exc).__name__
                failures += 1
                if failures > self.retries:
                    break
                self._pause(failures, last, None)
                continue
            self.context.note_read(self.name, time.monotonic() - started)
            self.context.add(length)
            return data
        self.context.check(self.name)  # a deadline that passed during the retries says so
        if "429" in last:
            raise RateLimited(f"the Hub kept rate-limiting reads of {self.name} (HTTP 429)")
        raise NetworkError(f"reading {self.name} failed {failures} times ({last})")

    def _pause(self, failure: int, last: str, retry_after: float | None) -> None:
        delay = self.backoff * (2 ** (failure - 1)) * (0.5 + random.random())
        if retry_after:
            delay = max(delay, min(retry_after, 30.0))
        log.debug("retrying %s after %s in %.2fs", self.name, last, delay)
        left = self.context.time_left()
        if left is not None:
            delay = min(delay, max(left, 0.0))
        if self.context.cancel is not None:
            self.context.cancel.wait(delay)
        else:
            time.sleep(delay)

    def _attempt(self, offset: int, length: int) -> bytes:
        """One read: from the storage target when the file is resolved, else through the resolve URL, which
        resolves it (one resolver call; the first resolution holds a per-file lock so parallel reads share it)."""
        resolved = RESOLVED.get(self._key)
        target = resolved.target if resolved is not None else None
        if target is None:
            with RESOLVED.lock(self._key) if resolved is None else contextlib.nullcontext():
                again = RESOLVED.get(self._key)
                target = again.target if again is not None else None
                if target is None:
                    answer = self._through_hub(offset, length)
                    if isinstance(answer, bytes):
                        return answer  # the Hub serves this file itself
                    target = answer
        try:
            return self._get(target, offset, length, self._storage_headers, storage=True)
        except (_Expired, httpx2.TransportError):
            # an expired signature, or a storage host that cannot be reached: the next attempt asks the Hub again
            RESOLVED.forget(self._key, target)
            raise

    def _through_hub(self, offset: int, length: int) -> bytes | str:
        """A Range GET of the resolve URL that does not follow a redirect to another host: the bytes when the Hub
        serves the file itself, else the storage URL it redirected to (remembered for every later read)."""
        url = self.url
        endpoint = self.snapshot.endpoint
        for _ in range(MAX_REDIRECTS + 1):
            waited = rate_limiter().acquire(
                endpoint, self._credential, "resolvers", cancel=self.context.cancel, on_wait=self.context.waiting
            )
            self.context.excuse(waited)
            answer = self._get(url, offset, length, self._hub_headers, storage=False)
            if isinstance(answer, bytes):
                RESOLVED.put(self._key, None)
                return answer
            target = urljoin(url, answer)
            if not _same_origin(target, endpoint):
                RESOLVED.put(self._key, target)
                return target
            url = target  # a Hub-internal redirect (renamed repository): follow it with the token
        raise NetworkError(f"the Hub redirected {self.name} more than {MAX_REDIRECTS} times (a redirect loop)")

    @overload
    def _get(self, url: str, offset: int, length: int, headers: dict[str, str], *, storage: Literal[True]) -> bytes: ...

    @overload
    def _get(
        self, url: str, offset: int, length: int, headers: dict[str, str], *, storage: Literal[False]
    ) -> bytes | str: ...

    def _get(self, url: str, offset: int, length: int, headers: dict[str, str], *, storage: bool) -> bytes | str:
        """One request: the bytes, or (from the Hub) the Location it redirects to. Raises _Retry,
        _Expired (a storage URL no longer valid), or a typed error."""
        headers = dict(headers)
        headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        left = self.context.time_left()
        timeout = self.timeout if left is None else max(min(self.timeout, left), 0.05)
        with get_session().stream("GET", url, headers=headers, timeout=timeout, follow_redirects=storage) as resp:
            status = resp.status_code
            if not storage:
                rate_limiter().observe(self.snapshot.endpoint, self._credential, "resolvers", resp.headers, status)
                if 300 <= status < 400 and resp.headers.get("Location"):
                    return resp.headers["Location"]
            if status in RETRY_STATUS:
                rate_limited = status == 429 and not storage and _says_when(resp.headers)
                raise _Retry(f"HTTP {status}", _retry_after(resp.headers.get("Retry-After")), rate_limited)
            if storage and status in EXPIRED_STATUS:
                raise _Expired(status)
            if status >= 400:
                resp.read()
                try:
                    hf_raise_for_status(resp)
                except Exception as exc:
                    raise translate_hub_error(exc, self.snapshot.repo_id) from None
            if status != 206:
                raise NetworkError(
                    f"the server ignored the Range request for {self.name} (HTTP {status}); "
                    "refusing to download the whole file"
                )
            expected_start = f"bytes {offset}-{offset + length - 1}/"
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(expected_start):
                raise _Retry(f"answer for another range ({content_range})")
            buf = bytearray()
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > length:
                    break
                self.context.check(self.name)  # a trickling server meets the model's deadline here
            if len(buf) != length:
                raise _Retry(f"{len(buf)} of {length} bytes received")
            return bytes(buf)


def _same_origin(url: str, endpoint: str) -> bool:
    a, b = urlsplit(url), urlsplit(endpoint)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None

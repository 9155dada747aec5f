"""Hugging Face Hub files read with HTTP Range requests through huggingface_hub's own session.

The revision is pinned once to a commit sha (``resolve_snapshot``); every read after that
uses the sha, so a branch moving mid-run cannot mix two commits.
"""

from __future__ import annotations

import logging
import random
import time
from urllib.parse import quote
from dataclasses import dataclass, field

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
from .base import ByteSource, ReadCounter

log = logging.getLogger(__name__)

RETRY_STATUS = (408, 429, 500, 502, 503, 504)
RETRIES = 5  # attempts after the first, for each Range read
BACKOFF = 0.5  # seconds before the first retry; doubles each time, with jitter


@dataclass
class HubSnapshot:
    """One commit of a model repository: its sha and the files it holds (path -> size)."""

    repo_id: str
    sha: str
    files: dict[str, int]
    endpoint: str = ""
    token: str | None = field(default=None, repr=False)


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
        return Offline("offline mode is on (HF_HUB_OFFLINE) and the result is not in the cache")
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


def resolve_snapshot(repo_id: str, revision: str | None, *, token: str | None = None, endpoint: str | None = None) -> HubSnapshot:
    """Resolve a revision (branch, tag, sha or None) to a commit sha and list its files with sizes."""
    endpoint = endpoint or hf_constants.ENDPOINT  # HF_ENDPOINT, read at call time
    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - translated into a typed error
        raise translate_hub_error(exc, repo_id) from None
    if not info.sha:
        raise NetworkError(f"the Hub gave no commit sha for {repo_id}")
    files = {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
    return HubSnapshot(repo_id=repo_id, sha=info.sha, files=files, endpoint=endpoint, token=token)


class HubFile(ByteSource):
    """One file of a pinned snapshot; each ``read`` is one Range GET, checked for 206 and length."""

    max_parallel = 8

    def __init__(
        self,
        snapshot: HubSnapshot,
        filename: str,
        counter: ReadCounter | None = None,
        *,
        retries: int | None = None,
        backoff: float | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(counter)
        if filename not in snapshot.files:
            raise FileNotInRepo(f"{filename} is not in {snapshot.repo_id}@{snapshot.sha[:12]}")
        self.snapshot = snapshot
        self.name = filename
        self.size = snapshot.files[filename]
        # the Hub's resolve URL, built on the snapshot's endpoint (HF_ENDPOINT as it is now)
        self.url = f"{snapshot.endpoint.rstrip('/')}/{snapshot.repo_id}/resolve/{snapshot.sha}/{quote(filename)}"
        self._headers = build_hf_headers(token=snapshot.token)
        self._headers["Accept-Encoding"] = "identity"  # a gzipping proxy may ignore Range
        self.retries = RETRIES if retries is None else retries
        self.backoff = BACKOFF if backoff is None else backoff
        self.timeout = timeout

    def fetch(self, offset: int, length: int) -> bytes:
        if length == 0:
            return b""
        if offset < 0 or offset + length > self.size:
            raise CorruptFile(f"{self.name}: range {offset}+{length} is beyond the file's {self.size} bytes")
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(attempt, last)
            try:
                data, outcome, retry_after = self._get(offset, length)
            except (httpx2.TransportError, httpx2.StreamError) as exc:
                if isinstance(exc, httpx2.ConnectError) and attempt >= 2:
                    raise Offline(f"cannot reach the Hub to read {self.name}") from None
                last = type(exc).__name__
                continue
            if data is not None:
                self.counter.add(length)
                return data
            last = outcome
            if retry_after:
                time.sleep(min(retry_after, 30.0))
        if last == "HTTP 429":
            raise RateLimited(f"the Hub kept rate-limiting reads of {self.name} (HTTP 429)")
        raise NetworkError(f"reading {self.name} failed {self.retries + 1} times ({last})")

    def _sleep(self, attempt: int, last: str) -> None:
        delay = self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random())
        log.debug("retrying %s after %s in %.2fs", self.name, last, delay)
        time.sleep(delay)

    def _get(self, offset: int, length: int) -> tuple[bytes | None, str, float | None]:
        """One attempt: (bytes, what happened, retry-after); bytes None means 'retry'."""
        headers = dict(self._headers)
        headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        with get_session().stream("GET", self.url, headers=headers, timeout=self.timeout) as resp:
            if resp.status_code in RETRY_STATUS:
                retry_after = _retry_after(resp.headers.get("Retry-After"))
                return None, f"HTTP {resp.status_code}", retry_after
            if resp.status_code >= 400:
                resp.read()
                try:
                    hf_raise_for_status(resp)
                except Exception as exc:  # noqa: BLE001
                    raise translate_hub_error(exc, self.snapshot.repo_id) from None
            if resp.status_code != 206:
                raise NetworkError(
                    f"the server ignored the Range request for {self.name} (HTTP {resp.status_code}); "
                    "refusing to download the whole file"
                )
            expected_start = f"bytes {offset}-{offset + length - 1}/"
            content_range = resp.headers.get("Content-Range", "")
            if not content_range.startswith(expected_start):
                return None, f"answer for another range ({content_range})", None
            buf = bytearray()
            for chunk in resp.iter_bytes():
                buf += chunk
                if len(buf) > length:
                    break
            if len(buf) != length:
                return None, f"{len(buf)} of {length} bytes received", None
            return bytes(buf), "ok", None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None

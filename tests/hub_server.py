"""A local, standard-library-only fake of the Hugging Face Hub HTTP protocol, for tests.

It speaks enough of the Hub's protocol for the real ``huggingface_hub`` client (checked against
huggingface_hub 2.4, httpx2 based) to work against it:

* ``GET /api/models/{repo_id}`` and ``GET /api/models/{repo_id}/revision/{revision}``
  (``model_info``; ``?blobs=true`` is what ``files_metadata=True`` sends, ``?expand=...`` filters fields)
* ``GET /api/models/{repo_id}/tree/{revision}[/{path}]?recursive=...&expand=...`` (``list_repo_tree``;
  a single page, no ``Link`` header)
* ``GET``/``HEAD /{repo_id}/resolve/{revision}/{path}`` (``hf_hub_url`` / ``hf_hub_download`` /
  ``get_hf_file_metadata``), with single ``Range`` support (206 / 416)
* errors carry ``X-Error-Code`` / ``X-Error-Message`` exactly like the Hub so that
  ``huggingface_hub.utils.hf_raise_for_status`` maps them to the typed exceptions.

Optionally (``redirect_lfs = True``) LFS files are answered like the real Hub does: a 302 to a separate
"CDN" origin (a second local server, different port = different origin) carrying ``X-Linked-Size``,
``X-Linked-Etag`` and ``X-Repo-Commit``; the CDN serves the bytes (with Range) without auth. The
``Location`` is signed and expires like the Hub's storage URLs:
``{cdn_url}/lfs/{sha256}?repo=...&name=...&expires={unix seconds}&sig={hmac-sha256 hex}``, valid while
``clock() <= expires`` (``url_ttl`` seconds, default 3600, after the 302; ``clock`` is ``time.time`` unless a
test replaces it with a fake clock). An expired URL answers ``expired_status`` (403 like S3/CloudFront, or set
410) with an XML body "Request has expired"; a tampered or foreign one 403 "Invalid signature".
``expire_urls()`` expires every URL handed out so far at once.

Optionally (``enable_rate_limits(api=500, resolvers=3000, window=300.0, *, api_with_token=None,
resolvers_with_token=None)``) the main origin is rate-limited like the Hub, in fixed windows of ``window``
seconds of ``clock``, each starting with the first request after the previous one ended: every ``/api/...``
request counts in the "api" bucket, every request with ``/resolve/`` in the "resolvers" bucket (the CDN never
counts). One counter per bucket; a request with a valid token may go up to the ``*_with_token`` quota (None:
as anonymous). Every answer to a counted request carries
``RateLimit: "resolvers";r=REMAINING;t=SECONDS_TO_RESET`` and
``RateLimit-Policy: "fixed window";"resolvers";q=QUOTA;w=WINDOW`` ("api" for the other bucket); past the
quota the answer is 429 with those headers, ``Retry-After: SECONDS_TO_RESET`` and an ``X-Error-Message``.
Requests refused with 429 use no quota. Beware: ``huggingface_hub``'s ``http_backoff`` and paginated calls
(``list_repo_tree``) answer a 429 whose ``RateLimit`` says r=0 by sleeping t + 1 real seconds, then retrying.

Counters, zeroed by ``reset_counters()``: ``bytes_served`` (per repo), ``requests`` ((method, path, Range) of
both origins), ``connections_opened``, ``api_calls``, ``resolver_calls`` (+ ``resolver_calls_by_repo``),
``cdn_requests``, ``rate_limited`` (429s per bucket) and ``cdn_authorization_seen`` (Authorization values
that reached the CDN: a correct client sends none there). Every request is counted, also those answered
with an injected fault or a 429.

Faults, each for the next ``n`` requests whose path contains ``path_contains``: ``fail_next`` (an error
status), ``drop_next`` (connection closed, no answer), ``truncate_next`` (a short body) and ``trickle_next``
(the body sent slowly, or with ``stall=True`` headers only, then nothing until ``stop()``, which wakes them).

Usage::

    with FakeHub() as hub:
        sha = hub.add_repo("org/model", {"config.json": b"{}", "model.safetensors": Path("big.safetensors")})
        api = HfApi(endpoint=hub.url, token=False)
        api.model_info("org/model", files_metadata=True)

        hub.redirect_lfs = True
        hub.clock = lambda: now  # a fake clock: expiry and rate-limit windows follow it
        hub.enable_rate_limits(resolvers=10, window=60)
        hub.trickle_next(1, bytes_per_second=1000)  # the next CDN answer is slow

Self-contained: importable as ``tests.hub_server`` or ``hub_server``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import hmac
import http.server
import json
import math
import os
import pathlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = ["FakeHub"]

_LAST_MODIFIED = "2024-01-01T00:00:00.000Z"
_CHUNK = 1024 * 1024
_TRICKLE_PAUSE = 0.05  # seconds between the small pieces of a trickled answer

# Extensions tracked by Git LFS in the Hub's default .gitattributes (subset).
_LFS_SUFFIXES = (
    ".safetensors",
    ".gguf",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".h5",
    ".onnx",
    ".msgpack",
    ".npy",
    ".npz",
    ".pkl",
    ".pickle",
    ".tflite",
    ".ot",
    ".joblib",
    ".model",
    ".zip",
    ".tar",
    ".gz",
)

# Process-wide cache of sha256 of files served from disk: (resolved path, size, mtime_ns) -> sha256.
# Hashing a multi-GB file is done at most once per process, even across FakeHub instances.
_DISK_SHA256_CACHE: dict[tuple[str, int, int], str] = {}
_DISK_SHA256_LOCK = threading.Lock()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _git_blob_oid(data: bytes) -> str:
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


@dataclass(eq=False)
class _Blob:
    size: int
    data: bytes | None = None
    path: pathlib.Path | None = None
    mtime_ns: int = 0
    lfs: bool = False
    _sha256: str | None = None
    _git_oid: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def content_id(self) -> str:
        """Cheap identity used in the commit sha (no full hash of disk files)."""
        if self.data is not None:
            return hashlib.sha1(self.data).hexdigest()
        return f"{self.path}:{self.size}:{self.mtime_ns}"

    def read_all(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as f:
            return f.read()

    def pieces(self, start: int, length: int, size: int) -> Iterator[bytes | memoryview]:
        """``length`` bytes from ``start`` in pieces of at most ``size`` bytes (fewer if a disk file shrank)."""
        if self.data is not None:
            view = memoryview(self.data)
            for offset in range(start, start + length, size):
                yield view[offset : min(offset + size, start + length)]
            return
        assert self.path is not None
        with open(self.path, "rb") as f:
            f.seek(start)
            left = length
            while left > 0 and (data := f.read(min(size, left))):
                left -= len(data)
                yield data

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            with self._lock:
                if self._sha256 is None:
                    self._sha256 = self._compute_sha256()
        return self._sha256

    def _compute_sha256(self) -> str:
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        assert self.path is not None
        key = (str(self.path), self.size, self.mtime_ns)
        with _DISK_SHA256_LOCK:
            cached = _DISK_SHA256_CACHE.get(key)
        if cached is not None:
            return cached
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            while chunk := f.read(8 * _CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        with _DISK_SHA256_LOCK:
            _DISK_SHA256_CACHE[key] = digest
        return digest

    @property
    def pointer_size(self) -> int:
        return len(_lfs_pointer(self.sha256, self.size))

    @property
    def git_oid(self) -> str:
        """Git blob id: of the content for regular files, of the LFS pointer file for LFS files."""
        if self._git_oid is None:
            if self.lfs:
                oid = _git_blob_oid(_lfs_pointer(self.sha256, self.size))
            else:
                oid = _git_blob_oid(self.read_all())
            self._git_oid = oid
        return self._git_oid

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class _Commit:
    sha: str
    files: dict[str, _Blob]


@dataclass
class _Repo:
    repo_id: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: str | bool = False  # False, "auto" or "manual"
    private: bool = False

    def resolve(self, revision: str) -> _Commit | None:
        sha = self.refs.get(revision)
        if sha is None and revision in self.commits:
            sha = revision
        if sha is None and 7 <= len(revision) < 40 and all(c in "0123456789abcdef" for c in revision):
            matches = [s for s in self.commits if s.startswith(revision)]
            if len(matches) == 1:
                sha = matches[0]
        return self.commits.get(sha) if sha is not None else None


@dataclass
class _Token:
    gated_access: frozenset[str]
    private_access: frozenset[str] | None  # None = all private repos


@dataclass
class _Fault:
    kind: str  # "fail" | "drop" | "truncate" | "trickle"
    remaining: int
    path_contains: str
    status: int = 503
    retry_after: float | None = None
    mode: str = "short"
    bytes_per_second: float = 0.0
    stall: bool = False


@dataclass
class _Bucket:
    """One rate-limit bucket ("api" or "resolvers"): a fixed window that starts with the first request counted
    after the previous window ended. One counter for the client; the quota depends on whether the request
    carried a valid token."""

    name: str
    quota: int
    quota_with_token: int
    window: float
    window_start: float | None = None
    used: int = 0

    def take(self, now: float, with_token: bool) -> tuple[dict[str, str], str | None]:
        """Count one request. Return the headers of its answer and, when the quota is exhausted, the
        X-Error-Message of the 429 (the headers then include Retry-After). Refused requests use no quota."""
        if self.window_start is None or now >= self.window_start + self.window:
            self.window_start, self.used = now, 0
        quota = self.quota_with_token if with_token else self.quota
        refused = self.used >= quota
        if not refused:
            self.used += 1
        reset = max(1, math.ceil(self.window_start + self.window - now))
        headers = {
            "RateLimit": f'"{self.name}";r={max(0, quota - self.used)};t={reset}',
            "RateLimit-Policy": f'"fixed window";"{self.name}";q={quota};w={math.ceil(self.window)}',
        }
        if not refused:
            return headers, None
        headers["Retry-After"] = str(reset)
        return headers, (
            f"You have reached your '{self.name}' rate limit of {quota} requests per {math.ceil(self.window)}"
            f" seconds. Retry after {reset} seconds."
        )


class _Denied(Exception):
    def __init__(self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class FakeHub:
    """A local fake of the Hugging Face Hub (model repos only). See module docstring."""

    LFS_THRESHOLD = 1024 * 1024  # files larger than this are LFS, like *.safetensors / *.gguf / ...

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._repos: dict[str, _Repo] = {}
        self._tokens: dict[str, _Token] = {}
        self._faults: list[_Fault] = []
        self._blobs_by_sha256: dict[str, _Blob] = {}
        self._buckets: dict[str, _Bucket] = {}  # empty: no rate limits
        self._url_key = secrets.token_bytes(32)
        self._url_generation = 0  # part of every storage URL signature: expire_urls() bumps it
        self._stopping = threading.Event()  # wakes trickling and stalled handlers on stop()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._cdn_server: http.server.ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self.url: str = ""
        self.cdn_url: str = ""
        self.bytes_served: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, str, str | None]] = []
        self.connections_opened: int = 0  # TCP connections accepted (both origins): checks keep-alive reuse
        self.api_calls: int = 0  # requests to /api/... (main origin)
        self.resolver_calls: int = 0  # requests with /resolve/ in the path (main origin)
        self.resolver_calls_by_repo: collections.Counter[str] = collections.Counter()
        self.cdn_requests: int = 0  # requests to the storage origin
        # Authorization header values that reached the storage origin: a correct client sends none there.
        self.cdn_authorization_seen: list[str] = []
        self.rate_limited: collections.Counter[str] = collections.Counter()  # 429s sent, by bucket
        # Unix seconds, read for storage URL expiry and rate-limit windows: tests may replace it with a fake clock.
        self.clock: Callable[[], float] = time.time
        # When True, resolve answers 200 with the whole file even if a Range was sent.
        self.ignore_range: bool = False
        # When True, LFS files are answered with a 302 to the CDN origin (like the real Hub).
        self.redirect_lfs: bool = False
        # Lifetime of the signed CDN URLs handed out by those 302s, and the CDN's status for an expired one
        # (403 like S3/CloudFront; some storage hosts answer 410).
        self.url_ttl: float = 3600.0
        self.expired_status: int = 403
        # Like the real Hub: an Authorization header with an unknown token is rejected with
        # 401 "Invalid credentials in Authorization header" on every endpoint. Set False to treat
        # unknown tokens as anonymous instead.
        self.reject_invalid_tokens: bool = True

    # ------------------------------------------------------------------ setup API

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | os.PathLike | str],
        *,
        revision_names: Iterable[str] = ("main",),
        gated: bool | str = False,
        private: bool = False,
        lfs_sha256: Mapping[str, str] | None = None,
    ) -> str:
        """Register a model repo (or a new commit of it); return the 40-hex commit sha.

        ``files`` maps repo paths to bytes or to a path on disk (served with seek+read, never loaded
        whole). ``revision_names`` (branches/tags) point to the new commit; earlier commits stay
        resolvable by sha. ``gated`` True means "auto" (or pass "auto"/"manual"). ``lfs_sha256`` may
        give precomputed sha256 of disk files to avoid hashing them (they are hashed lazily otherwise,
        once per process).
        """
        if not repo_id or repo_id.count("/") > 1 or repo_id.startswith("/") or repo_id.endswith("/"):
            raise ValueError(f"invalid repo_id {repo_id!r}")
        revision_names = tuple(revision_names)
        if not revision_names:
            raise ValueError("revision_names must not be empty")
        lfs_sha256 = dict(lfs_sha256 or {})
        blobs: dict[str, _Blob] = {}
        for name, content in files.items():
            if not name or name.startswith("/") or "//" in name or name.endswith("/"):
                raise ValueError(f"invalid file name {name!r}")
            if isinstance(content, (bytes, bytearray, memoryview)):
                blob = _Blob(size=len(content), data=bytes(content))
            else:
                p = pathlib.Path(content).resolve()
                st = p.stat()
                blob = _Blob(size=st.st_size, path=p, mtime_ns=st.st_mtime_ns)
            blob.lfs = blob.size > self.LFS_THRESHOLD or name.lower().endswith(_LFS_SUFFIXES)
            if name in lfs_sha256:
                blob._sha256 = lfs_sha256[name]
            blobs[name] = blob

        gated_value: str | bool = "auto" if gated is True else (gated or False)
        with self._lock:
            repo = self._repos.get(repo_id)
            if repo is None:
                repo = self._repos[repo_id] = _Repo(repo_id)
            parent = repo.refs.get(revision_names[0], "")
            h = hashlib.sha1()
            h.update(f"{repo_id}\0{parent}\0".encode())
            for name in sorted(blobs):
                h.update(f"{name}\0{blobs[name].size}\0{blobs[name].content_id()}\0".encode())
            sha = h.hexdigest()
            repo.commits[sha] = _Commit(sha=sha, files=blobs)
            for rev in revision_names:
                repo.refs[rev] = sha
            repo.gated = gated_value
            repo.private = private
        return sha

    def add_token(
        self,
        token: str,
        *,
        gated_access: Iterable[str] = frozenset(),
        private_access: Iterable[str] | None = None,
    ) -> None:
        """Register a valid token, granted access to the given gated repos. ``private_access``: the
        private repos it can see (None = all of them; a private repo not granted answers 404 RepoNotFound)."""
        with self._lock:
            self._tokens[token] = _Token(
                gated_access=frozenset(gated_access),
                private_access=None if private_access is None else frozenset(private_access),
            )

    def reset_counters(self) -> None:
        """Zero every counter (not the rate-limit buckets: enable_rate_limits() again does that)."""
        with self._lock:
            self.bytes_served.clear()
            self.requests.clear()
            self.connections_opened = 0
            self.api_calls = 0
            self.resolver_calls = 0
            self.resolver_calls_by_repo.clear()
            self.cdn_requests = 0
            self.cdn_authorization_seen.clear()
            self.rate_limited.clear()

    def enable_rate_limits(
        self,
        api: int = 500,
        resolvers: int = 3000,
        window: float = 300.0,
        *,
        api_with_token: int | None = None,
        resolvers_with_token: int | None = None,
    ) -> None:
        """Rate-limit the main origin like the Hub: requests to /api/... count in the "api" bucket, requests
        with /resolve/ in the "resolvers" bucket; the storage origin never counts. A request with a valid token
        is allowed up to the ``*_with_token`` quota (None: the same as anonymous). Fixed windows of ``window``
        seconds of ``clock``; calling this again starts fresh buckets."""
        with self._lock:
            self._buckets = {
                "api": _Bucket("api", api, api if api_with_token is None else api_with_token, window),
                "resolvers": _Bucket(
                    "resolvers", resolvers, resolvers if resolvers_with_token is None else resolvers_with_token, window
                ),
            }

    def expire_urls(self) -> None:
        """Make every CDN URL handed out so far expired (the CDN answers ``expired_status``); new 302s work."""
        with self._lock:
            self._url_generation += 1

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self, n: int, status: int = 503, *, retry_after: float | None = None, path_contains: str = "/resolve/"
    ) -> None:
        """The next ``n`` requests whose path contains ``path_contains`` answer ``status`` (with a
        ``Retry-After`` header when ``retry_after`` is given)."""
        with self._lock:
            self._faults.append(_Fault("fail", n, path_contains, status=status, retry_after=retry_after))

    def drop_next(self, n: int, path_contains: str = "/resolve/") -> None:
        """The next ``n`` matching requests: the connection is closed without any response."""
        with self._lock:
            self._faults.append(_Fault("drop", n, path_contains))

    def truncate_next(self, n: int, path_contains: str = "/resolve/", *, mode: str = "short") -> None:
        """The next ``n`` matching content answers (GET with a body) are truncated to half their length.

        ``mode="short"``: a well-formed answer that is just shorter than asked - a 206 whose
        Content-Range/Content-Length describe only the first half of the requested range (or a 200
        shorter than the file). Nothing at the HTTP level is wrong: only a caller comparing the
        received length with the length it asked for notices.
        ``mode="cut"``: headers promise the full length, half the body is sent and the connection is
        closed (the HTTP client raises, e.g. httpx2.RemoteProtocolError). A 1-byte answer is always cut.
        """
        if mode not in ("short", "cut"):
            raise ValueError("mode must be 'short' or 'cut'")
        with self._lock:
            self._faults.append(_Fault("truncate", n, path_contains, mode=mode))

    def trickle_next(
        self, n: int, path_contains: str = "/lfs/", bytes_per_second: float = 50.0, *, stall: bool = False
    ) -> None:
        """The next ``n`` matching content answers (GET with a body) send their body slowly: small pieces at
        about ``bytes_per_second``. ``stall=True``: the headers are sent, then nothing until the hub stops.
        The default ``path_contains`` matches the CDN origin (``redirect_lfs``)."""
        if not stall and bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        with self._lock:
            self._faults.append(_Fault("trickle", n, path_contains, bytes_per_second=bytes_per_second, stall=stall))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str, kinds: tuple[str, ...]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.remaining > 0 and fault.path_contains in path:
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeHub:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = self._make_server(is_cdn=False)
        self._cdn_server = self._make_server(is_cdn=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.cdn_url = f"http://127.0.0.1:{self._cdn_server.server_address[1]}"
        for srv, name in ((self._server, "fake-hub"), (self._cdn_server, "fake-hub-cdn")):
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.5}, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stopping.set()
        servers = [s for s in (self._server, self._cdn_server) if s is not None]
        self._server = self._cdn_server = None
        for srv in servers:
            _shutdown_quickly(srv)
            srv.server_close()
        with self._lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:  # idle keep-alive connections: wake up their handler threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _make_server(self, *, is_cdn: bool) -> http.server.ThreadingHTTPServer:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        Handler.is_cdn = is_cdn
        srv = _QuietServer(("127.0.0.1", 0), Handler)
        srv.daemon_threads = True
        return srv

    # ------------------------------------------------------------------ internals used by the handler

    def _record(self, method: str, path: str, headers: Mapping[str, str], *, is_cdn: bool) -> None:
        route = urlsplit(path).path
        with self._lock:
            self.requests.append((method, path, headers.get("Range")))
            if is_cdn:
                self.cdn_requests += 1
                authorization = headers.get("Authorization")
                if authorization is not None:
                    self.cdn_authorization_seen.append(authorization)
                return
            bucket = _bucket_of(route)
            if bucket == "api":
                self.api_calls += 1
            elif bucket == "resolvers":
                self.resolver_calls += 1
                parsed = _split_resolve_path(route)
                if parsed is not None:
                    self.resolver_calls_by_repo[parsed[0]] += 1

    def _take_quota(self, path: str, with_token: bool) -> tuple[dict[str, str], str | None]:
        """Count a main-origin request against its rate-limit bucket: see _Bucket.take."""
        with self._lock:
            bucket = self._buckets.get(_bucket_of(urlsplit(path).path) or "")
            if bucket is None:
                return {}, None
            headers, refusal = bucket.take(self.clock(), with_token)
            if refusal is not None:
                self.rate_limited[bucket.name] += 1
        return headers, refusal

    def _count(self, repo_id: str, n: int) -> None:
        if n:
            with self._lock:
                self.bytes_served[repo_id] += n

    def _auth(self, authorization: str | None) -> tuple[_Token | None, bool]:
        """Return (token, is_invalid)."""
        if not authorization:
            return None, False
        scheme, _, value = authorization.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            return None, True
        with self._lock:
            tok = self._tokens.get(value)
        return tok, tok is None

    def _get_repo(self, repo_id: str, token: _Token | None) -> _Repo:
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None:
            raise _Denied(404, "RepoNotFound", "Repository not found")
        if repo.private:
            if token is None:
                raise _Denied(401, "RepoNotFound", "Invalid username or password.")
            if token.private_access is not None and repo_id not in token.private_access:
                raise _Denied(404, "RepoNotFound", "Repository not found")
        return repo

    @staticmethod
    def _get_commit(repo: _Repo, revision: str) -> _Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _Denied(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    @staticmethod
    def _check_gated(repo: _Repo, token: _Token | None) -> None:
        if not repo.gated:
            return
        if token is None:
            raise _Denied(
                401,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted. You must have access to it and be authenticated"
                " to access it. Please log in.",
            )
        if repo.repo_id not in token.gated_access:
            raise _Denied(
                403,
                "GatedRepo",
                f"Access to model {repo.repo_id} is restricted and you are not in the authorized list. Visit"
                f" https://huggingface.co/{repo.repo_id} to ask for access.",
            )

    def _storage_url(self, repo_id: str, filename: str, blob: _Blob) -> str:
        """A signed CDN URL for the blob, valid until ``clock() + url_ttl`` or the next expire_urls()."""
        sha = blob.sha256
        with self._lock:
            self._blobs_by_sha256.setdefault(sha, blob)
            generation = self._url_generation
        path = f"/lfs/{sha}"
        expires = str(math.ceil(self.clock() + self.url_ttl))
        sig = self._sign(path, repo_id, filename, expires, generation)
        query = urlencode({"repo": repo_id, "name": filename, "expires": expires, "sig": sig}, quote_via=quote)
        return f"{self.cdn_url}{path}?{query}"

    def _sign(self, path: str, repo_id: str, filename: str, expires: str, generation: int) -> str:
        message = "\0".join((path, repo_id, filename, expires, str(generation))).encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()

    def _check_storage_url(self, path: str, query: Mapping[str, list[str]]) -> tuple[int, str] | None:
        """Why the CDN refuses this URL, as (status, message); None when it is valid."""
        repo_id, filename, expires, sig = (query.get(k, [""])[-1] for k in ("repo", "name", "expires", "sig"))
        with self._lock:
            generation = self._url_generation

        def signed_in(g: int) -> bool:
            return hmac.compare_digest(sig.encode(), self._sign(path, repo_id, filename, expires, g).encode())

        if signed_in(generation):
            return None if self.clock() <= int(expires) else (self.expired_status, "Request has expired")
        if any(signed_in(g) for g in range(generation)):
            return self.expired_status, "Request has expired"
        return 403, "Invalid signature"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    hub: FakeHub
    is_cdn: bool
    _answer_headers: Mapping[str, str] = {}  # of the current request (rate limits, Connection): sent with its answer

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._connections.add(self.connection)
            self.hub.connections_opened += 1

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.hub._lock:
                self.hub._connections.discard(self.connection)

    def parse_request(self) -> bool:
        self._answer_headers = {}
        return super().parse_request()

    def end_headers(self) -> None:
        for k, v in self._answer_headers.items():
            self.send_header(k, v)
        super().end_headers()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _unsupported(self) -> None:
        self.hub._record(self.command, self.path, self.headers, is_cdn=self.is_cdn)
        # We do not read request bodies, so the connection cannot carry another request: say so.
        self._answer_headers = {"Connection": "close"}
        self.close_connection = True
        if self._admit():
            self._send_json_error(405, None, "Method not allowed")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _unsupported

    def _send_json(self, status: int, payload, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json_error(
        self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        h = dict(headers or {})
        if code is not None:
            h["X-Error-Code"] = code
        h["X-Error-Message"] = message
        self._send_json(status, {"error": message}, h)

    def _admit(self) -> bool:
        """Count the request against its rate-limit bucket; when that is exhausted, answer 429 and return False."""
        if self.is_cdn:
            return True
        token, _ = self.hub._auth(self.headers.get("Authorization"))
        headers, refusal = self.hub._take_quota(self.path, with_token=token is not None)
        self._answer_headers = {**self._answer_headers, **headers}
        if refusal is None:
            return True
        self._send_json_error(429, None, refusal)
        return False

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        hub._record(method, self.path, self.headers, is_cdn=self.is_cdn)
        if not self._admit():
            return

        if hub._take_fault(self.path, ("drop",)) is not None:
            self.close_connection = True
            return
        fault = hub._take_fault(self.path, ("fail",))
        if fault is not None:
            extra = {}
            if fault.retry_after is not None:
                extra["Retry-After"] = f"{fault.retry_after:g}"
            self._send_json_error(fault.status, None, f"Injected failure ({fault.status})", extra)
            return

        parts = urlsplit(self.path)
        raw_path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            if self.is_cdn:
                self._handle_cdn(raw_path, query)
                return
            token, invalid = hub._auth(self.headers.get("Authorization"))
            if invalid and hub.reject_invalid_tokens:
                raise _Denied(401, None, "Invalid credentials in Authorization header")
            if raw_path.startswith("/api/models/") and method == "GET":
                self._handle_api(raw_path[len("/api/models/") :], query, token)
            elif "/resolve/" in raw_path:
                self._handle_resolve(raw_path, token)
            else:
                raise _Denied(404, None, "Not Found")
        except _Denied as e:
            self._send_json_error(e.status, e.code, e.message, e.headers)

    # ------------------------------------------------------------------ /api/models

    def _handle_api(self, rest: str, query: dict[str, list[str]], token: _Token | None) -> None:
        segs = rest.split("/")
        if len(segs) >= 2 and segs[1] not in ("revision", "tree") and segs[1] != "":
            repo_id, tail = f"{segs[0]}/{segs[1]}", segs[2:]
        else:
            repo_id, tail = segs[0], segs[1:]
        repo_id = unquote(repo_id)
        repo = self.hub._get_repo(repo_id, token)

        if not tail or tail == [""]:
            self._model_info(repo, repo.refs.get("main") or next(iter(repo.refs.values())), query)
        elif tail[0] == "revision" and len(tail) >= 2:
            self._model_info(repo, unquote("/".join(tail[1:])), query)
        elif tail[0] == "tree" and len(tail) >= 2:
            revision = unquote(tail[1])
            path = unquote("/".join(tail[2:])).strip("/")
            self._tree(repo, revision, path, query)
        else:
            raise _Denied(404, None, "Not Found")

    def _model_info(self, repo: _Repo, revision: str, query: dict[str, list[str]]) -> None:
        commit = FakeHub._get_commit(repo, revision)
        blobs = _truthy(query.get("blobs"))
        siblings = []
        for name in sorted(commit.files):
            entry: dict = {"rfilename": name}
            if blobs:
                b = commit.files[name]
                entry["size"] = b.size
                entry["blobId"] = b.git_oid
                if b.lfs:
                    entry["lfs"] = {"sha256": b.sha256, "size": b.size, "pointerSize": b.pointer_size}
            siblings.append(entry)
        info = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "sha": commit.sha,
            "lastModified": _LAST_MODIFIED,
            "createdAt": _LAST_MODIFIED,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "spaces": [],
            "usedStorage": sum(b.size for b in commit.files.values()),
        }
        if "/" in repo.repo_id:
            info["author"] = repo.repo_id.split("/")[0]
        expand = query.get("expand")
        if expand:
            keep = set(expand) | {"_id", "id"}
            info = {k: v for k, v in info.items() if k in keep}
        self._send_json(200, info)

    def _tree(self, repo: _Repo, revision: str, path: str, query: dict[str, list[str]]) -> None:
        commit = FakeHub._get_commit(repo, revision)
        recursive = _truthy(query.get("recursive"))
        expand = _truthy(query.get("expand"))
        prefix = f"{path}/" if path else ""
        if path and path in commit.files:
            raise _Denied(404, "EntryNotFound", f"{path} is a file, not a directory")
        dirs: set[str] = set()
        files: list[str] = []
        for name in commit.files:
            if not name.startswith(prefix):
                continue
            rel = name[len(prefix) :]
            parts = rel.split("/")
            if recursive:
                files.append(name)
                for i in range(1, len(parts)):
                    dirs.add(prefix + "/".join(parts[:i]))
            elif len(parts) == 1:
                files.append(name)
            else:
                dirs.add(prefix + parts[0])
        if path and not files and not dirs:
            raise _Denied(404, "EntryNotFound", f'{path} does not exist on "{revision}"')
        last_commit = {"id": commit.sha, "title": "Upload folder", "date": _LAST_MODIFIED}
        out = []
        for d in sorted(dirs):
            entry = {
                "type": "directory",
                "oid": hashlib.sha1(f"{commit.sha}:{d}".encode()).hexdigest(),
                "size": 0,
                "path": d,
            }
            if expand:
                entry["lastCommit"] = last_commit
            out.append(entry)
        for name in sorted(files):
            b = commit.files[name]
            entry = {"type": "file", "oid": b.git_oid, "size": b.size, "path": name}
            if b.lfs:
                entry["lfs"] = {"oid": b.sha256, "size": b.size, "pointerSize": b.pointer_size}
            if expand:
                entry["lastCommit"] = last_commit
            out.append(entry)
        self._send_json(200, out)

    # ------------------------------------------------------------------ /{repo}/resolve/{rev}/{path}

    def _handle_resolve(self, raw_path: str, token: _Token | None) -> None:
        parsed = _split_resolve_path(raw_path)
        if parsed is None:
            raise _Denied(404, None, "Not Found")
        repo_id, revision, filename = parsed
        hub = self.hub
        repo = hub._get_repo(repo_id, token)
        FakeHub._check_gated(repo, token)
        commit = FakeHub._get_commit(repo, revision)
        blob = commit.files.get(filename)
        if blob is None:
            raise _Denied(
                404, "EntryNotFound", f'{filename} does not exist on "{revision}"', {"X-Repo-Commit": commit.sha}
            )
        common = {"X-Repo-Commit": commit.sha}
        if blob.lfs:
            common["X-Linked-Etag"] = f'"{blob.sha256}"'
            common["X-Linked-Size"] = str(blob.size)
        if blob.lfs and hub.redirect_lfs:
            location = hub._storage_url(repo_id, filename, blob)
            body = f"Found. Redirecting to {location}".encode()
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("ETag", f'"{blob.git_oid}"')
            for k, v in common.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        self._serve_blob(repo_id, blob, common)

    def _handle_cdn(self, raw_path: str, query: Mapping[str, list[str]]) -> None:
        segs = raw_path.strip("/").split("/")
        if len(segs) != 2 or segs[0] != "lfs":
            raise _Denied(404, None, "Not Found")
        refusal = self.hub._check_storage_url(raw_path, query)
        if refusal is not None:
            self._send_storage_error(*refusal)
            return
        with self.hub._lock:
            blob = self.hub._blobs_by_sha256.get(segs[1])
        if blob is None:
            raise _Denied(404, None, "Not Found")
        self._serve_blob(query["repo"][-1], blob, {})  # the repo is part of the signed URL

    def _send_storage_error(self, status: int, message: str) -> None:
        """An error in the style of S3/CloudFront: XML body, no X-Error-* headers."""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ------------------------------------------------------------------ content + Range

    def _serve_blob(self, repo_id: str, blob: _Blob, extra_headers: Mapping[str, str]) -> None:
        hub = self.hub
        size = blob.size
        range_header = self.headers.get("Range")
        status, start, end = 200, 0, size  # [start, end)
        if range_header is not None and not hub.ignore_range:
            parsed = _parse_range(range_header, size)
            if parsed == "unsatisfiable":
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Type", "application/json; charset=utf-8")
                body = json.dumps({"error": "Range Not Satisfiable"}).encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                return
            if parsed is not None:
                status, (start, end) = 206, parsed

        cut = False
        trickle = None
        if self.command == "GET":
            fault = hub._take_fault(self.path, ("truncate",))
            if fault is not None:
                length = end - start
                if fault.mode == "short" and length >= 2:
                    end = start + length // 2  # a 206 (or 200) that is consistent but shorter than asked
                else:
                    cut = True
            trickle = hub._take_fault(self.path, ("trickle",))

        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{blob.etag}"')
        for k, v in extra_headers.items():
            self.send_header(k, v)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        to_send = (end - start) // 2 if cut else end - start
        if trickle is not None and trickle.stall:
            hub._stopping.wait()
            self.close_connection = True
            return
        sent = self._send_range(repo_id, blob, start, to_send, trickle.bytes_per_second if trickle else None)
        if cut or sent < to_send:
            self.close_connection = True

    def _counted_send(self, repo_id: str, want: int, send: Callable[[], int]) -> int:
        """Run ``send`` (which sends up to ``want`` bytes of the repo's content) and return what it sent.

        Bytes are added to ``bytes_served`` *before* the send, and the unsent part is taken back
        afterwards: a client that has received the bytes always finds them counted (no race with the
        test thread), and partial sends are counted exactly.
        """
        self.hub._count(repo_id, want)
        n = 0
        try:
            n = send()
        finally:
            if n != want:
                self.hub._count(repo_id, n - want)
        return n

    def _send_range(
        self, repo_id: str, blob: _Blob, start: int, length: int, bytes_per_second: float | None = None
    ) -> int:
        """Send ``length`` bytes of the blob from ``start``; return the number of bytes actually sent.

        With ``bytes_per_second``, the bytes go out as small pieces each after a pause (a trickle), and
        sending stops as soon as the hub stops.
        """
        sock = self.connection
        sent = 0
        try:
            zero_copy = hasattr(os, "sendfile") and sock.gettimeout() is None
            if blob.path is not None and zero_copy and bytes_per_second is None:
                with open(blob.path, "rb") as f:
                    while sent < length:
                        want = min(length - sent, 8 * _CHUNK)
                        send = functools.partial(os.sendfile, sock.fileno(), f.fileno(), start + sent, want)
                        n = self._counted_send(repo_id, want, send)
                        if n == 0:
                            break  # file shrank
                        sent += n
                return sent
            piece, pause = _CHUNK, 0.0
            if bytes_per_second is not None:
                piece = max(1, int(bytes_per_second * _TRICKLE_PAUSE))
                pause = piece / bytes_per_second
            for data in blob.pieces(start, length, piece):
                if pause and self.hub._stopping.wait(pause):
                    break
                view = memoryview(data)
                while len(view):
                    n = self._counted_send(repo_id, len(view), lambda view=view: sock.send(view))
                    sent += n
                    view = view[n:]
        except OSError:  # client went away (BrokenPipe, ConnectionReset, ...)
            self.close_connection = True
        return sent


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that drops its keep-alive connection is normal; anything else is printed as usual."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def _shutdown_quickly(srv: http.server.ThreadingHTTPServer) -> None:
    """``srv.shutdown()`` waits for serve_forever's poll interval; wake its select() with a connection."""
    t = threading.Thread(target=srv.shutdown, daemon=True)
    t.start()
    while t.is_alive():
        try:
            socket.create_connection(srv.server_address[:2], timeout=1).close()
        except OSError:
            pass
        t.join(0.01)


def _bucket_of(path: str) -> str | None:
    """The Hub's rate-limit bucket of a request path on the main origin, if any."""
    if path.startswith("/api/"):
        return "api"
    if "/resolve/" in path:
        return "resolvers"
    return None


def _split_resolve_path(path: str) -> tuple[str, str, str] | None:
    """``/{repo_id}/resolve/{revision}/{filename}`` -> (repo_id, revision, filename), unquoted; None if malformed."""
    segs = path.lstrip("/").split("/")
    try:
        i = segs.index("resolve")
    except ValueError:
        return None
    if i not in (1, 2) or len(segs) < i + 3:
        return None
    return unquote("/".join(segs[:i])), unquote(segs[i + 1]), unquote("/".join(segs[i + 2 :]))


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


def _parse_range(header: str, size: int):
    """Parse a Range header for a ``size``-byte resource.

    Returns (start, end_exclusive) for a single satisfiable range, "unsatisfiable" (-> 416), or None when
    the header must be ignored (malformed, other unit, multi-range: the whole file is answered with 200).
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    first, sep, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not sep or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # suffix range: last n bytes
        if not last:
            return None
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size
    a = int(first)
    if last:
        b = int(last)
        if b < a:
            return None
    else:
        b = size - 1
    if a >= size:
        return "unsatisfiable"
    return a, min(b, size - 1) + 1

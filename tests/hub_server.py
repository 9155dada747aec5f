"""A local, standard-library-only fake of the Hugging Face Hub, speaking what the product uses of its protocol.

The product (``fingerprint/sources/hub.py``) makes two kinds of request, and the fake answers them like the Hub:

* ``GET /api/models/{org}/{name}[/revision/{revision}]?blobs=true``: ``HfApi.model_info(files_metadata=True)``,
  the commit sha and the files with their sizes (and the LFS sha256, as the Hub shows it);
* ``GET /{org}/{name}/resolve/{sha}/{path}`` with ``Range: bytes=a-b``: a 206 with exactly those bytes (416 past
  the end, 200 with the whole file for a Range it does not parse or when ``ignore_range`` is set).

A reference library travels as a *dataset* repo (``fingerprint/library/hub_sync.py``), through what
``HfApi.create_repo``, ``create_commit`` and ``snapshot_download`` send; every route above serves datasets too, under
``/api/datasets/...`` and ``/datasets/{org}/{name}/resolve/...`` (``add_repo(..., repo_type="dataset")``):

* ``POST /api/repos/create`` {name, organization, type, visibility}: a repo whose first commit holds the Hub's
  default ``.gitattributes``; 409 when it exists, 403 unless the token may write to the namespace;
* ``GET /api/{models|datasets}/{repo}/tree/{revision}[/{path}]?recursive=``: files (git blob id, size, LFS sha256)
  and folders, ``tree_page_size`` at a time, the next page's URL in a ``Link`` header;
* ``HEAD .../resolve/...``: the metadata ``hf_hub_download`` reads: ``X-Repo-Commit``, ``ETag`` (git blob id),
  ``X-Linked-Etag`` (sha256) and ``X-Linked-Size`` for an LFS file, and the same 302 as a GET;
* ``POST /api/{type}s/{repo}/preupload/{revision}``: each file's upload mode, LFS when the repo's .gitattributes
  sends its name to LFS, when its 512-byte sample holds a NUL byte, or from 10 MiB up; the ``oid`` of a file already
  there, so unchanged files are left out (``gitIgnore`` is not read: nothing is ignored);
* ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` (git LFS batch API, basic transfer, uploads only): a signed,
  expiring PUT URL on the storage origin for each object not stored yet, and a verify action
  (``.../objects/verify``); the storage origin keeps a PUT whose bytes hash to the oid (400 otherwise);
* ``POST /api/{type}s/{repo}/commit/main`` (NDJSON: a header, then ``file`` with base64 content, ``lfsFile`` naming
  an uploaded object, ``deletedFile``, ``deletedFolder``): all or nothing; 412 when ``parentCommit`` is not the head,
  400 for a regular file that is binary or 10 MiB or more, or an LFS object never uploaded. No pull requests, no
  other branch.

Writing needs a token added with ``write_access`` naming the repo's namespace: without a token 401, with a read
token (or another namespace's) 403. Uploads speak LFS, not Xet (the Hub's newer storage protocol): a test that
uploads sets ``huggingface_hub.constants.HF_HUB_DISABLE_XET``, or huggingface_hub with hf_xet installed asks for a
Xet token this fake does not give. ``commits()`` lists a repo's commits and ``read_file()`` reads a file as stored.

Errors carry ``X-Error-Code`` / ``X-Error-Message`` like the Hub's, so ``huggingface_hub``'s
``hf_raise_for_status`` maps them to its typed exceptions: unknown repo, revision or file, gated repos (401
without a token, 403 with one not granted), private repos (401 without a token, 404 for one not granted), and
an unknown token (401 "Invalid credentials", unless ``reject_invalid_tokens`` is False).

``redirect_lfs = True``: LFS files (weights, and anything above 1 MB) are answered like the Hub does, with a 302 to
a storage origin (a second local server) whose URL is signed and expires:
``{cdn_url}/lfs/{sha256}?repo=...&name=...&expires={unix seconds}&sig={hmac hex}``, valid until ``clock() >
expires`` (an hour after the 302) or until ``expire_urls()``; then the storage origin answers ``expired_status``
(403 like S3, or 410) "Request has expired", and 403 "Invalid signature" for a URL it did not sign.

``enable_rate_limits(api, resolvers, window)``: the Hub's two buckets in fixed windows of ``clock`` seconds, each
starting with the first request after the previous one ended. Every ``/api/`` request counts as "api", every
``/resolve/`` request as "resolvers" (the storage origin never counts); every counted answer carries
``RateLimit: "resolvers";r=REMAINING;t=SECONDS_TO_RESET`` and ``RateLimit-Policy: "fixed
window";"resolvers";q=QUOTA;w=WINDOW``; past the quota the answer is 429 with ``Retry-After``. A refused request
uses no quota.

Counters, zeroed by ``reset_counters()``: ``bytes_served`` (per repo, exact even for cut answers), ``requests``
((method, path, Range) on both origins), ``connections_opened``, ``api_calls``, ``resolver_calls`` (and
``resolver_calls_by_repo``), ``cdn_requests``, ``cdn_authorization_seen`` (Authorization headers that reached the
storage origin: a correct client sends none there) and ``rate_limited`` (429s per bucket).

Faults, each for the next ``n`` requests whose path contains ``path_contains``: ``fail_next`` (an error status),
``drop_next`` (the connection closed without an answer), ``truncate_next`` (half the body: ``mode="short"`` a
consistent but shorter 206, ``"cut"`` the full length promised and the connection closed half way) and
``trickle_next`` (the body sent at ``bytes_per_second``, or with ``stall=True`` nothing after the headers until
``stop()``).

Usage::

    with FakeHub() as hub:
        sha = hub.add_repo("org/model", {"config.json": b"{}", "model.safetensors": Path("m.safetensors")})
        compute("org/model", Options(endpoint=hub.url))
"""

from __future__ import annotations

import base64
import collections
import fnmatch
import hashlib
import hmac
import http.server
import json
import math
import os
import pathlib
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = ["FakeHub"]

_CHUNK = 1024 * 1024
_TRICKLE_PAUSE = 0.05  # seconds between the small pieces of a trickled answer
_URL_TTL = 3600  # seconds a signed storage URL stays valid
_LFS_THRESHOLD = 1024 * 1024
_LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".npy", ".pkl")
_REGULAR_MAX = 10 * 1024 * 1024  # the Hub refuses regular (non-LFS) files of 10 MiB and more
_TYPE_PREFIX = {"model": "", "dataset": "datasets/"}  # in URLs: /{prefix}{repo_id}/resolve/..., .git/...
_API_TYPES = {"models": "model", "datasets": "dataset"}  # in API URLs: /api/{plural}/{repo_id}/...
_API_ACTIONS = ("revision", "tree", "preupload", "commit")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# what a repository created on the Hub holds in its first commit (a shortened copy of the Hub's default)
_DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gguf", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.model",
        "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.parquet", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.safetensors",
        "*.tar", "*.tar.*", "*.tgz", "*.xz", "*.zip", "*.zst", "*tfevents*",
    )
)  # fmt: skip


@dataclass(eq=False)
class _Blob:
    size: int
    data: bytes | None = None
    path: pathlib.Path | None = None
    mtime_ns: int = 0
    lfs: bool = False
    known_sha256: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def content_id(self) -> str:
        """Cheap identity for the commit sha (a file on disk is not hashed for it)."""
        if self.data is not None:
            return hashlib.sha1(self.data).hexdigest()
        return f"{self.path}:{self.size}:{self.mtime_ns}"

    def pieces(self, start: int, length: int, size: int) -> Iterator[bytes]:
        """``length`` bytes from ``start``, in pieces of at most ``size`` bytes (fewer if a file shrank)."""
        if self.data is not None:
            for offset in range(start, start + length, size):
                yield self.data[offset : min(offset + size, start + length)]
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
        with self._lock:
            if self.known_sha256 is None:
                h = hashlib.sha256()
                for piece in self.pieces(0, self.size, 8 * _CHUNK):
                    h.update(piece)
                self.known_sha256 = h.hexdigest()
        return self.known_sha256

    @property
    def pointer(self) -> bytes:
        """The LFS pointer file git stores in place of the content."""
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def pointer_size(self) -> int:
        return len(self.pointer)

    @property
    def git_oid(self) -> str:
        """The git blob id the Hub shows for the file (of the pointer, for an LFS file)."""
        if self.lfs:
            return _git_blob_sha(self.pointer)
        return _git_blob_sha(b"".join(self.pieces(0, self.size, 8 * _CHUNK)))


def _git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class _Repo:
    repo_id: str
    repo_type: str = "model"
    commits: dict[str, dict[str, _Blob]] = field(default_factory=dict)  # sha -> files
    main: str = ""
    gated: str | bool = False  # False, "auto" or "manual"
    private: bool = False
    history: list[tuple[str, str]] = field(default_factory=list)  # (sha, summary) of each commit on main
    lfs_objects: dict[str, _Blob] = field(default_factory=dict)  # sha256 -> content uploaded through the LFS API

    @property
    def key(self) -> str:
        """How URLs name the repo (``datasets/org/name``, or ``org/name`` for a model); counters use it too."""
        return _TYPE_PREFIX[self.repo_type] + self.repo_id

    def files_at(self, revision: str) -> tuple[str, dict[str, _Blob]]:
        sha = self.main if revision == "main" else revision
        if sha not in self.commits:
            raise _Denied(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return sha, self.commits[sha]

    def new_commit(self, files: dict[str, _Blob], summary: str) -> str:
        """Put ``files`` on main as a new commit (the caller holds the hub's lock); return its sha."""
        h = hashlib.sha1(f"{self.key}\0{self.main}\0{summary}\0".encode())
        for name in sorted(files):
            h.update(f"{name}\0{files[name].size}\0{files[name].content_id()}\0".encode())
        self.main = h.hexdigest()
        self.commits[self.main] = files
        self.history.append((self.main, summary))
        return self.main


@dataclass
class _Token:
    gated_access: frozenset[str]
    private_access: frozenset[str] | None  # None: every private repo
    write_access: frozenset[str] = frozenset()  # namespaces (users, organisations) it may create repos in and write to


@dataclass
class _Fault:
    kind: str  # "fail" | "drop" | "truncate" | "trickle"
    remaining: int
    path_contains: str
    status: int = 503
    mode: str = "short"
    bytes_per_second: float = 0.0
    stall: bool = False


@dataclass
class _Bucket:
    """One rate-limit bucket ("api" or "resolvers"): a fixed window from the first request counted after the
    previous window ended."""

    name: str
    quota: int
    window: float
    window_start: float | None = None
    used: int = 0

    def take(self, now: float) -> tuple[dict[str, str], str | None]:
        """Count one request: the headers of its answer, and the message of a 429 when the quota is used up
        (the headers then include Retry-After)."""
        if self.window_start is None or now >= self.window_start + self.window:
            self.window_start, self.used = now, 0
        refused = self.used >= self.quota
        if not refused:
            self.used += 1
        reset = max(1, math.ceil(self.window_start + self.window - now))
        window = math.ceil(self.window)
        headers = {
            "RateLimit": f'"{self.name}";r={self.quota - self.used};t={reset}',
            "RateLimit-Policy": f'"fixed window";"{self.name}";q={self.quota};w={window}',
        }
        if not refused:
            return headers, None
        headers["Retry-After"] = str(reset)
        return headers, f"You have reached your '{self.name}' rate limit of {self.quota} requests per {window} seconds."


class _Denied(Exception):
    def __init__(self, status: int, code: str | None, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeHub:
    """A local fake of the Hugging Face Hub (model and dataset repos). See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}  # (repo type, repo id) -> repo
        self._tokens: dict[str, _Token] = {}
        self._faults: list[_Fault] = []
        self._blobs_by_sha256: dict[str, _Blob] = {}
        self._buckets: dict[str, _Bucket] = {}  # empty: no rate limits
        self._url_key = secrets.token_bytes(32)
        self._url_generation = 0  # part of every storage URL's signature: expire_urls() moves it on
        self._stopping = threading.Event()  # wakes trickling and stalled answers on stop()
        self._servers: list[http.server.ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self.url = ""
        self.cdn_url = ""
        self.bytes_served: collections.Counter[str] = collections.Counter()
        self.requests: list[tuple[str, str, str | None]] = []
        self.connections_opened = 0
        self.api_calls = 0
        self.resolver_calls = 0
        self.resolver_calls_by_repo: collections.Counter[str] = collections.Counter()
        self.cdn_requests = 0
        self.cdn_authorization_seen: list[str] = []
        self.rate_limited: collections.Counter[str] = collections.Counter()
        self.clock: Callable[[], float] = time.time  # storage URL expiry and rate-limit windows follow it
        self.ignore_range = False
        self.redirect_lfs = False
        self.expired_status = 403
        self.reject_invalid_tokens = True
        self.tree_page_size = 1000  # entries per page of the tree API, like the Hub's

    # ------------------------------------------------------------------ setup

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | os.PathLike | str],
        *,
        gated: bool | str = False,
        private: bool = False,
        lfs_sha256: Mapping[str, str] | None = None,
        repo_type: str = "model",
    ) -> str:
        """Add a repo (``repo_type`` "model" or "dataset"), or a new commit of it on ``main`` (earlier commits
        stay readable by sha); return the commit sha. ``files`` maps repo paths to bytes or to files on disk
        (served from disk, never loaded whole); ``lfs_sha256`` may give the sha256 of large files so they need
        not be hashed. ``gated``: True (= "auto") or "manual"."""
        if repo_type not in _TYPE_PREFIX:
            raise ValueError(f"repo_type must be one of {sorted(_TYPE_PREFIX)}")
        blobs: dict[str, _Blob] = {}
        for name, content in files.items():
            if isinstance(content, bytes):
                blob = _Blob(size=len(content), data=content)
            else:
                p = pathlib.Path(content).resolve()
                st = p.stat()
                blob = _Blob(size=st.st_size, path=p, mtime_ns=st.st_mtime_ns)
            blob.lfs = blob.size > _LFS_THRESHOLD or name.lower().endswith(_LFS_SUFFIXES)
            blob.known_sha256 = (lfs_sha256 or {}).get(name)
            blobs[name] = blob
        with self._lock:
            repo = self._repos.setdefault((repo_type, repo_id), _Repo(repo_id, repo_type))
            repo.gated = "auto" if gated is True else gated
            repo.private = private
            return repo.new_commit(blobs, "add_repo")

    def add_token(
        self,
        token: str,
        *,
        gated_access: Iterable[str] = (),
        private_access: Iterable[str] | None = None,
        write_access: Iterable[str] = (),
    ) -> None:
        """A valid token, granted the gated repos listed, and the private ones listed (None: all of them).
        ``write_access`` lists the namespaces (user and organisation names) whose repos it may create and commit
        to, like a write token of a member of those organisations; without any it is a read token."""
        with self._lock:
            self._tokens[token] = _Token(
                frozenset(gated_access),
                None if private_access is None else frozenset(private_access),
                frozenset(write_access),
            )

    def commits(self, repo_id: str, repo_type: str = "model") -> list[tuple[str, str]]:
        """The commits on the repo's main branch, oldest first, as (sha, summary)."""
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            return list(repo.history) if repo else []

    def read_file(self, repo_id: str, filename: str, *, repo_type: str = "model", revision: str = "main") -> bytes:
        """A file's content as the Hub holds it at ``revision``."""
        with self._lock:
            blob = self._repos[(repo_type, repo_id)].files_at(revision)[1][filename]
        return b"".join(blob.pieces(0, blob.size, 8 * _CHUNK))

    def enable_rate_limits(self, api: int = 500, resolvers: int = 3000, window: float = 300.0) -> None:
        """Rate-limit the Hub origin like the Hub (see the module docstring); again: fresh buckets."""
        with self._lock:
            self._buckets = {"api": _Bucket("api", api, window), "resolvers": _Bucket("resolvers", resolvers, window)}

    def expire_urls(self) -> None:
        """Every storage URL handed out so far is expired from now on; new redirects hand out valid ones."""
        with self._lock:
            self._url_generation += 1

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_served.clear()
            self.requests.clear()
            self.connections_opened = self.api_calls = self.resolver_calls = self.cdn_requests = 0
            self.resolver_calls_by_repo.clear()
            self.cdn_authorization_seen.clear()
            self.rate_limited.clear()

    # ------------------------------------------------------------------ faults

    def fail_next(self, n: int, status: int = 503, *, path_contains: str = "/resolve/") -> None:
        self._add_fault(_Fault("fail", n, path_contains, status=status))

    def drop_next(self, n: int, path_contains: str = "/resolve/") -> None:
        self._add_fault(_Fault("drop", n, path_contains))

    def truncate_next(self, n: int, path_contains: str = "/resolve/", *, mode: str = "short") -> None:
        if mode not in ("short", "cut"):
            raise ValueError("mode must be 'short' or 'cut'")
        self._add_fault(_Fault("truncate", n, path_contains, mode=mode))

    def trickle_next(
        self, n: int, path_contains: str = "/lfs/", bytes_per_second: float = 50.0, *, stall: bool = False
    ) -> None:
        """The default ``path_contains`` matches the storage origin (``redirect_lfs``)."""
        self._add_fault(_Fault("trickle", n, path_contains, bytes_per_second=bytes_per_second, stall=stall))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, path: str, kind: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.remaining > 0 and fault.path_contains in path:
                    fault.remaining -= 1
                    return fault
        return None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeHub:
        if self._servers:
            return self
        self._stopping.clear()
        for is_cdn in (False, True):
            handler = type("Handler", (_Handler,), {"hub": self, "is_cdn": is_cdn})
            srv = _QuietServer(("127.0.0.1", 0), handler)
            srv.daemon_threads = True
            self._servers.append(srv)
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
            t.start()
            self._threads.append(t)
        self.url, self.cdn_url = (f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for srv in self._servers:
            _shutdown_quickly(srv)
            srv.server_close()
        self._servers.clear()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # idle keep-alive connections: wake their handler threads
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

    # ------------------------------------------------------------------ used by the handler

    def _record(self, method: str, path: str, headers: Mapping[str, str], *, is_cdn: bool) -> None:
        route = urlsplit(path).path
        with self._lock:
            self.requests.append((method, path, headers.get("Range")))
            if is_cdn:
                self.cdn_requests += 1
                if headers.get("Authorization") is not None:
                    self.cdn_authorization_seen.append(headers["Authorization"])
            elif route.startswith("/api/"):
                self.api_calls += 1
            elif "/resolve/" in route:
                self.resolver_calls += 1
                self.resolver_calls_by_repo[route.lstrip("/").split("/resolve/")[0]] += 1

    def _take_quota(self, path: str) -> tuple[dict[str, str], str | None]:
        route = urlsplit(path).path
        name = "api" if route.startswith("/api/") else "resolvers" if "/resolve/" in route else ""
        with self._lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                return {}, None
            headers, refusal = bucket.take(self.clock())
            if refusal is not None:
                self.rate_limited[name] += 1
        return headers, refusal

    def _count(self, repo_id: str, n: int) -> None:
        with self._lock:
            self.bytes_served[repo_id] += n

    def _token(self, authorization: str | None) -> _Token | None:
        if not authorization:
            return None
        scheme, _, value = authorization.partition(" ")
        with self._lock:
            token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None and self.reject_invalid_tokens:
            raise _Denied(401, None, "Invalid credentials in Authorization header")
        return token

    def _repo(self, repo_id: str, token: _Token | None, repo_type: str = "model") -> _Repo:
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _Denied(404, "RepoNotFound", "Repository not found")
        if repo.private:
            if token is None:
                raise _Denied(401, "RepoNotFound", "Invalid username or password.")
            if token.private_access is not None and repo_id not in token.private_access:
                raise _Denied(404, "RepoNotFound", "Repository not found")
        return repo

    def _writable(self, repo_id: str, token: _Token | None, repo_type: str) -> _Repo:
        """The repo, when ``token`` may write to it (a missing or unseen private repo is not found first)."""
        repo = self._repo(repo_id, token, repo_type)
        if token is None:
            raise _Denied(401, None, "Invalid username or password.")
        if _namespace(repo_id) not in token.write_access:
            raise _Denied(403, None, "Forbidden: pass `create_pr=1` as a query parameter to create a Pull Request")
        return repo

    def _upload_url(self, repo: _Repo, oid: str, size: int) -> str:
        """A signed, expiring URL of the storage origin to PUT one LFS object to (like a presigned S3 URL)."""
        with self._lock:
            generation = self._url_generation
        path = f"/lfs-upload/{oid}"
        expires = str(math.ceil(self.clock() + _URL_TTL))
        sig = self._sign(path, repo.key, str(size), expires, generation)
        query = urlencode({"repo": repo.key, "size": size, "expires": expires, "sig": sig}, quote_via=quote)
        return f"{self.cdn_url}{path}?{query}"

    def _storage_url(self, repo_id: str, filename: str, blob: _Blob) -> str:
        with self._lock:
            self._blobs_by_sha256.setdefault(blob.sha256, blob)
            generation = self._url_generation
        path = f"/lfs/{blob.sha256}"
        expires = str(math.ceil(self.clock() + _URL_TTL))
        sig = self._sign(path, repo_id, filename, expires, generation)
        query = urlencode({"repo": repo_id, "name": filename, "expires": expires, "sig": sig}, quote_via=quote)
        return f"{self.cdn_url}{path}?{query}"

    def _sign(self, path: str, repo_id: str, filename: str, expires: str, generation: int) -> str:
        message = "\0".join((path, repo_id, filename, expires, str(generation))).encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()

    def _storage_refusal(
        self, path: str, query: Mapping[str, list[str]], name_key: str = "name"
    ) -> tuple[int, str] | None:
        """Why the storage origin refuses this URL, as (status, message); None when it is valid."""
        repo_id, filename, expires, sig = (query.get(k, [""])[-1] for k in ("repo", name_key, "expires", "sig"))
        with self._lock:
            generation = self._url_generation
        for g in range(generation, -1, -1):
            if hmac.compare_digest(sig.encode(), self._sign(path, repo_id, filename, expires, g).encode()):
                if g == generation and self.clock() <= int(expires):
                    return None
                return self.expired_status, "Request has expired"
        return 403, "Invalid signature"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    hub: FakeHub
    is_cdn: bool
    _extra_headers: Mapping[str, str] = {}  # of the current answer (the rate-limit headers)

    def log_message(self, format: str, *args) -> None:
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
        self._extra_headers = {}
        return super().parse_request()

    def end_headers(self) -> None:
        for k, v in self._extra_headers.items():
            self.send_header(k, v)
        super().end_headers()

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        hub = self.hub
        method = self.command
        body = self._read_body() if method in ("POST", "PUT") else b""  # read whole, so keep-alive stays in step
        hub._record(method, self.path, self.headers, is_cdn=self.is_cdn)
        if not self.is_cdn:
            self._extra_headers, refusal = hub._take_quota(self.path)
            if refusal is not None:
                self._send_error(429, None, refusal)
                return
        if hub._take_fault(self.path, "drop") is not None:
            self.close_connection = True
            return
        fault = hub._take_fault(self.path, "fail")
        if fault is not None:
            self._send_error(fault.status, None, f"Injected failure ({fault.status})")
            return
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        try:
            if self.is_cdn:
                if method == "PUT":
                    self._storage_upload(parts.path, query, body)
                else:
                    self._storage(parts.path, query)
                return
            token = hub._token(self.headers.get("Authorization"))
            self._route(method, parts.path, query, token, body)
        except _Denied as e:
            self._send_error(e.status, e.code, e.message)

    def _route(self, method: str, path: str, query: dict[str, list[str]], token: _Token | None, body: bytes) -> None:
        if path == "/api/repos/create" and method == "POST":
            self._create_repo(_json_body(body), token)
        elif path.startswith("/api/"):
            self._api(method, path, query, token, body)
        elif ".git/info/lfs/objects/" in path and method == "POST":
            repo_part, _, action = path.lstrip("/").partition(".git/info/lfs/objects/")
            repo_type, repo_id = _split_repo_key(unquote(repo_part))
            if action == "batch":
                self._lfs_batch(repo_type, repo_id, _json_body(body), token)
            elif action == "verify":
                self._lfs_verify(repo_type, repo_id, _json_body(body), token)
            else:
                raise _Denied(404, None, "Not Found")
        elif "/resolve/" in path and method in ("GET", "HEAD"):
            self._resolve(path, token)
        else:
            raise _Denied(404, None, "Not Found")

    def _api(self, method: str, path: str, query: dict[str, list[str]], token: _Token | None, body: bytes) -> None:
        """``/api/{models|datasets}/{repo_id}[/{action}/{revision}[/{path}]]``."""
        plural, _, rest = path.removeprefix("/api/").partition("/")
        repo_type = _API_TYPES.get(plural)
        parts = rest.split("/")
        # the repo id is one or two parts (``gpt2``, ``org/name``), followed by an action or nothing
        cut = next((i for i in (1, 2) if len(parts) == i or (len(parts) > i and parts[i] in _API_ACTIONS)), None)
        if repo_type is None or cut is None:
            raise _Denied(404, None, "Not Found")
        repo_id = unquote("/".join(parts[:cut]))
        action, tail = (parts[cut], parts[cut + 1 :]) if len(parts) > cut else ("", [])
        revision = unquote(tail[0]) if tail and tail[0] else "main"
        if method == "GET" and action in ("", "revision"):
            self._repo_info(repo_type, repo_id, unquote("/".join(tail)) or "main", query, token)
        elif method == "GET" and action == "tree" and tail:
            self._tree(repo_type, repo_id, revision, unquote("/".join(tail[1:])), path, query, token)
        elif method == "POST" and action == "preupload" and len(tail) == 1:
            self._preupload(repo_type, repo_id, revision, _json_body(body), query, token)
        elif method == "POST" and action == "commit" and len(tail) == 1:
            self._commit(repo_type, repo_id, revision, body, query, token)
        else:
            raise _Denied(404, None, "Not Found")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            pieces = []
            while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
                pieces.append(self.rfile.read(size))
                self.rfile.readline(1024)  # the CRLF after each chunk
            while self.rfile.readline(1024).strip():  # trailers, up to the empty line
                pass
            return b"".join(pieces)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(
        self, status: int, payload, headers: Mapping[str, str] | None = None, content_type: str = "application/json"
    ) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message} | ({"X-Error-Code": code} if code else {})
        self._send_json(status, {"error": message}, headers)

    # ------------------------------------------------------------------ the Hub origin: reading

    def _repo_info(
        self, repo_type: str, repo_id: str, revision: str, query: dict[str, list[str]], token: _Token | None
    ) -> None:
        repo = self.hub._repo(repo_id, token, repo_type)
        sha, files = repo.files_at(revision)
        with_sizes = query.get("blobs", [""])[-1] == "true"
        siblings = []
        for name in sorted(files):
            entry: dict = {"rfilename": name}
            if with_sizes:
                blob = files[name]
                entry["size"] = blob.size
                if blob.lfs:
                    entry["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
            siblings.append(entry)
        info = {"_id": sha[:24], "id": repo.repo_id, "sha": sha, "private": repo.private, "gated": repo.gated}
        self._send_json(200, info | {"siblings": siblings})

    def _tree(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        folder: str,
        path: str,
        query: dict[str, list[str]],
        token: _Token | None,
    ) -> None:
        """The files and folders under ``folder`` (all levels with ``recursive=true``), a page at a time: the next
        page's URL is in the ``Link`` header, like the Hub's cursor pagination."""
        repo = self.hub._repo(repo_id, token, repo_type)
        _, files = repo.files_at(revision)
        folder = folder.strip("/")
        prefix = f"{folder}/" if folder else ""
        recursive = query.get("recursive", ["false"])[-1].lower() == "true"
        entries: dict[str, dict] = {}
        for name in sorted(files):
            if not name.startswith(prefix):
                continue
            *dirs, _ = name[len(prefix) :].split("/")
            for depth in range(1, len(dirs) + 1 if recursive else min(len(dirs), 1) + 1):
                d = prefix + "/".join(dirs[:depth])
                entries.setdefault(d, {"type": "directory", "oid": _git_blob_sha(d.encode()), "size": 0, "path": d})
            if recursive or not dirs:
                blob = files[name]
                entry = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": name}
                if blob.lfs:
                    entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
                entries[name] = entry
        if folder and not entries:
            raise _Denied(404, "EntryNotFound", f"{folder} does not exist on {revision}")
        listing = [entries[k] for k in sorted(entries)]
        start = int(query.get("cursor", ["0"])[-1] or 0)
        end = start + self.hub.tree_page_size
        headers = {}
        if end < len(listing):
            next_query = urlencode({k: v[-1] for k, v in query.items()} | {"cursor": str(end)})
            headers["Link"] = f'<{self.hub.url}{path}?{next_query}>; rel="next"'
        self._send_json(200, listing[start:end], headers)

    def _resolve(self, path: str, token: _Token | None) -> None:
        """``/{prefix}{repo_id}/resolve/{revision}/{filename}``: GET gives the bytes (or a 302 to the storage
        origin), HEAD what ``hf_hub_download`` reads: X-Repo-Commit, the ETag (git blob id, or the sha256 as
        X-Linked-Etag for an LFS file, with X-Linked-Size)."""
        repo_part, _, rest = path.lstrip("/").partition("/resolve/")
        repo_type, repo_id = _split_repo_key(unquote(repo_part))
        revision, _, filename = rest.partition("/")
        filename = unquote(filename)
        repo = self.hub._repo(repo_id, token, repo_type)
        what = f"{repo_type} {repo_id}"
        if repo.gated and token is None:
            raise _Denied(401, "GatedRepo", f"Access to {what} is restricted. Please log in.")
        if repo.gated and repo_id not in token.gated_access:
            raise _Denied(403, "GatedRepo", f"Access to {what} is restricted and you are not in the list.")
        sha, files = repo.files_at(unquote(revision))
        blob = files.get(filename)
        if blob is None:
            raise _Denied(404, "EntryNotFound", f'{filename} does not exist on "{revision}"')
        metadata = {"X-Repo-Commit": sha}
        if self.command == "HEAD":
            metadata["ETag"] = f'"{blob.git_oid}"'
            if blob.lfs:
                metadata |= {"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size)}
        self._extra_headers = {**self._extra_headers, **metadata}
        if blob.lfs and self.hub.redirect_lfs:
            location = self.hub._storage_url(repo.key, filename, blob)
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._serve(repo.key, blob)

    # ------------------------------------------------------------------ the Hub origin: writing

    def _create_repo(self, payload: dict, token: _Token | None) -> None:
        """``POST /api/repos/create`` {name, organization, type, visibility|private}: 409 when it exists."""
        repo_type = payload.get("type") or "model"
        name, namespace = payload.get("name"), payload.get("organization")
        if repo_type not in _TYPE_PREFIX or not isinstance(name, str) or not isinstance(namespace, str):
            raise _Denied(400, None, "Invalid repo type, name or organization (the fake Hub wants org/name)")
        if token is None:
            raise _Denied(401, None, "Invalid username or password.")
        if namespace not in token.write_access:
            raise _Denied(
                403, None, f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"'
            )
        repo_id = f"{namespace}/{name}"
        hub = self.hub
        with hub._lock:
            existing = hub._repos.get((repo_type, repo_id))
            if existing is None:
                repo = hub._repos[(repo_type, repo_id)] = _Repo(repo_id, repo_type)
                repo.private = payload.get("visibility") == "private" or payload.get("private") is True
                gitattributes = _DEFAULT_GITATTRIBUTES.encode()
                repo.new_commit({".gitattributes": _Blob(len(gitattributes), gitattributes)}, "initial commit")
        url = f"{hub.url}/{_TYPE_PREFIX[repo_type]}{repo_id}"
        if existing is not None:
            message = f"You already created this {repo_type} repo"
            self._send_json(409, {"error": message, "url": url}, {"X-Error-Message": message})
            return
        self._send_json(200, {"url": url, "name": repo_id, "id": repo.main[:24]})

    def _preupload(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        payload: dict,
        query: dict[str, list[str]],
        token: _Token | None,
    ) -> None:
        """Decides each file's upload mode: LFS when the repo's .gitattributes sends its name to LFS, when its
        first 512 bytes (the sample) are binary, or from 10 MiB up; "oid" for a file already at the revision
        (sha256 of an LFS file, git blob id of a regular one), so that the client leaves unchanged files out."""
        if query.get("create_pr"):
            raise _Denied(400, None, "The fake Hub does not open pull requests")
        repo = self.hub._writable(repo_id, token, repo_type)
        sha, files = repo.files_at(revision)
        lfs_patterns = _lfs_patterns(files.get(".gitattributes"))
        answer = []
        for item in payload.get("files", []):
            name, size, sample = item["path"], int(item["size"]), base64.b64decode(item.get("sample", ""))
            lfs = size >= _REGULAR_MAX or b"\0" in sample or _matches(name, lfs_patterns)
            entry = {"path": name, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if (present := files.get(name)) is not None:
                entry["oid"] = present.sha256 if present.lfs else present.git_oid
            answer.append(entry)
        self._send_json(200, {"files": answer, "commitOid": sha})

    def _commit(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        body: bytes,
        query: dict[str, list[str]],
        token: _Token | None,
    ) -> None:
        """The NDJSON commit: a header line, then one line per file (``file``: base64 content; ``lfsFile``: an
        object uploaded through the LFS API) or deletion. All or nothing; 412 when ``parentCommit`` is not the
        head any more."""
        if query.get("create_pr"):
            raise _Denied(400, None, "The fake Hub does not open pull requests")
        repo = self.hub._writable(repo_id, token, repo_type)
        if revision != "main":
            raise _Denied(404, "RevisionNotFound", f"Invalid rev id: {revision} (the fake Hub commits to main)")
        try:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        except ValueError:
            raise _Denied(400, None, "Invalid NDJSON body") from None
        if not lines or lines[0].get("key") != "header":
            raise _Denied(400, None, "The first line of the commit must be its header")
        header = lines[0]["value"]
        with self.hub._lock:
            parent = header.get("parentCommit")
            if parent is not None and parent != repo.main:
                raise _Denied(412, None, "A commit has happened since. Please refresh and try again.")
            files = dict(repo.commits[repo.main])
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                name = value.get("path", "")
                if key == "file":
                    content = base64.b64decode(value["content"])
                    if b"\0" in content[:8000] or len(content) >= _REGULAR_MAX:
                        raise _Denied(
                            400, None, f"Your push was rejected because {name} is binary or too large: use LFS"
                        )
                    files[name] = _Blob(len(content), content)
                elif key == "lfsFile":
                    stored = repo.lfs_objects.get(value.get("oid", ""))
                    if stored is None or value.get("size", stored.size) != stored.size:
                        raise _Denied(
                            400,
                            None,
                            f"Your push was rejected because an LFS pointer pointed to a file that does not exist. Offending file: {name}",
                        )
                    files[name] = stored
                elif key == "deletedFile":
                    if files.pop(name, None) is None:
                        raise _Denied(404, "EntryNotFound", f"A file with this name doesn't exist: {name}")
                elif key == "deletedFolder":
                    inside = [f for f in files if f.startswith(name.rstrip("/") + "/")]
                    if not inside:
                        raise _Denied(404, "EntryNotFound", f"A folder with this name doesn't exist: {name}")
                    for f in inside:
                        del files[f]
                else:
                    raise _Denied(400, None, f"Unknown commit operation: {key}")
            sha = repo.new_commit(files, str(header.get("summary", "")))
        url = f"{self.hub.url}/{repo.key}/commit/{sha}"
        self._send_json(200, {"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": ""})

    def _lfs_batch(self, repo_type: str, repo_id: str, payload: dict, token: _Token | None) -> None:
        """The git LFS batch API (basic transfer), uploads only: each object not stored yet gets a signed PUT URL
        on the storage origin and a verify action; an object already stored gets no actions."""
        if payload.get("operation") != "upload":
            raise _Denied(400, None, "The fake Hub's LFS batch API serves uploads only")
        repo = self.hub._writable(repo_id, token, repo_type)
        objects = []
        for item in payload.get("objects", []):
            oid, size = str(item.get("oid", "")), int(item.get("size", 0))
            entry: dict = {"oid": oid, "size": size}
            if not _SHA256.fullmatch(oid):
                entry["error"] = {"code": 422, "message": "Invalid oid"}
            elif oid not in repo.lfs_objects:
                verify = f"{self.hub.url}/{repo.key}.git/info/lfs/objects/verify"
                entry["authenticated"] = True
                entry["actions"] = {
                    "upload": {"href": self.hub._upload_url(repo, oid, size)},
                    "verify": {"href": verify},
                }
            objects.append(entry)
        answer = {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}
        self._send_json(200, answer, content_type="application/vnd.git-lfs+json")

    def _lfs_verify(self, repo_type: str, repo_id: str, payload: dict, token: _Token | None) -> None:
        repo = self.hub._writable(repo_id, token, repo_type)
        stored = repo.lfs_objects.get(str(payload.get("oid")))
        if stored is None or stored.size != payload.get("size"):
            raise _Denied(404, None, "Object not found")
        self._send_json(200, {"success": True})

    # ------------------------------------------------------------------ the storage origin

    def _storage(self, path: str, query: Mapping[str, list[str]]) -> None:
        refusal = self.hub._storage_refusal(path, query)
        if refusal is not None:
            self._send_s3_error(*refusal)
            return
        with self.hub._lock:
            blob = self.hub._blobs_by_sha256[path.removeprefix("/lfs/")]
        self._serve(query["repo"][-1], blob)  # the repo is part of the signed URL

    def _storage_upload(self, path: str, query: Mapping[str, list[str]], body: bytes) -> None:
        """A PUT of one LFS object to the URL the batch API signed; stored when its bytes hash to its oid."""
        if not path.startswith("/lfs-upload/"):
            self._send_s3_error(405, "Method Not Allowed")
            return
        refusal = self.hub._storage_refusal(path, query, name_key="size")
        if refusal is not None:
            self._send_s3_error(*refusal)
            return
        oid = path.removeprefix("/lfs-upload/")
        if len(body) != int(query["size"][-1]) or hashlib.sha256(body).hexdigest() != oid:
            self._send_s3_error(400, "The content does not match the object's size and sha256 (BadDigest)")
            return
        repo_type, repo_id = _split_repo_key(query["repo"][-1])
        with self.hub._lock:
            repo = self.hub._repos[(repo_type, repo_id)]
            repo.lfs_objects.setdefault(oid, _Blob(len(body), body, lfs=True, known_sha256=oid))
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_s3_error(self, status: int, message: str) -> None:
        """In the style of S3: an XML body, no X-Error-* headers."""
        body = f"<?xml version='1.0' encoding='UTF-8'?>\n<Error><Message>{message}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ------------------------------------------------------------------ content and Range

    def _serve(self, repo_id: str, blob: _Blob) -> None:
        hub = self.hub
        status, start, end = 200, 0, blob.size  # [start, end)
        wanted = _parse_range(self.headers.get("Range"), blob.size)
        if wanted == "unsatisfiable" and not hub.ignore_range:
            self._extra_headers = {**self._extra_headers, "Content-Range": f"bytes */{blob.size}"}
            self._send_error(416, None, "Range Not Satisfiable")
            return
        if isinstance(wanted, tuple) and not hub.ignore_range:
            status, (start, end) = 206, wanted
        cut = False
        truncate = hub._take_fault(self.path, "truncate")
        if truncate is not None:
            if truncate.mode == "short" and end - start >= 2:
                end = start + (end - start) // 2  # consistent headers, fewer bytes than asked
            else:
                cut = True
        trickle = hub._take_fault(self.path, "trickle")
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{blob.size}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        if trickle is not None and trickle.stall:
            hub._stopping.wait()
            self.close_connection = True
            return
        to_send = (end - start) // 2 if cut else end - start
        sent = self._send_bytes(repo_id, blob, start, to_send, trickle.bytes_per_second if trickle else None)
        if sent < end - start:
            self.close_connection = True

    def _send_bytes(self, repo_id: str, blob: _Blob, start: int, length: int, bytes_per_second: float | None) -> int:
        """Send ``length`` bytes of the blob from ``start`` (slowly with ``bytes_per_second``); return how many
        went out. Bytes are counted before they are sent, so a client that has them finds them counted, and what
        could not be sent is taken back."""
        piece, pause = _CHUNK, 0.0
        if bytes_per_second is not None:
            piece = max(1, int(bytes_per_second * _TRICKLE_PAUSE))
            pause = piece / bytes_per_second
        sent = 0
        for data in blob.pieces(start, length, piece):
            if pause and self.hub._stopping.wait(pause):
                break
            self.hub._count(repo_id, len(data))
            try:
                self.wfile.write(data)
            except OSError:  # the client went away
                self.hub._count(repo_id, -len(data))
                break
            sent += len(data)
        return sent


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client dropping its keep-alive connection is normal; anything else is printed as usual."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
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


def _json_body(body: bytes) -> dict:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise _Denied(400, None, "Invalid JSON body") from None
    if not isinstance(payload, dict):
        raise _Denied(400, None, "Invalid JSON body")
    return payload


def _split_repo_key(key: str) -> tuple[str, str]:
    """``datasets/org/name`` -> ("dataset", "org/name"); ``org/name`` -> ("model", "org/name")."""
    first, _, rest = key.partition("/")
    if first == "datasets" and rest.count("/") == 1:
        return "dataset", rest
    return "model", key


def _namespace(repo_id: str) -> str:
    return repo_id.split("/")[0] if "/" in repo_id else ""


def _lfs_patterns(gitattributes: _Blob | None) -> list[str]:
    """The patterns a .gitattributes file sends to LFS (``filter=lfs``)."""
    if gitattributes is None:
        return []
    text = b"".join(gitattributes.pieces(0, gitattributes.size, _CHUNK)).decode(errors="replace")
    return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line.split()[1:]]


def _matches(path: str, patterns: Iterable[str]) -> bool:
    """Whether a repo path matches a .gitattributes pattern (one without a slash matches the file's name)."""
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(path if "/" in p else name, p.removeprefix("/")) for p in patterns)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``bytes=a-b`` (what the product sends) as [start, end), clamped to the file; "unsatisfiable" when ``a`` is
    past the end; None for no Range or one of another form (the whole file is answered, as the RFC allows)."""
    unit, _, spec = (header or "").partition("=")
    first, _, last = spec.partition("-")
    if unit.strip() != "bytes" or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        return None
    if int(first) >= size:
        return "unsatisfiable"
    return int(first), min(int(last), size - 1) + 1

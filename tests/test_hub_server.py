"""Tests of the local fake Hub (tests/hub_server.py) against the REAL huggingface_hub client.

Nothing here reaches the internet: every call passes ``endpoint=hub.url`` explicitly and an autouse
fixture makes any non-loopback connection attempt fail loudly.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
import time
import types
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx2
import pytest
from huggingface_hub import HfApi, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import get_hf_file_metadata
from huggingface_hub.hf_api import RepoFile, RepoFolder
from huggingface_hub.utils import (
    build_hf_headers,
    get_session,
    hf_raise_for_status,
    http_backoff,
    parse_ratelimit_headers,
)

try:
    from tests.hub_server import FakeHub
except ImportError:  # tests/ not importable as a package: import the module next to this file
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from hub_server import FakeHub

REPO = "acme/tiny-llm"
CONFIG = b'{"hidden_size": 8, "num_layers": 2}'
WEIGHTS = bytes(range(256)) * 40  # 10240 bytes, LFS because of the .safetensors suffix
README = b"# tiny\n"
SHARD = b"\x01\x02\x03" * 1000


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch):
    """Any connection to something else than the loopback interface is a test bug."""
    real = socket.create_connection

    def guarded(address, *args, **kwargs):
        host = address[0]
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"test tried to reach the network: {address!r}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.add_repo(
            REPO,
            {"config.json": CONFIG, "model.safetensors": WEIGHTS, "README.md": README, "shards/part-0.bin": SHARD},
        )
        yield h


def _url(hub: FakeHub, filename: str, repo_id: str = REPO, revision: str | None = None) -> str:
    return hf_hub_url(repo_id, filename, revision=revision, endpoint=hub.url)


def _get(hub: FakeHub, filename: str, *, rng: str | None = None, token: str | bool = False, **kw):
    headers = build_hf_headers(token=token)
    if rng is not None:
        headers["Range"] = rng
    return get_session().get(_url(hub, filename, **kw), headers=headers)


def _git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# ---------------------------------------------------------------------------------------------- model_info


def test_model_info_basic_and_files_metadata(hub):
    api = HfApi(endpoint=hub.url, token=False)
    sha = api.model_info(REPO).sha
    assert sha is not None and len(sha) == 40 and int(sha, 16) >= 0

    info = api.model_info(REPO)
    assert info.id == REPO
    assert info.private is False and info.gated is False and info.disabled is False
    assert sorted(s.rfilename for s in info.siblings) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "shards/part-0.bin",
    ]
    assert all(s.size is None for s in info.siblings)  # sizes only with files_metadata=True

    info = api.model_info(REPO, files_metadata=True)
    sib = {s.rfilename: s for s in info.siblings}
    assert sib["config.json"].size == len(CONFIG)
    assert sib["config.json"].blob_id == _git_blob(CONFIG)
    assert sib["config.json"].lfs is None
    w = sib["model.safetensors"]
    assert w.size == len(WEIGHTS)
    assert w.lfs is not None
    assert w.lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert w.lfs.size == len(WEIGHTS)
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{w.lfs.sha256}\nsize {len(WEIGHTS)}\n".encode()
    assert w.lfs.pointer_size == len(pointer)
    assert w.blob_id == _git_blob(pointer)  # like git: the blob of an LFS file is its pointer
    assert sib["shards/part-0.bin"].lfs is not None  # *.bin is LFS too
    # what the client actually sends for files_metadata=True
    assert ("GET", f"/api/models/{REPO}?blobs=true", None) in hub.requests


def test_model_info_at_revision(hub):
    sha = hub.add_repo("acme/rev", {"a.txt": b"a"}, revision_names=("main", "v1.0", "refs/pr/1"))
    api = HfApi(endpoint=hub.url, token=False)
    for rev in ("main", "v1.0", "refs/pr/1", sha, sha[:7]):
        assert api.model_info("acme/rev", revision=rev).sha == sha
    # the revision is url-quoted with safe="": a slash travels as %2F
    assert any(p == "/api/models/acme/rev/revision/refs%2Fpr%2F1" for _, p, _ in hub.requests)
    with pytest.raises(RevisionNotFoundError):
        api.model_info("acme/rev", revision="nope")


def test_repo_without_namespace(hub):
    sha = hub.add_repo("gpt2ish", {"config.json": CONFIG})
    api = HfApi(endpoint=hub.url, token=False)
    assert api.model_info("gpt2ish").sha == sha
    assert api.model_info("gpt2ish", revision="main").sha == sha
    assert [f.path for f in api.list_repo_tree("gpt2ish")] == ["config.json"]
    r = _get(hub, "config.json", repo_id="gpt2ish")
    assert r.status_code == 200 and r.content == CONFIG


def test_expand_filters_fields(hub):
    info = HfApi(endpoint=hub.url, token=False).model_info(REPO, expand=["sha", "gated"])
    assert info.sha is not None and info.gated is False
    assert info.siblings is None and info.private is None


# ---------------------------------------------------------------------------------------------- tree


def test_list_repo_tree(hub):
    api = HfApi(endpoint=hub.url, token=False)
    top = list(api.list_repo_tree(REPO))
    assert {e.path for e in top} == {"README.md", "config.json", "model.safetensors", "shards"}
    folder = next(e for e in top if e.path == "shards")
    assert isinstance(folder, RepoFolder)

    entries = list(api.list_repo_tree(REPO, recursive=True))
    files = {e.path: e for e in entries if isinstance(e, RepoFile)}
    assert set(files) == {"README.md", "config.json", "model.safetensors", "shards/part-0.bin"}
    assert files["model.safetensors"].size == len(WEIGHTS)
    assert files["model.safetensors"].lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert files["config.json"].lfs is None and files["config.json"].blob_id == _git_blob(CONFIG)

    sub = list(api.list_repo_tree(REPO, "shards"))
    assert [e.path for e in sub] == ["shards/part-0.bin"]
    assert ("GET", f"/api/models/{REPO}/tree/main?recursive=true&expand=false", None) in hub.requests

    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree(REPO, "no/such/dir"))
    with pytest.raises(RevisionNotFoundError):
        list(api.list_repo_tree(REPO, revision="nope"))
    with pytest.raises(RepositoryNotFoundError):
        list(api.list_repo_tree("acme/missing"))

    expanded = list(api.list_repo_tree(REPO, expand=True))
    assert all(e.last_commit is not None and e.last_commit.oid == api.model_info(REPO).sha for e in expanded)


# ---------------------------------------------------------------------------------------------- resolve + Range


def test_range_get_returns_exact_bytes(hub):
    r = _get(hub, "model.safetensors", rng="bytes=100-199")
    assert r.status_code == 206
    assert r.content == WEIGHTS[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(WEIGHTS)}"
    assert r.headers["Content-Length"] == "100"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert r.headers["X-Repo-Commit"] == HfApi(endpoint=hub.url, token=False).model_info(REPO).sha

    r = _get(hub, "model.safetensors", rng="bytes=10200-")
    assert r.status_code == 206 and r.content == WEIGHTS[10200:]
    r = _get(hub, "model.safetensors", rng="bytes=-8")
    assert r.status_code == 206 and r.content == WEIGHTS[-8:]
    assert r.headers["Content-Range"] == f"bytes {len(WEIGHTS) - 8}-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"
    r = _get(hub, "model.safetensors", rng="bytes=10000-999999")  # end clamped
    assert r.status_code == 206 and r.content == WEIGHTS[10000:]
    r = _get(hub, "model.safetensors", rng="bytes=0-0")
    assert r.status_code == 206 and r.content == WEIGHTS[:1]
    r = _get(hub, "model.safetensors", rng="bytes=0-1,5-6")  # multi-range: whole file, like the Hub
    assert r.status_code == 200 and r.content == WEIGHTS
    r = _get(hub, "config.json")
    assert r.status_code == 200 and r.content == CONFIG
    assert r.headers["ETag"] == f'"{_git_blob(CONFIG)}"'  # non-LFS: git blob id


def test_range_beyond_end_is_416(hub):
    r = _get(hub, "model.safetensors", rng=f"bytes={len(WEIGHTS)}-{len(WEIGHTS) + 10}")
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{len(WEIGHTS)}"
    with pytest.raises(HfHubHTTPError) as exc:
        hf_raise_for_status(r)
    assert exc.value.response.status_code == 416
    assert _get(hub, "model.safetensors", rng="bytes=-0").status_code == 416


def test_get_hf_file_metadata(hub):
    meta = get_hf_file_metadata(_url(hub, "model.safetensors"), token=False)
    assert meta.commit_hash == HfApi(endpoint=hub.url, token=False).model_info(REPO).sha
    assert meta.etag == hashlib.sha256(WEIGHTS).hexdigest()
    assert meta.size == len(WEIGHTS)
    assert meta.location == _url(hub, "model.safetensors")
    assert hub.requests[0][0] == "HEAD"
    assert hub.bytes_served[REPO] == 0  # HEAD sends no body


def test_quoted_filename_and_subfolder(hub):
    hub.add_repo("acme/odd", {"dir with space/weird#name?.txt": b"odd"})
    r = _get(hub, "dir with space/weird#name?.txt", repo_id="acme/odd")
    assert r.status_code == 200 and r.content == b"odd"


def test_file_served_from_disk(hub, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    p = tmp_path / "big.gguf"
    p.write_bytes(data)
    hub.add_repo("acme/disk", {"big.gguf": p, "notes.txt": b"n"})
    r = _get(hub, "big.gguf", repo_id="acme/disk", rng="bytes=1048570-2097160")
    assert r.status_code == 206 and r.content == data[1048570:2097161]
    r = _get(hub, "big.gguf", repo_id="acme/disk")
    assert r.status_code == 200 and r.content == data
    info = HfApi(endpoint=hub.url, token=False).model_info("acme/disk", files_metadata=True)
    big = next(s for s in info.siblings if s.rfilename == "big.gguf")
    assert big.size == len(data) and big.lfs.sha256 == hashlib.sha256(data).hexdigest()
    assert hub.bytes_served["acme/disk"] == (2097161 - 1048570) + len(data)


def test_precomputed_sha256_is_used(hub, tmp_path):
    p = tmp_path / "w.safetensors"
    p.write_bytes(b"abc")
    hub.add_repo("acme/pre", {"w.safetensors": p}, lfs_sha256={"w.safetensors": "f" * 64})
    meta = get_hf_file_metadata(_url(hub, "w.safetensors", repo_id="acme/pre"), token=False)
    assert meta.etag == "f" * 64


# ---------------------------------------------------------------------------------------------- errors


def test_error_repo_not_found(hub):
    api = HfApi(endpoint=hub.url, token=False)
    with pytest.raises(RepositoryNotFoundError) as exc:
        api.model_info("acme/missing")
    assert type(exc.value) is RepositoryNotFoundError
    assert exc.value.response.status_code == 404
    assert exc.value.response.headers["X-Error-Code"] == "RepoNotFound"
    r = _get(hub, "config.json", repo_id="acme/missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_raise_for_status(r)


def test_error_revision_not_found(hub):
    r = _get(hub, "config.json", revision="does-not-exist")
    assert r.status_code == 404
    with pytest.raises(RevisionNotFoundError):
        hf_raise_for_status(r)
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info(REPO, revision="0" * 40)


def test_error_entry_not_found(hub):
    r = _get(hub, "nope.bin")
    assert r.status_code == 404
    assert r.headers["X-Repo-Commit"] == HfApi(endpoint=hub.url, token=False).model_info(REPO).sha
    with pytest.raises(RemoteEntryNotFoundError) as exc:
        hf_raise_for_status(r)
    assert isinstance(exc.value, EntryNotFoundError)
    with pytest.raises(RemoteEntryNotFoundError):
        get_hf_file_metadata(_url(hub, "nope.bin"), token=False)


def test_gated_repo(hub):
    hub.add_repo("acme/gated", {"config.json": CONFIG, "model.safetensors": WEIGHTS}, gated=True)
    hub.add_token("hf_granted", gated_access={"acme/gated"})
    hub.add_token("hf_other")

    # model_info works without a token, like on the Hub, and says it is gated
    info = HfApi(endpoint=hub.url, token=False).model_info("acme/gated", files_metadata=True)
    assert info.gated == "auto"
    assert {s.rfilename for s in info.siblings} == {"config.json", "model.safetensors"}

    r = _get(hub, "config.json", repo_id="acme/gated")
    assert r.status_code == 401 and r.headers["X-Error-Code"] == "GatedRepo"
    with pytest.raises(GatedRepoError):
        hf_raise_for_status(r)

    r = _get(hub, "config.json", repo_id="acme/gated", token="hf_other")
    assert r.status_code == 403 and r.headers["X-Error-Code"] == "GatedRepo"
    with pytest.raises(GatedRepoError):
        hf_raise_for_status(r)

    r = _get(hub, "model.safetensors", repo_id="acme/gated", token="hf_granted", rng="bytes=0-9")
    assert r.status_code == 206 and r.content == WEIGHTS[:10]
    # the bearer token is really sent by build_hf_headers
    with pytest.raises(GatedRepoError):
        get_hf_file_metadata(_url(hub, "config.json", repo_id="acme/gated"), token=False)


def test_private_repo(hub):
    sha = hub.add_repo("acme/secret", {"config.json": CONFIG}, private=True)
    hub.add_token("hf_owner")
    hub.add_token("hf_stranger", private_access=set())

    with pytest.raises(RepositoryNotFoundError) as exc:
        HfApi(endpoint=hub.url, token=False).model_info("acme/secret")
    assert type(exc.value) is RepositoryNotFoundError and exc.value.response.status_code == 401
    r = _get(hub, "config.json", repo_id="acme/secret")
    assert r.status_code == 401 and r.headers["X-Error-Code"] == "RepoNotFound"
    with pytest.raises(RepositoryNotFoundError):
        hf_raise_for_status(r)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token="hf_stranger").model_info("acme/secret")

    info = HfApi(endpoint=hub.url, token="hf_owner").model_info("acme/secret")
    assert info.sha == sha and info.private is True
    assert _get(hub, "config.json", repo_id="acme/secret", token="hf_owner").content == CONFIG


def test_invalid_token_rejected_like_the_hub(hub):
    r = _get(hub, "config.json", token="hf_not_a_real_token")
    assert r.status_code == 401
    with pytest.raises(HfHubHTTPError) as exc:
        hf_raise_for_status(r)
    assert not isinstance(exc.value, RepositoryNotFoundError)
    hub.reject_invalid_tokens = False
    assert _get(hub, "config.json", token="hf_not_a_real_token").status_code == 200


# ---------------------------------------------------------------------------------------------- counters


def test_bytes_served_and_requests(hub):
    hub.reset_counters()
    _get(hub, "model.safetensors", rng="bytes=0-99")
    _get(hub, "config.json")
    HfApi(endpoint=hub.url, token=False).model_info(REPO)
    get_hf_file_metadata(_url(hub, "model.safetensors"), token=False)
    assert hub.bytes_served[REPO] == 100 + len(CONFIG)  # API json and HEAD are not counted
    assert hub.requests == [
        ("GET", f"/{REPO}/resolve/main/model.safetensors", "bytes=0-99"),
        ("GET", f"/{REPO}/resolve/main/config.json", None),
        ("GET", f"/api/models/{REPO}", None),
        ("HEAD", f"/{REPO}/resolve/main/model.safetensors", None),
    ]
    hub.reset_counters()
    assert hub.requests == [] and hub.bytes_served[REPO] == 0


def test_concurrent_range_requests(hub):
    errors = []

    def worker(i):
        try:
            for j in range(5):
                a = (i * 97 + j * 13) % 10000
                r = _get(hub, "model.safetensors", rng=f"bytes={a}-{a + 99}")
                assert r.status_code == 206 and r.content == WEIGHTS[a : a + 100]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    hub.reset_counters()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert hub.bytes_served[REPO] == 8 * 5 * 100
    assert len(hub.requests) == 40


# ---------------------------------------------------------------------------------------------- faults


def test_fail_next_then_success_with_client_backoff(hub):
    hub.fail_next(2, 503)
    url = _url(hub, "model.safetensors")
    r = http_backoff("GET", url, headers={**build_hf_headers(token=False), "Range": "bytes=0-9"}, base_wait_time=0.01)
    assert r.status_code == 206 and r.content == WEIGHTS[:10]
    assert [p for _, p, _ in hub.requests].count(f"/{REPO}/resolve/main/model.safetensors") == 3
    # API paths were not affected (path_contains="/resolve/")
    hub.fail_next(1, 500)
    assert HfApi(endpoint=hub.url, token=False).model_info(REPO).id == REPO
    assert _get(hub, "config.json").status_code == 500
    assert _get(hub, "config.json").status_code == 200


def test_fail_next_429_retry_after_and_path_filter(hub):
    hub.fail_next(1, 429, retry_after=2, path_contains="/api/")
    r = _get(hub, "config.json")
    assert r.status_code == 200
    r = get_session().get(f"{hub.url}/api/models/{REPO}")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    with pytest.raises(HfHubHTTPError):
        hf_raise_for_status(r)
    assert get_session().get(f"{hub.url}/api/models/{REPO}").status_code == 200


def test_drop_next(hub):
    hub.drop_next(1)
    with pytest.raises(httpx2.RemoteProtocolError):
        _get(hub, "config.json")
    assert _get(hub, "config.json").content == CONFIG
    hub.drop_next(2)
    r = http_backoff("GET", _url(hub, "config.json"), headers=build_hf_headers(token=False), base_wait_time=0.01)
    assert r.content == CONFIG


def test_ignore_range(hub):
    hub.ignore_range = True
    r = _get(hub, "model.safetensors", rng="bytes=0-9")
    assert r.status_code == 200 and r.content == WEIGHTS
    assert "Content-Range" not in r.headers
    assert hub.bytes_served[REPO] == len(WEIGHTS)


def test_truncate_next_short_answer(hub):
    hub.truncate_next(1)
    r = _get(hub, "model.safetensors", rng="bytes=0-99")
    assert r.status_code == 206
    assert r.content == WEIGHTS[:50]  # consistent headers, but fewer bytes than asked
    assert r.headers["Content-Range"] == f"bytes 0-49/{len(WEIGHTS)}"
    assert len(r.content) != 100
    r = _get(hub, "model.safetensors", rng="bytes=0-99")
    assert r.content == WEIGHTS[:100]


def test_truncate_next_cut_connection(hub):
    hub.reset_counters()
    hub.truncate_next(1, mode="cut")
    with pytest.raises(httpx2.RemoteProtocolError):
        _get(hub, "model.safetensors", rng="bytes=0-99")
    assert hub.bytes_served[REPO] == 50  # partial sends are counted
    assert _get(hub, "model.safetensors", rng="bytes=0-99").content == WEIGHTS[:100]


# ---------------------------------------------------------------------------------------------- commits


def test_second_commit_keeps_first_sha_resolvable(hub):
    api = HfApi(endpoint=hub.url, token=False)
    first = api.model_info(REPO).sha
    new_weights = b"\xff" * 64
    second = hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": new_weights})
    assert second != first
    assert api.model_info(REPO).sha == second
    assert api.model_info(REPO, revision=first).sha == first
    assert len(api.model_info(REPO, revision=first).siblings) == 4
    assert _get(hub, "model.safetensors", revision=first, rng="bytes=0-3").content == WEIGHTS[:4]
    assert _get(hub, "model.safetensors", rng="bytes=0-3").content == new_weights[:4]
    assert _get(hub, "model.safetensors", revision=second).headers["X-Repo-Commit"] == second
    # re-adding the same files still makes a new commit (its parent differs), like git
    assert hub.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": new_weights}) != second


def test_commit_sha_is_deterministic():
    files = {"a.txt": b"a", "b.safetensors": b"b" * 10}
    with FakeHub() as h1, FakeHub() as h2:
        assert h1.add_repo("x/y", files) == h2.add_repo("x/y", files)
        assert h1.add_repo("x/z", files) != h2.add_repo("x/y", {"a.txt": b"A", "b.safetensors": b"b" * 10})


# ---------------------------------------------------------------------------------------------- hf_hub_download


def test_hf_hub_download_small_file(hub, tmp_path):
    path = hf_hub_download(REPO, "config.json", cache_dir=tmp_path, endpoint=hub.url, token=False)
    methods = [(m, p) for m, p, _ in hub.requests]
    assert Path(path).read_bytes() == CONFIG
    sha = HfApi(endpoint=hub.url, token=False).model_info(REPO).sha
    assert f"snapshots/{sha}/config.json" in Path(path).as_posix()
    assert (tmp_path / "models--acme--tiny-llm" / "refs" / "main").read_text() == sha
    assert methods == [("HEAD", f"/{REPO}/resolve/main/config.json"), ("GET", f"/{REPO}/resolve/main/config.json")]

    path = hf_hub_download(REPO, "part-0.bin", subfolder="shards", cache_dir=tmp_path, endpoint=hub.url, token=False)
    assert Path(path).read_bytes() == SHARD
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "nope.json", cache_dir=tmp_path, endpoint=hub.url, token=False)


def test_hf_hub_download_gated_and_lfs_redirect(hub, tmp_path):
    hub.add_repo("acme/gated", {"model.safetensors": WEIGHTS}, gated="manual")
    hub.add_token("hf_granted", gated_access={"acme/gated"})
    with pytest.raises(GatedRepoError):
        hf_hub_download("acme/gated", "model.safetensors", cache_dir=tmp_path, endpoint=hub.url, token=False)

    hub.redirect_lfs = True  # like the real Hub: 302 to a CDN on another origin, with X-Linked-* headers
    path = hf_hub_download("acme/gated", "model.safetensors", cache_dir=tmp_path, endpoint=hub.url, token="hf_granted")
    assert Path(path).read_bytes() == WEIGHTS
    # the blob is stored under its sha256 (taken from X-Linked-Etag on the 302)
    assert (tmp_path / "models--acme--gated" / "blobs" / hashlib.sha256(WEIGHTS).hexdigest()).exists()
    assert hub.bytes_served["acme/gated"] == len(WEIGHTS)

    # a plain ranged GET follows the redirect, keeps the Range header
    r = _get(hub, "model.safetensors", repo_id="acme/gated", token="hf_granted", rng="bytes=5-9")
    assert r.status_code == 206 and r.content == WEIGHTS[5:10]
    assert [h.status_code for h in r.history] == [302]
    assert str(r.url).startswith(hub.cdn_url)
    # non-LFS files are still served directly
    assert _get(hub, "config.json").history == []


def test_unsupported_method_closes_the_connection_and_says_so(hub):
    hub.reset_counters()
    for _ in range(20):
        r = get_session().post(f"{hub.url}/api/models/{REPO}", content=b"x" * 100)
        assert r.status_code == 405 and r.headers["Connection"] == "close"
        assert _get(hub, "config.json").content == CONFIG  # not sent on the closed connection
    assert hub.connections_opened >= 20


def test_keep_alive_connection_reuse(hub):
    hub.reset_counters()
    for i in range(10):
        assert _get(hub, "model.safetensors", rng=f"bytes={i}-{i}").content == WEIGHTS[i : i + 1]
    HfApi(endpoint=hub.url, token=False).model_info(REPO)
    _get(hub, "nope.bin")  # error answers keep the connection usable too
    _get(hub, "model.safetensors", rng="bytes=999999-")  # 416 as well
    assert _get(hub, "config.json").content == CONFIG
    assert hub.connections_opened <= 1  # the client's pool may already hold the connection


# ---------------------------------------------------------------------------------------------- request counters


def _resolve(hub: FakeHub, filename: str = "model.safetensors", *, token: str | bool = False, method: str = "GET"):
    """One resolve request, redirects not followed."""
    return get_session().request(
        method, _url(hub, filename), headers=build_hf_headers(token=token), follow_redirects=False
    )


def _storage_url(hub: FakeHub, filename: str = "model.safetensors") -> str:
    r = _resolve(hub, filename)
    assert r.status_code == 302, r.status_code
    return r.headers["Location"]


def _fetch(url: str, rng: str | None = None, *, method: str = "GET", headers: dict | None = None):
    headers = dict(headers or {})
    if rng is not None:
        headers["Range"] = rng
    return get_session().request(method, url, headers=headers)


def test_request_counters(hub):
    hub.redirect_lfs = True
    hub.add_repo("acme/other", {"config.json": CONFIG})
    api = HfApi(endpoint=hub.url, token=False)
    api.model_info(REPO)
    list(api.list_repo_tree(REPO))
    _get(hub, "config.json")
    _get(hub, "config.json", repo_id="acme/other")
    get_hf_file_metadata(_url(hub, "config.json"), token=False)  # HEAD
    _get(hub, "model.safetensors", rng="bytes=0-9")  # 302 + CDN
    hub.fail_next(1, 503)
    _get(hub, "nope.bin")  # injected failures are seen too
    assert hub.api_calls == 2
    assert hub.resolver_calls == 5
    assert hub.resolver_calls_by_repo == {REPO: 4, "acme/other": 1}
    assert hub.cdn_requests == 1
    assert hub.rate_limited == {}
    hub.reset_counters()
    assert (hub.api_calls, hub.resolver_calls, hub.cdn_requests) == (0, 0, 0)
    assert hub.resolver_calls_by_repo == {} and hub.requests == []


def test_cdn_never_sees_the_token(hub, tmp_path):
    hub.redirect_lfs = True
    hub.add_token("hf_user")
    path = hf_hub_download(REPO, "model.safetensors", cache_dir=tmp_path, endpoint=hub.url, token="hf_user")
    assert Path(path).read_bytes() == WEIGHTS
    r = _get(hub, "model.safetensors", token="hf_user", rng="bytes=0-9")  # httpx2 drops it on the redirect
    assert r.content == WEIGHTS[:10] and [h.status_code for h in r.history] == [302]
    assert hub.cdn_requests == 2 and hub.cdn_authorization_seen == []

    _fetch(_storage_url(hub), "bytes=0-9", headers={"Authorization": "Bearer hf_user"})
    assert hub.cdn_authorization_seen == ["Bearer hf_user"]
    hub.reset_counters()
    assert hub.cdn_authorization_seen == []


# ---------------------------------------------------------------------------------------------- signed CDN URLs


class _Clock:
    """A fake ``FakeHub.clock``: time moves only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(hub):
    hub.clock = _Clock()
    return hub.clock


def _with_query(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v is not None}
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_lfs_redirect_to_a_signed_expiring_url(hub, clock):
    hub.redirect_lfs = True
    r = _resolve(hub)
    assert r.status_code == 302
    assert r.headers["X-Linked-Size"] == str(len(WEIGHTS))
    assert r.headers["X-Linked-Etag"] == f'"{hashlib.sha256(WEIGHTS).hexdigest()}"'
    assert r.headers["X-Repo-Commit"] == HfApi(endpoint=hub.url, token=False).model_info(REPO).sha
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == hub.cdn_url
    assert location.path == f"/lfs/{hashlib.sha256(WEIGHTS).hexdigest()}"
    query = {k: v[-1] for k, v in parse_qs(location.query).items()}
    assert query["repo"] == REPO and query["name"] == "model.safetensors"
    assert int(query["expires"]) == clock.now + 3600
    assert len(query["sig"]) == 64 and int(query["sig"], 16) >= 0

    r = _fetch(r.headers["Location"], "bytes=100-199")
    assert r.status_code == 206 and r.content == WEIGHTS[100:200]
    assert _fetch(_storage_url(hub), method="HEAD").headers["Content-Length"] == str(len(WEIGHTS))
    assert hub.bytes_served[REPO] == 100


def test_expired_url_is_refused(hub, clock):
    hub.redirect_lfs = True
    hub.url_ttl = 2
    url = _storage_url(hub)
    clock.advance(2)
    assert _fetch(url, "bytes=0-9").content == WEIGHTS[:10]  # valid up to and including `expires`
    clock.advance(1)
    r = _fetch(url, "bytes=0-9")
    assert r.status_code == 403 and "Request has expired" in r.text
    assert "X-Error-Message" not in r.headers  # the storage host is not the Hub
    with pytest.raises(HfHubHTTPError):
        hf_raise_for_status(r)
    head = _fetch(url, method="HEAD")
    assert head.status_code == 403 and head.content == b""

    hub.expired_status = 410
    assert _fetch(url, "bytes=0-9").status_code == 410
    assert _fetch(_storage_url(hub), "bytes=0-9").content == WEIGHTS[:10]  # a new redirect works again
    assert hub.bytes_served[REPO] == 20


def test_tampered_url_is_refused(hub, clock):
    hub.redirect_lfs = True
    hub.expired_status = 410  # applies to expired URLs only
    url = _storage_url(hub)
    query = parse_qs(urlsplit(url).query)
    sig, expires = query["sig"][-1], int(query["expires"][-1])
    bad_sig = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    for tampered in (
        _with_query(url, sig=bad_sig),
        _with_query(url, expires=str(expires + 3600)),
        _with_query(url, name="config.json"),
        _with_query(url, repo="acme/other"),
        _with_query(url, sig=None),
        _with_query(url, sig="\u00e9" * 64),
        url.split("?")[0],
    ):
        r = _fetch(tampered, "bytes=0-9")
        assert r.status_code == 403 and "Invalid signature" in r.text, tampered
    with FakeHub() as other:  # another hub signs with another key
        other.redirect_lfs = True
        other.add_repo(REPO, {"model.safetensors": WEIGHTS})
        foreign = _storage_url(other).replace(other.cdn_url, hub.cdn_url)
    assert _fetch(foreign, "bytes=0-9").status_code == 403
    assert hub.bytes_served[REPO] == 0


def test_expire_urls_mid_read(hub):
    hub.redirect_lfs = True
    url = _storage_url(hub)
    assert _fetch(url, "bytes=0-9").content == WEIGHTS[:10]
    hub.expire_urls()
    r = _fetch(url, "bytes=10-19")
    assert r.status_code == 403 and "Request has expired" in r.text
    hub.expired_status = 410
    assert _fetch(url, "bytes=10-19").status_code == 410
    fresh = _storage_url(hub)
    assert fresh != url
    assert _fetch(fresh, "bytes=10-19").content == WEIGHTS[10:20]


# ---------------------------------------------------------------------------------------------- rate limits


def _rate_limit(r) -> tuple[str, str]:
    return r.headers.get("RateLimit"), r.headers.get("RateLimit-Policy")


def test_no_rate_limit_headers_by_default(hub):
    r = _get(hub, "config.json")
    assert "RateLimit" not in r.headers and "RateLimit-Policy" not in r.headers
    for _ in range(5):
        assert get_session().get(f"{hub.url}/api/models/{REPO}").status_code == 200


def test_rate_limit_headers_on_every_counted_answer(hub, clock):
    hub.redirect_lfs = True
    hub.enable_rate_limits(api=5, resolvers=6)
    api = HfApi(endpoint=hub.url, token=False)
    r = get_session().get(f"{hub.url}/api/models/{REPO}")
    assert _rate_limit(r) == ('"api";r=4;t=300', '"fixed window";"api";q=5;w=300')
    info = parse_ratelimit_headers(r.headers)  # what huggingface_hub reads from them
    assert (info.resource_type, info.remaining, info.reset_in_seconds) == ("api", 4, 300)
    assert (info.limit, info.window_seconds) == (5, 300)
    with pytest.raises(RepositoryNotFoundError) as exc:
        api.model_info("acme/missing")
    assert _rate_limit(exc.value.response)[0] == '"api";r=3;t=300'

    clock.advance(10)
    answers = [
        _get(hub, "config.json"),  # 200
        _resolve(hub),  # 302 to the CDN
        _resolve(hub, method="HEAD"),
        _get(hub, "nope.bin"),  # 404
        _get(hub, "config.json", rng="bytes=999999-"),  # 416
    ]
    assert [a.status_code for a in answers] == [200, 302, 302, 404, 416]
    assert [_rate_limit(a)[0] for a in answers] == [f'"resolvers";r={5 - i};t=300' for i in range(5)]
    assert {_rate_limit(a)[1] for a in answers} == {'"fixed window";"resolvers";q=6;w=300'}

    cdn = _fetch(answers[1].headers["Location"], "bytes=0-9")
    assert cdn.status_code == 206 and _rate_limit(cdn) == (None, None)
    # the window started with the first request of the bucket
    clock.advance(5)
    assert _rate_limit(get_session().get(f"{hub.url}/api/models/{REPO}"))[0] == '"api";r=2;t=285'
    assert _rate_limit(_get(hub, "config.json"))[0] == '"resolvers";r=0;t=295'
    assert hub.rate_limited == {}


def test_exhausted_bucket_answers_429_until_the_window_resets(hub, clock):
    hub.enable_rate_limits(api=2, resolvers=3, window=60)
    for _ in range(3):
        assert _get(hub, "config.json").status_code == 200
    clock.advance(45)
    r = _get(hub, "config.json")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "15"
    assert _rate_limit(r) == ('"resolvers";r=0;t=15', '"fixed window";"resolvers";q=3;w=60')
    assert "'resolvers' rate limit" in r.headers["X-Error-Message"]
    with pytest.raises(HfHubHTTPError) as exc:
        hf_raise_for_status(r)
    assert "you have reached your 'resolvers' rate limit" in str(exc.value)
    with pytest.raises(HfHubHTTPError) as exc:
        get_hf_file_metadata(_url(hub, "config.json"), token=False)  # HEAD counts as well
    assert exc.value.response.status_code == 429

    # the api bucket is separate
    assert HfApi(endpoint=hub.url, token=False).model_info(REPO).id == REPO

    clock.advance(14.5)
    assert _get(hub, "config.json").headers["Retry-After"] == "1"  # rounded up, never 0
    clock.advance(0.5)
    r = _get(hub, "config.json")
    assert r.status_code == 200 and _rate_limit(r)[0] == '"resolvers";r=2;t=60'
    assert "Retry-After" not in r.headers
    assert hub.rate_limited == {"resolvers": 3}
    assert hub.resolver_calls == 7  # refused requests are seen (and use no quota)


def test_api_bucket_429_through_huggingface_hub(hub, clock, monkeypatch):
    hub.enable_rate_limits(api=1, window=60)
    api = HfApi(endpoint=hub.url, token=False)
    api.model_info(REPO)
    with pytest.raises(HfHubHTTPError) as exc:
        api.model_info(REPO)
    assert exc.value.response.status_code == 429 and exc.value.response.headers["Retry-After"] == "60"
    assert _get(hub, "config.json").status_code == 200  # resolvers are not limited by the api bucket

    # Paginated calls (list_repo_tree) retry a 429 after the reset announced in RateLimit, plus 1 s, in real
    # time: here the wait moves the fake clock instead.
    import huggingface_hub.utils._http as hf_http

    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(sleep=wait))
    assert {e.path for e in api.list_repo_tree(REPO)} >= {"config.json"}
    assert waits == [61]
    assert hub.rate_limited == {"api": 2}


def test_token_quota(hub, clock):
    hub.add_token("hf_user")
    hub.enable_rate_limits(api=1, resolvers=1, api_with_token=3)
    anonymous = get_session().get(f"{hub.url}/api/models/{REPO}")
    assert _rate_limit(anonymous) == ('"api";r=0;t=300', '"fixed window";"api";q=1;w=300')
    assert get_session().get(f"{hub.url}/api/models/{REPO}").status_code == 429

    with_token = HfApi(endpoint=hub.url, token="hf_user")
    with_token.model_info(REPO)  # one counter for the client: the token raises its quota
    r = get_session().get(f"{hub.url}/api/models/{REPO}", headers=build_hf_headers(token="hf_user"))
    assert r.status_code == 200 and _rate_limit(r) == ('"api";r=0;t=300', '"fixed window";"api";q=3;w=300')
    with pytest.raises(HfHubHTTPError) as exc:
        with_token.model_info(REPO)
    assert exc.value.response.status_code == 429
    # an unknown token is not a valid one: anonymous quota (and the rate limit answers first)
    r = get_session().get(f"{hub.url}/api/models/{REPO}", headers=build_hf_headers(token="hf_bogus"))
    assert r.status_code == 429 and "q=1;" in r.headers["RateLimit-Policy"]

    assert _get(hub, "config.json", token="hf_user").status_code == 200  # resolvers_with_token: as anonymous
    r = _get(hub, "config.json", token="hf_user")
    assert r.status_code == 429 and "q=1;" in r.headers["RateLimit-Policy"]


def test_cdn_requests_never_count(hub, clock):
    hub.redirect_lfs = True
    hub.enable_rate_limits(resolvers=1)
    url = _storage_url(hub)
    for i in range(10):
        r = _fetch(url, f"bytes={i}-{i}")
        assert r.status_code == 206 and r.content == WEIGHTS[i : i + 1]
        assert "RateLimit" not in r.headers
    assert hub.cdn_requests == 10 and hub.resolver_calls == 1
    assert _resolve(hub).status_code == 429
    hub.enable_rate_limits(resolvers=1)  # fresh buckets
    assert _resolve(hub).status_code == 302


def test_other_paths_are_not_rate_limited(hub, clock):
    hub.enable_rate_limits(api=1, resolvers=1)
    for _ in range(3):
        r = get_session().get(f"{hub.url}/{REPO}/blob/main/config.json")
        assert r.status_code == 404 and "RateLimit" not in r.headers
    r = get_session().post(f"{hub.url}/api/models/{REPO}")  # unsupported methods count too
    assert r.status_code == 405 and _rate_limit(r)[0] == '"api";r=0;t=300'
    r = get_session().post(f"{hub.url}/api/models/{REPO}")
    assert r.status_code == 429 and r.headers["Connection"] == "close"


# ---------------------------------------------------------------------------------------------- trickle


def test_trickle_sends_the_right_bytes_slowly(hub):
    hub.redirect_lfs = True
    hub.trickle_next(1, bytes_per_second=400)
    url = _storage_url(hub)
    t0 = time.monotonic()
    r = _fetch(url, "bytes=100-299")
    elapsed = time.monotonic() - t0
    assert r.status_code == 206 and r.content == WEIGHTS[100:300]
    assert elapsed >= 0.25  # 200 bytes at 400 B/s: 0.5 s of pauses
    assert _fetch(url, "bytes=0-9").content == WEIGHTS[:10]  # only the next answer trickled
    assert hub.bytes_served[REPO] == 210


def test_trickle_on_the_main_origin_and_from_disk(hub, tmp_path):
    data = os.urandom(3000)
    p = tmp_path / "w.bin"
    p.write_bytes(data)
    hub.add_repo("acme/disk", {"w.bin": p})
    hub.trickle_next(2, path_contains="/resolve/", bytes_per_second=20_000)
    assert _get(hub, "w.bin", repo_id="acme/disk").content == data
    assert _get(hub, "w.bin", repo_id="acme/disk", rng="bytes=1000-1999").content == data[1000:2000]
    hub.truncate_next(1, path_contains="/resolve/", mode="cut")  # both faults on one answer
    hub.trickle_next(1, path_contains="/resolve/", bytes_per_second=20_000)
    with pytest.raises(httpx2.RemoteProtocolError):
        _get(hub, "w.bin", repo_id="acme/disk")
    assert hub.bytes_served["acme/disk"] == 3000 + 1000 + 1500


def test_trickle_rejects_a_zero_rate(hub):
    with pytest.raises(ValueError):
        hub.trickle_next(1, bytes_per_second=0)
    hub.trickle_next(1, bytes_per_second=0, stall=True)  # no rate needed


def test_stop_is_prompt_with_stalled_and_trickling_handlers():
    hub = FakeHub().start()
    hub.add_repo(REPO, {"model.safetensors": WEIGHTS, "config.json": CONFIG})
    hub.trickle_next(1, path_contains="model.safetensors", stall=True)
    hub.trickle_next(1, path_contains="config.json", bytes_per_second=1)
    before = set(threading.enumerate())
    started = [threading.Event(), threading.Event()]
    outcomes: list = [None, None]

    def read(i: int, filename: str) -> None:
        try:
            with httpx2.Client(timeout=60) as client:
                with client.stream("GET", _url(hub, filename)) as r:
                    started[i].set()
                    outcomes[i] = r.read()
        except Exception as e:  # the connection closes before the promised length
            outcomes[i] = e
        finally:
            started[i].set()

    readers = [threading.Thread(target=read, args=(i, f)) for i, f in enumerate(("model.safetensors", "config.json"))]
    for t in readers:
        t.start()
    for e in started:
        assert e.wait(30)
    handlers = set(threading.enumerate()) - before - set(readers)
    assert len(handlers) >= 2 and outcomes == [None, None]  # both answers have started and are still going

    t0 = time.monotonic()
    hub.stop()
    assert time.monotonic() - t0 < 10
    for t in [*readers, *handlers]:
        t.join(10)
        assert not t.is_alive(), t
    assert all(isinstance(o, httpx2.HTTPError) for o in outcomes), outcomes

"""The fake Hub (tests/hub_server.py) behaves like the Hub where the product's tests rely on it: Range answers,
typed errors and access rules, signed expiring storage URLs, rate-limit headers and 429s, faults that really
happen, and exact counters. Checked with the real huggingface_hub client; nothing leaves the loopback interface."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx2
import pytest
from hub_server import FakeHub
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status, parse_ratelimit_headers

REPO = "acme/tiny-llm"
CONFIG = b'{"hidden_size": 8, "num_layers": 2}'
WEIGHTS = bytes(range(256)) * 40  # 10240 bytes, LFS because of the .safetensors suffix


class Clock:
    """A fake ``FakeHub.clock``: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub():
    with FakeHub() as h:
        h.clock = Clock()
        h.add_repo(REPO, {"config.json": CONFIG, "model.safetensors": WEIGHTS})
        yield h


def get(hub: FakeHub, filename: str, *, rng: str | None = None, token: str | bool = False, repo: str = REPO, **kw):
    """A GET of the file's resolve URL, as the product sends it."""
    headers = build_hf_headers(token=token) | ({"Range": rng} if rng else {})
    return get_session().get(f"{hub.url}/{repo}/resolve/main/{filename}", headers=headers, **kw)


def storage_url(hub: FakeHub) -> str:
    r = get(hub, "model.safetensors", follow_redirects=False)
    assert r.status_code == 302, r.status_code
    return r.headers["Location"]


def fetch(url: str, rng: str = "bytes=0-9", headers: dict | None = None):
    return get_session().get(url, headers={"Range": rng, **(headers or {})})


# ---------------------------------------------------------------------------------------------- model_info, Range


def test_model_info_gives_the_commit_and_the_files_with_sizes_and_lfs_sha256(hub):
    api = HfApi(endpoint=hub.url, token=False)
    first = api.model_info(REPO, files_metadata=True)
    sizes = {s.rfilename: (s.size, s.lfs.sha256 if s.lfs else None) for s in first.siblings}
    assert sizes == {
        "config.json": (len(CONFIG), None),
        "model.safetensors": (len(WEIGHTS), hashlib.sha256(WEIGHTS).hexdigest()),
    }
    assert all(s.size is None for s in api.model_info(REPO).siblings)  # sizes only with files_metadata=True
    second = hub.add_repo(REPO, {"config.json": b"{}"})
    assert api.model_info(REPO).sha == second != first.sha
    assert len(api.model_info(REPO, revision=first.sha).siblings) == 2  # an earlier commit stays readable
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="no-such-branch")


def test_a_range_is_answered_with_exactly_its_bytes(hub):
    r = get(hub, "model.safetensors", rng="bytes=100-199")
    assert r.status_code == 206 and r.content == WEIGHTS[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(WEIGHTS)}"
    r = get(hub, "model.safetensors", rng="bytes=10000-999999")
    assert r.status_code == 206 and r.content == WEIGHTS[10000:]  # clamped to the end
    r = get(hub, "model.safetensors", rng=f"bytes={len(WEIGHTS)}-{len(WEIGHTS) + 9}")
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(WEIGHTS)}"
    r = get(hub, "model.safetensors", rng="bytes=0-1,5-6")  # a form it does not parse: the whole file
    assert r.status_code == 200 and r.content == WEIGHTS
    hub.ignore_range = True
    r = get(hub, "model.safetensors", rng="bytes=0-9")
    assert r.status_code == 200 and r.content == WEIGHTS and "Content-Range" not in r.headers


# ---------------------------------------------------------------------------------------------- errors and access


def test_errors_map_to_the_clients_typed_exceptions(hub):
    for repo, filename, error in (
        ("acme/missing", "config.json", RepositoryNotFoundError),
        (REPO, "nope.bin", EntryNotFoundError),
    ):
        with pytest.raises(error):
            hf_raise_for_status(get(hub, filename, repo=repo))
    with pytest.raises(RevisionNotFoundError):
        hf_raise_for_status(get_session().get(f"{hub.url}/{REPO}/resolve/{'0' * 40}/config.json"))


def test_a_gated_repo_lists_its_files_but_serves_them_to_granted_tokens_only(hub):
    hub.add_repo("acme/gated", {"config.json": CONFIG}, gated=True)
    hub.add_token("hf_granted", gated_access={"acme/gated"})
    hub.add_token("hf_other")
    assert HfApi(endpoint=hub.url, token=False).model_info("acme/gated").gated == "auto"
    for token, status in ((False, 401), ("hf_other", 403)):
        r = get(hub, "config.json", repo="acme/gated", token=token)
        assert r.status_code == status
        with pytest.raises(GatedRepoError):
            hf_raise_for_status(r)
    assert get(hub, "config.json", repo="acme/gated", token="hf_granted").content == CONFIG


def test_a_private_repo_is_not_found_but_by_tokens_that_can_see_it(hub):
    hub.add_repo("acme/secret", {"config.json": CONFIG}, private=True)
    hub.add_token("hf_owner", private_access={"acme/secret"})
    hub.add_token("hf_stranger", private_access=set())
    for token in (False, "hf_stranger"):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.url, token=token).model_info("acme/secret")
        with pytest.raises(RepositoryNotFoundError):
            hf_raise_for_status(get(hub, "config.json", repo="acme/secret", token=token))
    assert HfApi(endpoint=hub.url, token="hf_owner").model_info("acme/secret").private is True
    assert get(hub, "config.json", repo="acme/secret", token="hf_owner").content == CONFIG


def test_an_unknown_token_is_refused_like_the_hub_does(hub):
    r = get(hub, "config.json", token="hf_not_a_real_token")
    assert r.status_code == 401 and "Invalid credentials" in r.headers["X-Error-Message"]
    hub.reject_invalid_tokens = False
    assert get(hub, "config.json", token="hf_not_a_real_token").content == CONFIG


# ---------------------------------------------------------------------------------------------- faults and counters


def test_each_fault_really_happens_once(hub):
    hub.fail_next(1, 503)
    assert get(hub, "config.json").status_code == 503
    hub.drop_next(1)
    with pytest.raises(httpx2.RemoteProtocolError):
        get(hub, "config.json")
    hub.truncate_next(1)
    r = get(hub, "model.safetensors", rng="bytes=0-99")
    assert r.status_code == 206 and r.content == WEIGHTS[:50] and r.headers["Content-Range"].startswith("bytes 0-49/")
    hub.reset_counters()
    hub.truncate_next(1, mode="cut")
    with pytest.raises(httpx2.RemoteProtocolError):
        get(hub, "model.safetensors", rng="bytes=0-99")
    assert hub.bytes_served[REPO] == 50  # what was sent, exactly
    hub.trickle_next(1, path_contains="/resolve/", bytes_per_second=20_000)
    assert get(hub, "model.safetensors", rng="bytes=0-999").content == WEIGHTS[:1000]
    assert get(hub, "model.safetensors", rng="bytes=0-99").content == WEIGHTS[:100]  # each fault once only


def test_counters_see_every_request_and_byte(hub):
    hub.redirect_lfs = True
    hub.add_repo("acme/other", {"config.json": CONFIG})
    hub.reset_counters()
    HfApi(endpoint=hub.url, token=False).model_info(REPO)
    get(hub, "config.json")
    get(hub, "config.json", repo="acme/other")
    assert get(hub, "model.safetensors", rng="bytes=0-99").content == WEIGHTS[:100]  # a 302 and a storage read
    hub.fail_next(1, 503)
    get(hub, "nope.bin")  # injected failures are seen too
    assert (hub.api_calls, hub.resolver_calls, hub.cdn_requests) == (1, 4, 1)
    assert hub.resolver_calls_by_repo == {REPO: 3, "acme/other": 1}
    assert hub.bytes_served == {REPO: 100 + len(CONFIG), "acme/other": len(CONFIG)}
    assert hub.requests[3] == ("GET", f"/{REPO}/resolve/main/model.safetensors", "bytes=0-99")
    hub.reset_counters()
    assert hub.requests == [] and hub.bytes_served == {} and hub.resolver_calls == 0


# ---------------------------------------------------------------------------------------------- signed storage URLs


def test_lfs_files_redirect_to_another_origin_that_never_sees_the_token(hub):
    hub.redirect_lfs = True
    hub.add_token("hf_user")
    url = urlsplit(storage_url(hub))
    assert f"{url.scheme}://{url.netloc}" == hub.cdn_url and url.path == f"/lfs/{hashlib.sha256(WEIGHTS).hexdigest()}"
    r = get(hub, "model.safetensors", token="hf_user", rng="bytes=5-9")  # httpx2 drops the token on the redirect
    assert r.content == WEIGHTS[5:10] and [h.status_code for h in r.history] == [302]
    assert get(hub, "config.json").history == []  # small files are served by the Hub itself
    assert hub.cdn_authorization_seen == []
    fetch(storage_url(hub), headers={"Authorization": "Bearer hf_user"})
    assert hub.cdn_authorization_seen == ["Bearer hf_user"]


def test_a_storage_url_expires_after_an_hour_or_on_expire_urls(hub):
    hub.redirect_lfs = True
    url = storage_url(hub)
    hub.clock.now += 3600
    assert fetch(url).content == WEIGHTS[:10]  # valid up to and including `expires`
    hub.clock.now += 1
    r = fetch(url)
    assert r.status_code == 403 and "Request has expired" in r.text and "X-Error-Message" not in r.headers
    hub.expired_status = 410
    assert fetch(url).status_code == 410
    fresh = storage_url(hub)
    assert fetch(fresh).content == WEIGHTS[:10]
    hub.expire_urls()
    assert fetch(fresh).status_code == 410
    assert fetch(storage_url(hub)).content == WEIGHTS[:10]


def test_a_tampered_storage_url_is_refused(hub):
    hub.redirect_lfs = True
    url = storage_url(hub)
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    for change in ({"expires": str(int(query["expires"]) + 3600)}, {"name": "config.json"}, {"sig": "0" * 64}):
        tampered = urlunsplit(parts._replace(query=urlencode(query | change)))
        r = fetch(tampered)
        assert r.status_code == 403 and "Invalid signature" in r.text, change
    assert hub.bytes_served[REPO] == 0


# ---------------------------------------------------------------------------------------------- rate limits


def ratelimit(r) -> tuple[str | None, str | None]:
    return r.headers.get("RateLimit"), r.headers.get("RateLimit-Policy")


def test_every_counted_answer_says_what_is_left_of_its_bucket(hub):
    hub.redirect_lfs = True
    hub.enable_rate_limits(api=5, resolvers=6)
    r = get_session().get(f"{hub.url}/api/models/{REPO}")
    assert ratelimit(r) == ('"api";r=4;t=300', '"fixed window";"api";q=5;w=300')
    info = parse_ratelimit_headers(r.headers)  # what huggingface_hub reads from them
    assert (info.resource_type, info.remaining, info.reset_in_seconds, info.limit) == ("api", 4, 300, 5)
    hub.clock.now += 10
    answers = [
        get(hub, "config.json"),
        get(hub, "model.safetensors", follow_redirects=False),
        get(hub, "nope.bin"),
        get(hub, "config.json", rng="bytes=999999-1000000"),
    ]
    assert [a.status_code for a in answers] == [200, 302, 404, 416]
    assert [ratelimit(a)[0] for a in answers] == [f'"resolvers";r={5 - i};t=300' for i in range(4)]
    assert ratelimit(fetch(answers[1].headers["Location"])) == (None, None)  # the storage origin never counts
    hub.clock.now += 5
    assert ratelimit(get_session().get(f"{hub.url}/api/models/{REPO}"))[0] == '"api";r=3;t=285'


def test_a_used_up_bucket_answers_429_with_retry_after_until_its_window_ends(hub):
    hub.enable_rate_limits(api=2, resolvers=3, window=60)
    for _ in range(3):
        assert get(hub, "config.json").status_code == 200
    hub.clock.now += 45
    r = get(hub, "config.json")
    assert r.status_code == 429 and r.headers["Retry-After"] == "15"
    assert ratelimit(r) == ('"resolvers";r=0;t=15', '"fixed window";"resolvers";q=3;w=60')
    with pytest.raises(HfHubHTTPError, match="'resolvers' rate limit"):
        hf_raise_for_status(r)
    assert HfApi(endpoint=hub.url, token=False).model_info(REPO).id == REPO  # the api bucket is apart
    hub.clock.now += 14.5
    assert get(hub, "config.json").headers["Retry-After"] == "1"  # rounded up, never 0
    hub.clock.now += 0.5
    r = get(hub, "config.json")
    assert r.status_code == 200 and ratelimit(r)[0] == '"resolvers";r=2;t=60' and "Retry-After" not in r.headers
    assert hub.rate_limited == {"resolvers": 2} and hub.resolver_calls == 6  # refused requests use no quota


# ---------------------------------------------------------------------------------------------- stop


def test_stop_ends_stalled_and_trickling_answers_promptly():
    hub = FakeHub().start()
    hub.add_repo(REPO, {"model.safetensors": WEIGHTS, "config.json": CONFIG})
    hub.trickle_next(1, path_contains="model.safetensors", stall=True)
    hub.trickle_next(1, path_contains="config.json", bytes_per_second=1)
    started = [threading.Event(), threading.Event()]
    outcomes: list = [None, None]

    def read(i: int, filename: str) -> None:
        try:
            with (
                httpx2.Client(timeout=60) as client,
                client.stream("GET", f"{hub.url}/{REPO}/resolve/main/{filename}") as r,
            ):
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
    t0 = time.monotonic()
    hub.stop()
    assert time.monotonic() - t0 < 10
    for t in readers:
        t.join(10)
        assert not t.is_alive()
    assert all(isinstance(o, httpx2.HTTPError) for o in outcomes), outcomes


# ---------------------------------------------------------------------------------------------- dataset repos: writing

DATASET = "acme/data"


def post(hub: FakeHub, path: str, payload, *, token: str = "hf_writer", ndjson: bool = False):
    headers = build_hf_headers(token=token)
    if ndjson:
        body = b"".join(json.dumps(item).encode() + b"\n" for item in payload)
        return get_session().post(f"{hub.url}{path}", headers=headers, content=body)
    return get_session().post(f"{hub.url}{path}", headers=headers, json=payload)


@pytest.fixture
def dataset(hub):
    hub.add_token("hf_writer", write_access={"acme"})
    HfApi(endpoint=hub.url, token="hf_writer").create_repo(DATASET, repo_type="dataset")
    return hub


def test_a_dataset_repo_is_created_once_with_the_hubs_gitattributes(dataset):
    api = HfApi(endpoint=dataset.url, token="hf_writer")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(DATASET, repo_type="dataset")
    assert err.value.response.status_code == 409
    assert api.create_repo(DATASET, repo_type="dataset", exist_ok=True).repo_id == DATASET
    assert [summary for _, summary in dataset.commits(DATASET, "dataset")] == ["initial commit"]
    assert api.list_repo_files(DATASET, repo_type="dataset") == [".gitattributes"]
    assert "*.npz filter=lfs" in dataset.read_file(DATASET, ".gitattributes", repo_type="dataset").decode()
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(DATASET)  # a dataset is not a model of the same name


def test_preupload_sends_binary_big_and_gitattributes_files_to_lfs_and_knows_unchanged_ones(dataset):
    attributes = dataset.read_file(DATASET, ".gitattributes", repo_type="dataset")

    def file(path: str, sample: bytes, size: int | None = None) -> dict:
        return {"path": path, "sample": base64.b64encode(sample).decode(), "size": size or len(sample)}

    files = [
        file("manifest.json", b"{}"),
        file("entries/a.probe.npz", b"not binary, but *.npz"),
        file("entries/b.dat", b"PK\x03\x04\x00\x00"),
        file("notes.txt", b"text", size=10 * 1024 * 1024),
        file(".gitattributes", attributes),
    ]
    r = post(dataset, f"/api/datasets/{DATASET}/preupload/main", {"files": files})
    assert r.status_code == 200, r.text
    modes = {f["path"]: (f["uploadMode"], f.get("oid")) for f in r.json()["files"]}
    git_oid = hashlib.sha1(b"blob %d\0" % len(attributes) + attributes).hexdigest()
    assert modes == {
        "manifest.json": ("regular", None),
        "entries/a.probe.npz": ("lfs", None),
        "entries/b.dat": ("lfs", None),
        "notes.txt": ("lfs", None),
        ".gitattributes": ("regular", git_oid),  # already there: the client compares it with its own
    }


def test_a_commit_is_refused_whole_when_the_hub_would_refuse_it(dataset):
    head = dataset.commits(DATASET, "dataset")[-1][0]
    header = {"key": "header", "value": {"summary": "x", "parentCommit": head}}
    text = {
        "key": "file",
        "value": {"path": "a.json", "content": base64.b64encode(b"{}").decode(), "encoding": "base64"},
    }
    binary = {"key": "file", "value": {"path": "b.bin", "content": base64.b64encode(b"\0\1").decode()}}
    never_uploaded = {"key": "lfsFile", "value": {"path": "c.npz", "algo": "sha256", "oid": "0" * 64, "size": 3}}
    commit = f"/api/datasets/{DATASET}/commit/main"

    assert post(dataset, commit, [header, text, binary], ndjson=True).status_code == 400
    assert post(dataset, commit, [header, text, never_uploaded], ndjson=True).status_code == 400
    dataset.add_token("hf_reader")
    assert post(dataset, commit, [header, text], ndjson=True, token="hf_reader").status_code == 403
    assert dataset.commits(DATASET, "dataset")[-1][0] == head  # nothing of the refused commits landed

    r = post(dataset, commit, [header, text], ndjson=True)
    assert r.status_code == 200 and r.json()["commitOid"] == dataset.commits(DATASET, "dataset")[-1][0] != head
    stale = post(dataset, commit, [header, text], ndjson=True)  # its parentCommit is no longer the head
    assert stale.status_code == 412


def test_an_lfs_upload_url_is_signed_and_keeps_only_the_bytes_of_its_oid(dataset):
    content = bytes(range(256)) * 10
    oid = hashlib.sha256(content).hexdigest()
    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(content)}]}
    r = post(dataset, f"/datasets/{DATASET}.git/info/lfs/objects/batch", batch)
    upload = r.json()["objects"][0]["actions"]["upload"]["href"]
    assert upload.startswith(dataset.cdn_url)

    assert get_session().put(upload, content=content[:-1] + b"x").status_code == 400  # not the bytes of the oid
    parts = urlsplit(upload)
    forged = urlunsplit(parts._replace(query=parts.query.replace("size=", "size=1")))
    assert get_session().put(forged, content=content).status_code == 403  # the URL was changed
    verify = {"oid": oid, "size": len(content)}
    assert post(dataset, f"/datasets/{DATASET}.git/info/lfs/objects/verify", verify).status_code == 404
    assert get_session().put(upload, content=content).status_code == 200
    assert post(dataset, f"/datasets/{DATASET}.git/info/lfs/objects/verify", verify).status_code == 200
    again = post(dataset, f"/datasets/{DATASET}.git/info/lfs/objects/batch", batch).json()["objects"][0]
    assert "actions" not in again  # stored: nothing to upload
    assert dataset.cdn_authorization_seen == []

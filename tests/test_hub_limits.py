"""The Hub as it really serves files: rate-limited /resolve/ calls, 302s to a storage host whose signed
URLs expire, a token that must stay on the Hub, and servers slow enough to need a deadline.

Runs against tests/hub_server.FakeHub with its Hub-like behaviour switched on (buckets scaled down)."""

from __future__ import annotations

import collections
import hashlib

import pytest
from conftest import FIXTURES, fixture_files
from layouts import build_llama, write_safetensors_dir

import fingerprint.stats as stats_mod
from fingerprint import Options, compute
from fingerprint.errors import DeadlineExceeded
from fingerprint.fingerprinting import compute_many

STORIES = FIXTURES / "stories260k"


@pytest.fixture
def hub_like(hub):
    """Large files behind a 302 to a second origin with signed, expiring URLs."""
    hub.redirect_lfs = True
    return hub


@pytest.fixture
def sharded(tmp_path):
    """A 4-layer Llama in two safetensors shards with an index: three files behind the Hub's redirect."""
    return write_safetensors_dir(
        build_llama(7, hidden=128, layers=4, heads=8, kv_heads=4, vocab=256), tmp_path / "m", dtype="BF16", shards=2
    )


def resolves_by_file(hub) -> collections.Counter:
    return collections.Counter(
        path.split("/resolve/", 1)[1].split("/", 1)[1] for _, path, _ in hub.requests if "/resolve/" in path
    )


def opts(hub, **kw) -> Options:
    return Options(endpoint=hub.url, use_cache=False, **kw)


@pytest.mark.parametrize("mode", ["exact", "sampled"])
def test_each_file_is_resolved_once_and_read_from_the_storage_host(hub_like, sharded, monkeypatch, mode):
    monkeypatch.setattr(stats_mod, "JOB_BYTES", 4096)  # many reads per file
    hub_like.add_repo("org/sharded", fixture_files(sharded))
    out = compute("org/sharded", opts(hub_like, mode=mode))
    assert out.error is None, out.error
    per_file = resolves_by_file(hub_like)
    assert max(per_file.values()) == 1, per_file
    files_read = len(per_file)
    assert hub_like.resolver_calls <= files_read + 1
    assert hub_like.cdn_requests > 2 * files_read  # the Range reads went to the storage host
    assert hub_like.api_calls == 1


def test_a_second_model_sharing_files_resolves_nothing_again(hub_like):
    hub_like.add_repo("org/stories", fixture_files(STORIES))
    assert compute("org/stories", opts(hub_like)).error is None
    first = hub_like.resolver_calls
    hub_like.reset_counters()
    assert compute("org/stories", opts(hub_like, mode="sampled")).error is None
    # only the small, unredirected files (config.json) are asked again; the weights' storage URL is reused
    assert hub_like.resolver_calls < first
    assert not any("model.safetensors" in p for _, p, _ in hub_like.requests if "/resolve/" in p)


def test_the_token_never_reaches_the_storage_host(hub_like):
    hub_like.add_repo("org/gated", fixture_files(STORIES), gated=True)
    hub_like.add_token("hf_granted", gated_access={"org/gated"})
    out = compute("org/gated", opts(hub_like, token="hf_granted"))
    assert out.error is None, out.error
    assert hub_like.cdn_requests > 0
    assert hub_like.cdn_authorization_seen == []


def test_a_read_survives_its_url_expiring_mid_read(hub_like, sharded, monkeypatch):
    monkeypatch.setattr(stats_mod, "JOB_BYTES", 4096)
    hub_like.add_repo("org/sharded", fixture_files(sharded))
    expected = compute("org/sharded", opts(hub_like, mode="exact")).fingerprint.curves
    hub_like.reset_counters()
    expired = []

    def expire_once(p) -> None:
        if p.stage == "reading" and p.bytes_done and not expired:
            hub_like.expire_urls()  # every storage URL handed out so far is now refused (403)
            expired.append(p.bytes_done)

    out = compute("org/sharded", opts(hub_like, mode="exact"), progress=expire_once)
    assert out.error is None, out.error
    assert expired and out.fingerprint.curves == expected
    per_file = resolves_by_file(hub_like)
    # resolved again once per expired URL, not once per read
    assert max(per_file.values()) <= 2, per_file
    assert hub_like.resolver_calls <= 2 * len(per_file)


def test_410_is_an_expired_url_too(hub_like):
    hub_like.expired_status = 410
    hub_like.add_repo("org/stories", fixture_files(STORIES))
    expected = compute("org/stories", opts(hub_like)).fingerprint.curves
    hub_like.expire_urls()
    out = compute("org/stories", opts(hub_like))
    assert out.error is None and out.fingerprint.curves == expected


def test_files_served_without_a_redirect_keep_working(hub):
    hub.add_repo("org/stories", fixture_files(STORIES))
    out = compute("org/stories", opts(hub))
    assert out.error is None, out.error
    assert hub.cdn_requests == 0


def test_a_full_run_stays_inside_small_buckets(hub_like, sharded, monkeypatch):
    monkeypatch.setattr(stats_mod, "JOB_BYTES", 4096)
    hub_like.enable_rate_limits(api=4, resolvers=8, window=300)
    hub_like.add_repo("org/a", fixture_files(sharded))
    hub_like.add_repo("org/b", fixture_files(STORIES))
    outs = compute_many(["org/a", "org/b"], opts(hub_like, mode="exact"))
    assert [o.error for o in outs] == [None, None]
    assert sum(hub_like.rate_limited.values()) == 0
    assert hub_like.cdn_requests > 20


def test_an_exhausted_bucket_is_waited_out_and_the_wait_is_shown(hub_like):
    hub_like.enable_rate_limits(api=10, resolvers=1, window=1)
    hub_like.add_repo("org/stories", fixture_files(STORIES))
    seen = []
    out = compute("org/stories", opts(hub_like), progress=seen.append)
    assert out.error is None, out.error
    waits = [p.message for p in seen if p.stage == "rate_limited"]
    assert waits, "the wait for the rate limit must be reported"
    assert "for the Hub's rate limit" in waits[0] and "file requests per" in waits[0]


def test_a_trickling_server_meets_the_deadline_and_the_other_model_is_kept(hub_like):
    hub_like.add_repo("org/slow", fixture_files(STORIES))
    hub_like.add_repo("org/fast", fixture_files(FIXTURES / "babyllama-tok105"))
    slow_blob = hashlib.sha256((STORIES / "model.safetensors").read_bytes()).hexdigest()
    hub_like.trickle_next(50, path_contains=f"/lfs/{slow_blob}", bytes_per_second=200.0)
    slow, fast = compute_many(["org/slow", "org/fast"], opts(hub_like, deadline=2.0))
    assert isinstance(slow.error, DeadlineExceeded), slow.error
    msg = str(slow.error)
    assert msg.startswith("org/slow: ") and "2 s deadline" in msg and "--deadline" in msg
    assert fast.error is None and fast.fingerprint is not None


def test_a_stalled_server_meets_the_deadline(hub_like):
    hub_like.add_repo("org/stalled", fixture_files(STORIES))
    hub_like.trickle_next(50, path_contains="/lfs/", stall=True)
    out = compute("org/stalled", opts(hub_like, deadline=1.5))
    assert isinstance(out.error, DeadlineExceeded), out.error


def test_a_full_verdict_of_two_models_stays_inside_the_buckets(hub_like, sharded):
    from fingerprint.lineage.evidence import verdict

    hub_like.enable_rate_limits(api=4, resolvers=12, window=300)
    hub_like.add_repo("org/a", fixture_files(sharded))
    hub_like.add_repo("org/b", fixture_files(STORIES))
    v = verdict("org/a", "org/b", opts(hub_like))
    assert v.verdict and sum(hub_like.rate_limited.values()) == 0
    assert hub_like.api_calls == 2  # one model_info per model: σ comes from the probe's reads
    for repo in ("org/a", "org/b"):
        per_file = collections.Counter(
            path.split("/resolve/", 1)[1].split("/", 1)[1]
            for _, path, _ in hub_like.requests
            if path.startswith(f"/{repo}/resolve/")
        )
        assert hub_like.resolver_calls_by_repo[repo] <= len(per_file) + 1, per_file
        assert v.reads[repo]["requests"] <= 1000 and v.reads[repo]["bytes_read"] <= 128e6


def test_a_verdict_reports_its_rate_limit_waits(hub_like):
    from fingerprint.lineage.evidence import verdict

    hub_like.enable_rate_limits(api=10, resolvers=1, window=1)
    hub_like.add_repo("org/a", fixture_files(STORIES))
    hub_like.add_repo("org/b", fixture_files(FIXTURES / "babyllama-tok105"))
    seen = []
    v = verdict("org/a", "org/b", opts(hub_like), progress=seen.append)
    assert v.verdict
    assert any(p.stage == "rate_limited" and "for the Hub's rate limit" in p.message for p in seen)


def test_the_models_panel_shows_a_rate_limit_wait_and_then_the_reading_again():
    from dashboard.panels import line_text
    from dashboard.runs import FingerprintRun
    from fingerprint.fingerprinting import Progress

    job = FingerprintRun([("k", "org/a")], Options(use_cache=False))
    job.record_progress(Progress("org/a", "reading", 10, 100, "exact"))
    wait = "waiting 42 s for the Hub's rate limit (anonymous: 3,000 file requests per 5 min; a token raises it)"
    job.record_progress(Progress("org/a", "rate_limited", message=wait))
    (line,) = job.lines()
    assert line.stage == "rate_limited" and line.fraction > 0.05  # the bar keeps its place while waiting
    assert line_text(line, stopping=False).endswith(wait)
    job.record_progress(Progress("org/a", "reading", 20, 100, "exact"))
    (line,) = job.lines()
    assert line.stage == "reading" and "rate limit" not in line_text(line, stopping=False)
